"""Read review files for prediction without losing bad rows, and write the results.

Unlike a training-data reader, nothing is rejected row by row: every input row comes back with
a ``status`` — "ok", or why it cannot be scored ("missing text", "empty text",
"invalid utf-8", "invalid json", "not text") — so the output can keep every row.

Files are read by the data layer's table reader (:func:`reviewsense.data.read_table`:
``.csv``, ``.tsv``, ``.json``, ``.parquet``, ``.txt`` one review per line) with invalid UTF-8
marked rather than refused, so the rows survive; they get "invalid utf-8" and are written back
with U+FFFD in place of the bad bytes. JSON Lines (``.jsonl`` / ``.ndjson``) is parsed here line
by line, because a line that is not JSON must become a row with a status, not stop the file.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reviewsense.data import SUPPORTED_EXTENSIONS, read_table
from reviewsense.data.tables import BAD_UTF8_HANDLER, BAD_UTF8_MARK
from reviewsense.errors import ConfigError, DataError

log = logging.getLogger(__name__)

READ_FORMATS = dict(SUPPORTED_EXTENSIONS)  # what the data layer's table reader reads
WRITE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
TEXT_COLUMN_GUESSES = ("text", "review", "content", "body", "sentence")
OK = "ok"
# Columns `reviewsense predict` adds (an input column of the same name is kept as input_<name>).
OUTPUT_COLUMNS = ("label", "score", "prob_negative", "prob_positive", "truncated", "status")

# Undecodable bytes: the table reader's marker, or surrogates (surrogateescape, Parquet).
_BAD_BYTES = re.compile(f"[{BAD_UTF8_MARK}\udc80-\udcff]")


@dataclass
class InputTable:
    """A file's rows with the text to score and a status per row."""

    frame: pd.DataFrame  # every input row and column, in file order
    text_column: str
    texts: list[str | None]  # the text to score; None where status != "ok"
    status: list[str]  # "ok" or the reason the row cannot be scored

    @property
    def n_ok(self) -> int:
        return sum(s == OK for s in self.status)


def detect_format(path: Path, formats: dict[str, str] = READ_FORMATS) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(sorted(formats))}"
        )
    return fmt


