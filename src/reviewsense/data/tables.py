"""Reading review tables: CSV / TSV, JSON Lines / JSON, Parquet and plain text, UTF-8.

THE table reader of the package: labelled data (:mod:`reviewsense.data.rows`), pre-training
texts and inference input files all go through :func:`read_table` (or :func:`read_texts` for
unlabelled files).
"""

from __future__ import annotations

import codecs
import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from reviewsense.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

# Extension -> reader kind. Kept in one place so error messages list exactly what works.
SUPPORTED_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
}


# Undecodable bytes are replaced by U+FDD0, a Unicode *noncharacter* reserved for internal use:
# it cannot be confused with real review text (unlike U+FFFD, which legitimately appears in
# scraped text), and unlike lone surrogates it survives pandas' Arrow-backed string columns.
# Rows containing it are then reported (or skipped) individually.
BAD_UTF8_MARK = "\ufdd0"
BAD_UTF8_HANDLER = "reviewsense-mark-invalid-utf8"
codecs.register_error(BAD_UTF8_HANDLER, lambda e: (BAD_UTF8_MARK, e.end))


def _decode(path: Path, raw: bytes, mark_invalid: bool) -> tuple[str, str | None]:
    """UTF-8 text of ``raw`` (BOM dropped) and, if some bytes were invalid, where the first was.

    With ``mark_invalid`` the invalid bytes become ``BAD_UTF8_MARK`` so the caller can find
    the affected rows; otherwise the first one raises :class:`DataError`.
    """
    skip = 3 if raw.startswith(codecs.BOM_UTF8) else 0
    body = raw[skip:]
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError as e:
        offset = e.start + skip
        line = body.count(b"\n", 0, e.start) + 1
        if not mark_invalid:
            raise DataError(
                f"{path}: line {line}: bytes {body[e.start : e.end]!r} at byte offset {offset} "
                "are not valid UTF-8 (re-save the file as UTF-8)"
            ) from None
        where = f"first invalid byte at offset {offset}, line {line}"
        return body.decode("utf-8", errors=BAD_UTF8_HANDLER), where


def _frame_from_records(path: Path, records: Any) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.DataFrame(records)
    except UnicodeEncodeError:
        # A JSON "\ud800"-style escape decodes to a lone surrogate, which is not valid Unicode.
        raise DataError(
            f"{path}: contains a \\uXXXX escape for a lone surrogate, which is not valid text"
        ) from None


def _read_json_lines(path: Path, text: str) -> pd.DataFrame:
    """One object per line. A blank line between records is an empty row (validated and counted
    like a blank CSV line), so row numbers count lines from the first record; blank lines
    before the first record or after the last are no rows."""
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    records = []
    for lineno, line in enumerate(lines[first : last + 1], start=first + 1):
        if not line.strip():
            records.append({})
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}: line {lineno}: not valid JSON ({e.msg} at column {e.colno})"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}: line {lineno}: expected a JSON object such as "
                f'{{"text": "...", "label": 1}}, got {type(obj).__name__}'
            )
        records.append(obj)
    return _frame_from_records(path, records)


def _read_json(path: Path, text: str) -> pd.DataFrame:
    """``.json``: an array of objects, a column-oriented object, or JSON Lines."""
    head = text.lstrip()[:1]
    if head not in ("[", "{"):
        return _read_json_lines(path, text)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        if head == "{":
            return _read_json_lines(path, text)  # several objects: JSON Lines
        raise DataError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(obj, dict):
        if obj and all(isinstance(v, list) for v in obj.values()):
            return _frame_from_records(path, obj)  # {"text": [...], "label": [...]}
        return _frame_from_records(path, [obj])
    for i, rec in enumerate(obj, start=1):
        if not isinstance(rec, dict):
            raise DataError(
                f"{path}: row {i}: expected a JSON object such as "
                f'{{"text": "...", "label": 1}}, got {type(rec).__name__}'
            )
    return _frame_from_records(path, obj)