def text_status(value: object) -> tuple[str | None, str]:
    """(text to score or None, status) for one cell."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None, "missing text"
    if not isinstance(value, str):
        return None, "not text"
    if _BAD_BYTES.search(value):
        return None, "invalid utf-8"
    if not value.strip():
        return None, "empty text"
    return value, OK


def check_text_column(path: Path, fmt: str, text_column: str | None) -> None:
    """Refuse a text column for a ``.txt`` file (one review per line, read as column "text"),
    rather than ignore it."""
    if fmt == "txt" and text_column not in (None, "text"):
        raise ConfigError(
            f"{path}: --text-column {text_column} does not apply to a .txt file (one review "
            "per line, no columns); drop --text-column or give a CSV/TSV/JSONL/Parquet file"
        )


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, dict[int, str]]:
    """Rows of a JSON-lines file; unparsable lines become empty rows with a status."""
    raw = path.read_bytes().decode("utf-8-sig", errors=BAD_UTF8_HANDLER)
    records, bad = [], {}
    lines = raw.split("\n")
    if lines and lines[-1].strip() == "":
        lines.pop()
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict):
            bad[i] = "invalid utf-8" if _BAD_BYTES.search(line) else "invalid json"
            rec = {}
        records.append(rec)
    # dtype=object keeps values as parsed (an int stays an int next to missing keys).
    frame = pd.DataFrame(records, index=range(len(records)), dtype=object)
    return frame.where(frame.notna(), None), bad


def _choose_text_column(path: Path, frame: pd.DataFrame, text_column: str | None) -> str:
    cols = [str(c) for c in frame.columns]
    found = ", ".join(cols) or "none"
    if text_column is not None:
        if text_column not in cols:
            raise DataError(f"{path}: no column {text_column!r} (columns found: {found})")
        return text_column
    for guess in TEXT_COLUMN_GUESSES:
        if guess in cols:
            return guess
    stringy = [c for c in cols if frame[c].map(lambda v: isinstance(v, str)).any()]
    if len(stringy) == 1:
        return stringy[0]
    raise DataError(
        f"{path}: cannot tell which column holds the review text (columns found: {found}); "
        "pass --text-column"
    )


def read_input(path: str | Path, text_column: str | None = None) -> InputTable:
    """Read a review file, keeping every row.

    Args:
        path: .csv, .tsv, .jsonl/.ndjson, .parquet or .txt (one review per line).
        text_column: column with the text; default: the first of
            ``text, review, content, body, sentence``, else the only text column.

    Returns:
        The rows, the chosen column and a status per row.

    Raises:
        DataError: missing/unreadable file, unknown extension, or no usable text column
            (the message names the file and the columns found).
        ConfigError: ``text_column`` other than "text" for a ``.txt`` file (it has no columns).
    """
    p = Path(path)
    fmt = detect_format(p)
    check_text_column(p, fmt, text_column)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    bad: dict[int, str] = {}
    if fmt == "jsonl":
        frame, bad = _read_jsonl(p)
    else:
        frame = read_table(p, mark_invalid_utf8=True).astype(object)
    frame = frame.reset_index(drop=True)
    if fmt == "txt":
        col = "text"
    elif frame.empty and not len(frame.columns):
        col = text_column or "text"  # an empty JSONL file: no rows, no columns
        frame[col] = pd.Series(dtype=object)
    else:
        col = _choose_text_column(p, frame, text_column)
    texts, status = [], []
    for i, value in enumerate(frame[col].tolist()):
        if i in bad:
            texts.append(None)
            status.append(bad[i])
            continue
        text, st = text_status(value)
        texts.append(text)
        status.append(st)
    return InputTable(frame=frame, text_column=col, texts=texts, status=status)


def clean_text(value: object) -> object:
    """Undecodable bytes (marker or surrogates) → U+FFFD so every format can encode the text."""
    if isinstance(value, str) and _BAD_BYTES.search(value):
        return _BAD_BYTES.sub("\ufffd", value)
    return value


def add_predictions(table: InputTable, results: dict[int, object]) -> pd.DataFrame:
    """The input frame plus :data:`OUTPUT_COLUMNS`.

    Args:
        table: from :func:`read_input`.
        results: row index → :class:`~reviewsense.inference.predictor.Prediction` for the
            scored rows.

    Returns:
        A new frame with every input row; unscored rows have empty predictions.
    """
    out = table.frame.copy()
    renames = {c: f"input_{c}" for c in out.columns if c in OUTPUT_COLUMNS}
    if renames:
        log.warning("input columns %s kept as %s", list(renames), list(renames.values()))
        out = out.rename(columns=renames)
    n = len(out)
    label: list[str | None] = [None] * n
    score, p_neg, p_pos = [float("nan")] * n, [float("nan")] * n, [float("nan")] * n
    truncated: list[bool | None] = [None] * n
    for i, pred in results.items():
        label[i], score[i] = pred.label, pred.score
        p_neg[i], p_pos[i], truncated[i] = pred.prob_negative, pred.prob_positive, pred.truncated
    out["label"] = pd.Series(label, dtype=object)
    out["score"] = score
    out["prob_negative"] = p_neg
    out["prob_positive"] = p_pos
    out["truncated"] = pd.Series(truncated, dtype="boolean")
    out["status"] = table.status
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(clean_text)
    return out


def write_output(frame: pd.DataFrame, path: str | Path) -> None:
    """Write by extension: .csv, .tsv, .jsonl/.ndjson or .parquet (parent folders created).

    Raises:
        DataError: unsupported extension or unwritable path.
    """
    p = Path(path)
    fmt = detect_format(p, WRITE_FORMATS)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if fmt in ("csv", "tsv"):
            frame.to_csv(p, sep="," if fmt == "csv" else "\t", index=False, encoding="utf-8")
        elif fmt == "jsonl":
            frame.to_json(p, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_parquet(p, index=False)
    except OSError as e:
        raise DataError(f"{p}: cannot write: {e}") from None