def read_table(path: str | Path, *, mark_invalid_utf8: bool = False) -> pd.DataFrame:
    """Read a CSV/TSV, JSON Lines/JSON, Parquet or plain-text file into a DataFrame.

    ``.txt`` files hold one review per line (column ``text``; a final newline does not make an
    extra row). CSV cells are read as strings with only empty cells as null, so a review that
    says "NA" stays a review; a blank CSV/TSV line between rows is a row of nulls (validated and
    counted like any other); blank lines above the header or after the last row are not rows. Row order is the file's
    order.

    Args:
        path: the file; the reader is chosen by extension.
        mark_invalid_utf8: for text formats, replace bytes that are not UTF-8 by a marker and
            record the first offset in ``df.attrs["invalid_utf8"]`` instead of raising, so
            callers can report or skip the affected rows.

    Returns:
        The table, columns as in the file.

    Raises:
        DataError: missing file, unsupported extension, invalid UTF-8 (file, line and byte
            offset), or a file that cannot be parsed (with the parser's reason).
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected a file")
    kind = SUPPORTED_EXTENSIONS.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"{p}: unsupported file type '{p.suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})"
        )

    if kind == "parquet":
        try:
            return pd.read_parquet(p)
        except UnicodeDecodeError as e:
            raise DataError(f"{p}: contains strings that are not valid UTF-8 ({e})") from None
        except Exception as e:  # pyarrow raises several types for a corrupt/non-Parquet file
            raise DataError(f"{p}: not a readable Parquet file ({e})") from None

    text, bad_utf8 = _decode(p, p.read_bytes(), mark_invalid_utf8)
    if kind in ("csv", "tsv"):
        try:
            # A blank line between rows is a row (all null), so it is validated like any other
            # and the row numbers of later rows stay right; blank lines above the header or
            # after the last row are no rows (no row number moves).
            df = pd.read_csv(
                io.StringIO(text.strip("\r\n") + "\n"),
                sep="\t" if kind == "tsv" else ",",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
            )
        except pd.errors.EmptyDataError:
            raise DataError(f"{p}: the file is empty (expected a header row)") from None
        except (pd.errors.ParserError, ValueError) as e:
            msg = str(e).strip().replace("\n", " ")
            raise DataError(f"{p}: not a parseable {kind.upper()} file ({msg})") from None
    elif kind == "jsonl":
        df = _read_json_lines(p, text)
    elif kind == "json":
        df = _read_json(p, text)
    else:  # txt: split on "\n" only — str.splitlines() would also split on \x0c, \u2028, ...
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        df = pd.DataFrame({"text": [ln.removesuffix("\r") for ln in lines]}, dtype=str)
    if bad_utf8 is not None:
        df.attrs["invalid_utf8"] = bad_utf8
    return df


class Texts(NamedTuple):
    """The usable texts of an unlabelled file (:func:`read_texts`)."""

    texts: list[str]
    rows: list[int]  # 1-based data row number of each text
    skipped: int  # rows left out: null, not a string, or blank


def _text_problem(value: Any) -> str | None:
    """Why a cell is not a usable text, or None."""
    if value is None or (isinstance(value, float) and value != value):  # NaN: an empty cell
        return "text is missing"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    return None if value.strip() else "empty text"


def read_texts(
    path: str | Path, text_column: str = "text", text_flag: str | None = "--text-column"
) -> Texts:
    """The non-empty texts of an unlabelled file and their 1-based data row numbers.

    Rows whose text is null, not a string or blank are left out, counted, and logged once
    ("N rows skipped (first: row R, reason)").

    Args:
        path: any file :func:`read_table` reads.
        text_column: the column holding the texts (``.txt`` files have ``text``).
        text_flag: the caller's flag that chooses the column, named in the error when the
            column is missing (None: the caller has none).

    Raises:
        DataError: as :func:`read_table`, a missing ``text_column`` (naming the columns found),
            or no usable text at all.
    """
    df = read_table(path)
    if text_column not in df.columns:
        found = ", ".join(map(str, df.columns)) or "(none)"
        fix = f"; choose the column with {text_flag}" if text_flag else ""
        raise DataError(f"{path}: column '{text_column}' not found (columns found: {found}){fix}")
    texts: list[str] = []
    rows: list[int] = []
    first: tuple[int, str] | None = None
    for i, v in enumerate(df[text_column].tolist(), start=1):
        problem = _text_problem(v)
        if problem is None:
            texts.append(v)
            rows.append(i)
        elif first is None:
            first = (i, problem)
    skipped = len(df) - len(texts)
    if first is not None:
        logger.warning(
            "%s: %d row%s skipped (first: row %d, %s)",
            path,
            skipped,
            "" if skipped == 1 else "s",
            *first,
        )
    if not texts:
        raise DataError(f"{path}: column '{text_column}' holds no non-empty text")
    return Texts(texts, rows, skipped)
