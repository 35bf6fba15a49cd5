"""Labelled review data: loading, validation and deterministic stratified subsets.

Sources:

* ``imdb`` — ``train.parquet`` / ``test.parquet`` (the Hub ``imdb`` schema: ``text``, ``label``)
  from ``--data-dir``, ``REVIEWSENSE_IMDB_DIR`` or ``../shared/data/imdb``; otherwise the Hub
  dataset ``stanfordnlp/imdb`` for online users. The ``unsupervised`` split (label -1) is never
  read.
* ``files`` — CSV / TSV, JSON Lines (``.jsonl``, ``.ndjson``, ``.json``) or Parquet files with a
  text and a label column.
* ``aclimdb`` — the raw Stanford layout ``<folder>/<split>/{pos,neg}/<id>_<rating>.txt``.

Every row is validated; a bad row raises :class:`DataError` naming the file, the row (1-based
data row number, or the row id) and what was wrong — or, with ``skip_invalid``, is skipped,
logged and returned as a :class:`SkippedRow`. Validation is vectorised (pandas) so the full
25,000-review IMDb split loads in a fraction of a second; only offending rows are inspected one
by one.
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reviewsense.errors import ConfigError, DataError
from reviewsense.settings import PROJECT_ROOT, get_settings

if TYPE_CHECKING:
    import pandas as pd

    from reviewsense.config import DataConfig

logger = logging.getLogger(__name__)

HUB_DATASET = "stanfordnlp/imdb"
IMDB_SPLITS = ("train", "test")

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

# Accepted label spellings (after str().strip().lower()).
_LABEL_STRINGS = {
    "0": 0,
    "1": 1,
    "0.0": 0,  # CSVs written from float columns (pandas does this when a column had NaN)
    "1.0": 1,
    "neg": 0,
    "pos": 1,
    "negative": 0,
    "positive": 1,
}
_EXPECTED_LABELS = "0/1, neg/pos or negative/positive"

# Undecodable bytes are replaced by U+FDD0, a Unicode *noncharacter* reserved for internal use:
# it cannot be confused with real review text (unlike U+FFFD, which legitimately appears in
# scraped text), and unlike lone surrogates it survives pandas' Arrow-backed string columns.
# Rows containing it are then reported (or skipped) individually.
_BAD_UTF8_MARK = "\ufdd0"
_BAD_UTF8_HANDLER = "reviewsense-mark-invalid-utf8"
codecs.register_error(_BAD_UTF8_HANDLER, lambda e: (_BAD_UTF8_MARK, e.end))


# -- data structures -------------------------------------------------------------------------
@dataclass
class SkippedRow:
    """A row left out by ``skip_invalid``: where it was and why."""

    file: str
    row: int | str  # 1-based data row number, or the row id (IMDb / aclImdb)
    reason: str


@dataclass
class Split:
    """Parallel lists of review texts, 0/1 labels and stable row ids."""

    texts: list[str]
    labels: list[int]  # 0 = negative, 1 = positive
    ids: list[str]  # "train-00017" (IMDb), "<file name>:<row>", "train/pos/123_8.txt"
    source: str  # human description, e.g. "IMDb train (/path/train.parquet)"

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> Split:
        """The rows at ``indices`` (in the given order), same source.

        Args:
            indices: positions into this split.

        Returns:
            A new :class:`Split`; the lists are copies.
        """
        idx = [int(i) for i in indices]
        return Split(
            texts=[self.texts[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            ids=[self.ids[i] for i in idx],
            source=self.source,
        )

    def label_counts(self) -> dict[int, int]:
        """``{0: n_negative, 1: n_positive}``."""
        n_pos = int(sum(self.labels))
        return {0: len(self.labels) - n_pos, 1: n_pos}


@dataclass
class DataBundle:
    """Everything a training run reads: the subsets actually used plus what was left out."""

    train: Split
    val: Split
    test: Split | None
    skipped: list[SkippedRow] = field(default_factory=list)
    overlap: int = 0  # distinct texts present in both train(+val) and test

    def summary(self) -> dict[str, Any]:
        """Sizes, label counts and sources, for logs and the run directory."""
        out: dict[str, Any] = {}
        for name in ("train", "val", "test"):
            s: Split | None = getattr(self, name)
            if s is not None:
                c = s.label_counts()
                out[name] = {"n": len(s), "negative": c[0], "positive": c[1], "source": s.source}
        out["skipped"] = len(self.skipped)
        out["overlap"] = self.overlap
        return out


# -- labels and subsets ----------------------------------------------------------------------
def normalize_label(value: Any) -> int | None:
    """Map one raw label to 0/1.

    Args:
        value: 0/1 (int, float 0.0/1.0, numpy scalar, bool), or a string ``"0"``/``"1"``,
            ``neg``/``pos``, ``negative``/``positive`` (case-insensitive, surrounding
            whitespace ignored).

    Returns:
        0 (negative), 1 (positive), or ``None`` for a null or unrecognised value.
    """
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):  # before int: bool is an int subclass
        return int(value)
    if isinstance(value, int):
        return value if value in (0, 1) else None
    if isinstance(value, float):
        # NaN compares unequal to everything, so it falls through to None.
        return int(value) if value in (0.0, 1.0) else None
    if isinstance(value, str):
        return _LABEL_STRINGS.get(value.strip().lower())
    return None


def stratified_indices(labels: Sequence[int] | np.ndarray, n: int, seed: int) -> list[int]:
    """Choose ``n`` positions keeping the class proportions of ``labels``.

    Quotas are proportional (largest remainder), every class present gets at least one row when
    ``n`` allows it (a small subset must not silently lose a class), and the rows within each
    class are drawn with ``numpy.random.default_rng(seed)`` — the same inputs always give the
    same subset.

    Args:
        labels: class label per row.
        n: how many rows to choose; ``n >= len(labels)`` returns every position.
        seed: random seed.

    Returns:
        Sorted positions into ``labels``.
    """
    y = np.asarray(labels)
    total = len(y)
    if n >= total:
        return list(range(total))
    if n <= 0:
        return []
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / total
    quota = np.floor(exact).astype(int)
    if n >= len(classes):
        quota = np.maximum(quota, 1)
    # Hand out (or take back) the rounding difference: largest fractional part first when
    # adding, largest quota first when removing; stable sorts keep ties in class order.
    diff = n - int(quota.sum())
    frac = exact - np.floor(exact)
    while diff > 0:
        for k in np.argsort(-frac, kind="stable"):
            if diff == 0:
                break
            if quota[k] < counts[k]:
                quota[k] += 1
                diff -= 1
    while diff < 0:
        for k in np.argsort(-quota, kind="stable"):
            if diff == 0:
                break
            if quota[k] > 1:
                quota[k] -= 1
                diff += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return sorted(int(i) for i in np.concatenate(chosen))


# -- reading tables ---------------------------------------------------------------------------
def _decode(path: Path, raw: bytes, mark_invalid: bool) -> tuple[str, str | None]:
    """UTF-8 text of ``raw`` (BOM dropped) and, if some bytes were invalid, where the first was.

    With ``mark_invalid`` the invalid bytes become ``_BAD_UTF8_MARK`` so the caller can find
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
        return body.decode("utf-8", errors=_BAD_UTF8_HANDLER), where


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
    records = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
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
    says "NA" stays a review. Row order is the file's order.

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
            df = pd.read_csv(
                io.StringIO(text),
                sep="\t" if kind == "tsv" else ",",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
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


# -- row validation ---------------------------------------------------------------------------
def _short_repr(value: Any, limit: int = 80) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _validate_frame(
    df: pd.DataFrame,
    *,
    file: str,
    text_column: str,
    label_column: str,
    make_ids: Callable[[np.ndarray], list[str]],
    row_key: Callable[[int], int | str],
    source: str,
    skip_invalid: bool,
) -> tuple[Split, list[SkippedRow]]:
    """Check every row of ``df`` and turn the valid ones into a :class:`Split`.

    All checks are vectorised; only rows that fail are looked at individually, to build the
    message. ``make_ids`` turns kept positions into row ids; ``row_key`` names a position in
    messages (1-based row number or id).
    """
    import pandas as pd

    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns)) or "(none)"
        which = " and ".join(f"'{c}'" for c in missing)
        raise DataError(
            f"{file}: column {which} not found (columns found: {found}); "
            "choose columns with --text-column / --label-column"
        )
    texts = df[text_column]
    raw_labels = df[label_column]
    n = len(df)

    text_null = texts.isna().to_numpy(dtype=bool)
    bad_utf8_where = df.attrs.get("invalid_utf8")
    if isinstance(texts.dtype, pd.StringDtype):
        # The common case (CSV, Parquet, JSON with string texts): fully vectorised.
        not_str = np.zeros(n, dtype=bool)
        blank = texts.str.strip().eq("").to_numpy(dtype=bool, na_value=False)
        bad_utf8 = (
            texts.str.contains(_BAD_UTF8_MARK, regex=False).to_numpy(dtype=bool, na_value=False)
            if bad_utf8_where
            else np.zeros(n, dtype=bool)
        )
    else:
        # Object or numeric columns (JSON / Parquet holding numbers, lists, bytes...): the
        # .str accessor is not safe here, so check element by element.
        values = texts.tolist()
        not_str = np.array([not isinstance(v, str) for v in values], dtype=bool) & ~text_null
        blank = np.array([isinstance(v, str) and not v.strip() for v in values], dtype=bool)
        bad_utf8 = np.array(
            [bool(bad_utf8_where) and isinstance(v, str) and _BAD_UTF8_MARK in v for v in values],
            dtype=bool,
        )

    # Labels: a column has only a handful of distinct values, so normalise the distinct ones
    # (exactly the scalar rules of normalize_label) and broadcast back through the codes.
    try:
        codes, uniques = pd.factorize(raw_labels)
        table = [normalize_label(u) for u in uniques]
    except TypeError:  # unhashable values (JSON lists/objects as labels): one by one
        table, codes = [], []
        for v in raw_labels.tolist():
            is_null = v is None or (isinstance(v, float) and v != v)
            codes.append(-1 if is_null else len(table))
            if not is_null:
                table.append(normalize_label(v) if isinstance(v, str | int | float) else None)
        codes = np.asarray(codes, dtype=np.int64)
    lookup = np.array([-1 if v is None else v for v in table] + [-1], dtype=np.int64)
    labels = lookup[codes]  # code -1 (null) picks the trailing -1
    label_null = codes == -1
    label_bad = (labels == -1) & ~label_null

    bad = text_null | not_str | blank | bad_utf8 | label_null | label_bad

    def reason(i: int) -> str:
        if text_null[i]:
            return f"text is missing (null) in column '{text_column}'"
        if not_str[i]:
            return f"text in column '{text_column}' is not a string: {_short_repr(texts.iloc[i])}"
        if blank[i]:
            return f"text is empty or whitespace only: {_short_repr(texts.iloc[i])}"
        if bad_utf8[i]:
            return f"text contains bytes that are not valid UTF-8 ({bad_utf8_where})"
        if label_null[i]:
            return f"label is missing (null) in column '{label_column}'"
        return (
            f"unknown label {_short_repr(raw_labels.iloc[i])} in column '{label_column}' "
            f"(expected {_EXPECTED_LABELS})"
        )

    skipped: list[SkippedRow] = []
    if bad.any():
        bad_pos = np.flatnonzero(bad)
        if not skip_invalid:
            first = int(bad_pos[0])
            more = len(bad_pos) - 1
            tail = (
                f" ({more} more invalid row{'s' if more != 1 else ''}; --skip-invalid skips them)"
                if more
                else " (--skip-invalid skips invalid rows)"
            )
            raise DataError(f"{file}: row {row_key(first)}: {reason(first)}{tail}")
        for i in bad_pos:
            sk = SkippedRow(file=file, row=row_key(int(i)), reason=reason(int(i)))
            logger.warning("skipping %s row %s: %s", file, sk.row, sk.reason)
            skipped.append(sk)
        keep = np.flatnonzero(~bad)
        texts_out = texts.iloc[keep].tolist()
        labels_out = labels[keep].tolist()
    else:
        keep = np.arange(n)
        texts_out = texts.tolist()
        labels_out = labels.tolist()
    return Split(texts_out, labels_out, make_ids(keep), source), skipped


def read_labelled_file(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    skip_invalid: bool = False,
) -> tuple[Split, list[SkippedRow]]:
    """Read and validate a labelled CSV / TSV / JSONL / JSON / Parquet file.

    Args:
        path: the file (format by extension).
        text_column: column with the review text.
        label_column: column with the label (see :func:`normalize_label`).
        skip_invalid: skip bad rows (logged, returned) instead of raising.

    Returns:
        ``(split, skipped)``; ids are ``"<file name>:<row>"`` with 1-based data row numbers.

    Raises:
        DataError: a file-level problem (always), or the first bad row when not skipping.
    """
    p = Path(path)
    df = read_table(p, mark_invalid_utf8=True)
    if len(df) == 0:
        raise DataError(f"{p}: no data rows")
    name = p.name
    split, skipped = _validate_frame(
        df,
        file=str(p),
        text_column=text_column,
        label_column=label_column,
        make_ids=lambda pos: [f"{name}:{i + 1}" for i in pos.tolist()],
        row_key=lambda i: i + 1,
        source=f"file {p}",
        skip_invalid=skip_invalid,
    )
    _log_loaded(split, skipped)
    return split, skipped


def _review_sort_key(p: Path) -> tuple:
    # aclImdb names are <id>_<rating>.txt: numeric order reads naturally and is stable.
    m = re.fullmatch(r"(\d+)_(\d+)", p.stem)
    return (0, int(m.group(1)), int(m.group(2)), p.name) if m else (1, 0, 0, p.name)


def read_aclimdb(
    folder: str | Path, split: str, skip_invalid: bool = False
) -> tuple[Split, list[SkippedRow]]:
    """Read the raw aclImdb layout: ``<folder>/<split>/pos/*.txt`` and ``neg/*.txt``.

    ``folder`` may also be the parent of an ``aclImdb/`` folder (as unpacked from the tarball).

    Args:
        folder: the ``aclImdb`` folder.
        split: ``"train"`` or ``"test"`` (any sub-folder name works).
        skip_invalid: skip empty / non-UTF-8 files instead of raising.

    Returns:
        ``(split, skipped)``; ids are ``"<split>/<pos|neg>/<file name>"``; negatives first,
        each class in numeric file order.

    Raises:
        DataError: missing folders, no reviews, or (when not skipping) a bad file.
    """
    root = Path(folder)
    if not (root / split).is_dir() and (root / "aclImdb" / split).is_dir():
        root = root / "aclImdb"
    if not root.is_dir():
        raise DataError(f"{root}: aclImdb folder not found")
    base = root / split
    missing = [d for d in ("neg", "pos") if not (base / d).is_dir()]
    if missing:
        raise DataError(
            f"{base}: not an aclImdb {split} folder: expected sub-folders neg/ and pos/ with one "
            f"review per .txt file (missing: {', '.join(d + '/' for d in missing)})"
        )
    texts: list[str] = []
    labels: list[int] = []
    ids: list[str] = []
    skipped: list[SkippedRow] = []
    for label, sub in ((0, "neg"), (1, "pos")):
        for f in sorted((base / sub).glob("*.txt"), key=_review_sort_key):
            rid = f"{split}/{sub}/{f.name}"
            raw = f.read_bytes()
            skip = 3 if raw.startswith(codecs.BOM_UTF8) else 0
            problem = None
            try:
                text = raw[skip:].decode("utf-8")
            except UnicodeDecodeError as e:
                problem = f"not valid UTF-8 (byte offset {e.start + skip})"
            else:
                if not text.strip():
                    problem = "text is empty or whitespace only"
            if problem is not None:
                if not skip_invalid:
                    raise DataError(f"{f}: {problem} (--skip-invalid skips invalid rows)")
                logger.warning("skipping %s: %s", rid, problem)
                skipped.append(SkippedRow(file=str(f), row=rid, reason=problem))
                continue
            texts.append(text)
            labels.append(label)
            ids.append(rid)
    if not texts and not skipped:
        raise DataError(f"{base}: no reviews found (expected neg/*.txt and pos/*.txt)")
    result = Split(texts, labels, ids, f"aclImdb {split} ({base})")
    _log_loaded(result, skipped)
    return result, skipped


# -- IMDb -------------------------------------------------------------------------------------
def resolve_imdb_dir(data_dir: str | Path | None = None) -> Path | None:
    """Where the IMDb parquet files are.

    Args:
        data_dir: an explicit folder (``--data-dir``); wins when given.

    Returns:
        ``data_dir``, else the ``REVIEWSENSE_IMDB_DIR`` setting, else ``../shared/data/imdb``
        next to the project when it holds ``train.parquet``; ``None`` means "use the Hub".
    """
    if data_dir is not None:
        return Path(data_dir)
    configured = get_settings().imdb_dir
    if configured is not None:
        return Path(configured)
    shared = PROJECT_ROOT.parent / "shared" / "data" / "imdb"
    if (shared / "train.parquet").is_file():
        return shared
    return None


def _hub_imdb_frame(split: str) -> pd.DataFrame:
    advice = (
        f"IMDb {split} data: no local copy was found and the Hugging Face Hub dataset "
        f"'{HUB_DATASET}' could not be loaded{{why}}; pass --data-dir DIR (a folder with "
        "train.parquet and test.parquet) or set REVIEWSENSE_IMDB_DIR"
    )
    if get_settings().hf_offline:
        raise DataError(advice.format(why=" (REVIEWSENSE_HF_OFFLINE is set)"))
    logger.info("no local IMDb folder: loading '%s' split %s from the Hub", HUB_DATASET, split)
    try:
        import datasets

        ds = datasets.load_dataset(HUB_DATASET, split=split)
        return ds.to_pandas()
    except Exception as e:  # offline, DNS, auth, cache corruption: all end the same way
        logger.debug("Hub load failed", exc_info=True)
        raise DataError(advice.format(why=f" ({type(e).__name__})")) from None


def _imdb_split(
    split: str, data_dir: str | Path | None, skip_invalid: bool
) -> tuple[Split, list[SkippedRow]]:
    if split not in IMDB_SPLITS:
        raise DataError(
            f"IMDb split '{split}' is not available for labelled data (use one of: "
            f"{', '.join(IMDB_SPLITS)}; 'unsupervised' has no labels)"
        )
    folder = resolve_imdb_dir(data_dir)
    if folder is None:
        df = _hub_imdb_frame(split)
        file = f"{HUB_DATASET}:{split}"
        source = f"IMDb {split} (Hugging Face Hub {HUB_DATASET})"
    else:
        path = folder / f"{split}.parquet"
        if not path.is_file():
            hint = ""
            if (folder / split / "pos").is_dir():
                hint = " — this looks like a raw aclImdb folder: use --dataset aclimdb"
            raise DataError(
                f"{path}: file not found (the IMDb folder must hold train.parquet and "
                f"test.parquet){hint}"
            )
        df = read_table(path)
        file = str(path)
        source = f"IMDb {split} ({path})"
    result, skipped = _validate_frame(
        df,
        file=file,
        text_column="text",
        label_column="label",
        make_ids=lambda pos: [f"{split}-{i:05d}" for i in pos.tolist()],
        row_key=lambda i: f"{split}-{i:05d}",
        source=source,
        skip_invalid=skip_invalid,
    )
    _log_loaded(result, skipped)
    return result, skipped


def load_imdb_split(split: str, data_dir: str | Path | None = None) -> Split:
    """One labelled IMDb split, from local parquet or the Hub.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: folder with ``<split>.parquet``; see :func:`resolve_imdb_dir` for the
            fallbacks.

    Returns:
        The split; ids are ``"<split>-<original index, 5 digits>"``.

    Raises:
        DataError: unknown split, missing file, invalid rows, or Hub unreachable (one sentence
            saying to pass --data-dir / set REVIEWSENSE_IMDB_DIR).
    """
    return _imdb_split(split, data_dir, skip_invalid=False)[0]


# -- whole-run loading ------------------------------------------------------------------------
def _log_loaded(split: Split, skipped: list[SkippedRow]) -> None:
    c = split.label_counts()
    logger.info(
        "read %s: %d reviews (%d negative, %d positive)%s",
        split.source,
        len(split),
        c[0],
        c[1],
        f", {len(skipped)} invalid rows skipped" if skipped else "",
    )


def _effective_dataset(cfg: DataConfig) -> str:
    if cfg.train_file and cfg.dataset != "files":
        # An explicit --train-file is the clearer signal of intent than the preset's dataset.
        logger.info("train_file given: reading it instead of dataset '%s'", cfg.dataset)
        return "files"
    return cfg.dataset


def _load_train_pool(cfg: DataConfig, dataset: str) -> tuple[Split, list[SkippedRow]]:
    if dataset == "files":
        if not cfg.train_file:
            raise ConfigError(
                "dataset 'files' needs a training file: pass --train-file PATH "
                "(CSV, JSONL or Parquet)"
            )
        return read_labelled_file(
            cfg.train_file, cfg.text_column, cfg.label_column, cfg.skip_invalid
        )
    if dataset == "aclimdb":
        return read_aclimdb(_aclimdb_dir(cfg), "train", cfg.skip_invalid)
    if dataset == "imdb":
        return _imdb_split("train", cfg.data_dir, cfg.skip_invalid)
    raise ConfigError(f"invalid value for 'dataset': {dataset!r} (use imdb, files or aclimdb)")


def _load_test_pool(cfg: DataConfig, dataset: str) -> tuple[Split | None, list[SkippedRow]]:
    if cfg.test_file:
        return read_labelled_file(
            cfg.test_file, cfg.text_column, cfg.label_column, cfg.skip_invalid
        )
    if dataset == "files":
        logger.info("no test_file given: there is no test split (test metrics are skipped)")
        return None, []
    if dataset == "aclimdb":
        folder = _aclimdb_dir(cfg)
        if not (folder / "test").is_dir() and not (folder / "aclImdb" / "test").is_dir():
            logger.info("%s has no test/ folder: there is no test split", folder)
            return None, []
        return read_aclimdb(folder, "test", cfg.skip_invalid)
    return _imdb_split("test", cfg.data_dir, cfg.skip_invalid)


def _aclimdb_dir(cfg: DataConfig) -> Path:
    if not cfg.data_dir:
        raise ConfigError("dataset 'aclimdb' needs --data-dir pointing at the aclImdb folder")
    return Path(cfg.data_dir)


def _count_text(split: Split) -> str:
    c = split.label_counts()
    return f"{len(split)} ({c[0]} neg / {c[1]} pos)"


def _plan_sizes(cfg: DataConfig, pool_n: int) -> tuple[int, int]:
    """How many training and validation reviews to take from a pool of ``pool_n``."""
    if pool_n < 3:
        raise DataError(
            f"only {pool_n} valid training review(s): need at least 3 "
            "(both classes for training, and one for validation)"
        )
    val_req = float(cfg.val_size)
    if cfg.train_size is None:
        val_n = int(val_req) if val_req >= 1 else max(1, round(val_req * pool_n))
        if val_n > pool_n - 2:
            val_n = max(1, pool_n // 5)
            logger.warning(
                "val_size %s leaves too few training reviews from %d: using %d for validation",
                cfg.val_size,
                pool_n,
                val_n,
            )
        return pool_n - val_n, val_n
    train_req = cfg.train_size
    val_n = int(val_req) if val_req >= 1 else max(1, round(val_req * train_req))
    train_n = train_req
    if train_req + val_n > pool_n:
        # Keep the requested train:val ratio rather than leaving validation empty.
        val_req_n = val_n
        val_n = max(1, round(pool_n * val_req_n / (train_req + val_req_n)))
        train_n = pool_n - val_n
        logger.warning(
            "train_size %d + val_size %d = %d exceeds the %d valid training reviews: "
            "using %d for training and %d for validation (same ratio)",
            train_req,
            val_req_n,
            train_req + val_req_n,
            pool_n,
            train_n,
            val_n,
        )
    return train_n, val_n


def _subset_test(test: Split, cfg: DataConfig, seed: int) -> Split:
    if cfg.test_size is None:
        return test
    if cfg.test_size >= len(test):
        logger.info(
            "test_size %d >= the %d available test reviews: using all", cfg.test_size, len(test)
        )
        return test
    # seed + 2: an independent stream from the train (seed) and validation (seed + 1) draws.
    return test.subset(stratified_indices(test.labels, cfg.test_size, seed + 2))


def load_data(cfg: DataConfig, seed: int) -> DataBundle:
    """Load, validate and cut the data for a training run.

    The training subset (``train_size``, stratified) is drawn from the training pool first; the
    validation subset (``val_size``: a count, or a fraction < 1 of the training size) is drawn
    from the *remaining* rows, so the two are disjoint and the training subset does not depend
    on ``val_size``. ``test_size`` draws a stratified subset of the test split (``None`` = all).
    Everything is deterministic given ``seed``.

    Args:
        cfg: the ``data`` section of the run config.
        seed: random seed for the subsets.

    Returns:
        The :class:`DataBundle` (``test`` is ``None`` for ``files`` without a test file).

    Raises:
        DataError: bad input (see :func:`read_labelled_file`), or a single class in the
            training data.
        ConfigError: a dataset that lacks its required file/folder setting.
    """
    t0 = time.perf_counter()
    dataset = _effective_dataset(cfg)
    pool, skipped = _load_train_pool(cfg, dataset)
    pool_counts = pool.label_counts()
    if len(pool) and min(pool_counts.values()) == 0:
        only = "negative (0)" if pool_counts[1] == 0 else "positive (1)"
        raise DataError(
            f"{pool.source}: the training data has a single class — all {len(pool)} valid "
            f"reviews are {only}; a classifier needs both negative and positive examples"
        )
    train_n, val_n = _plan_sizes(cfg, len(pool))
    y = np.asarray(pool.labels)
    train_idx = stratified_indices(y, train_n, seed)
    rest = np.setdiff1d(np.arange(len(pool)), np.asarray(train_idx, dtype=int))
    val_local = stratified_indices(y[rest], val_n, seed + 1)
    train = pool.subset(train_idx)
    val = pool.subset(rest[val_local].tolist())
    if min(train.label_counts().values()) == 0:
        raise DataError(
            f"{pool.source}: the training subset of {len(train)} reviews has a single class; "
            "increase --train-size"
        )

    test_pool, test_skipped = _load_test_pool(cfg, dataset)
    skipped = skipped + test_skipped
    test = _subset_test(test_pool, cfg, seed) if test_pool is not None else None

    overlap = 0
    if test is not None:
        seen = set(train.texts)
        seen.update(val.texts)
        overlap = len(seen.intersection(test.texts))
        if overlap:
            logger.warning(
                "train/test overlap: %d review texts appear in both the training/validation "
                "data and the test data (identical text); test metrics may be optimistic",
                overlap,
            )

    logger.info(
        "data (seed %d): train %s from %s; validation %s carved from the rest of the "
        "training pool; test %s%s",
        seed,
        _count_text(train),
        pool.source,
        _count_text(val),
        _count_text(test) if test is not None else "none",
        f" from {test.source}" if test is not None else "",
    )
    if skipped:
        logger.warning("skipped %d invalid rows in total (--skip-invalid)", len(skipped))
    logger.debug("data loaded in %.2f s", time.perf_counter() - t0)
    return DataBundle(train=train, val=val, test=test, skipped=skipped, overlap=overlap)


def load_eval_split(cfg: DataConfig, seed: int) -> tuple[Split, list[SkippedRow]]:
    """The labelled data ``evaluate`` scores: ``cfg.test_file`` if given, else the test split.

    Args:
        cfg: the ``data`` section (``test_file``, ``dataset``, ``data_dir``, ``test_size``...).
        seed: seed for the ``test_size`` subset (same draw as :func:`load_data`).

    Returns:
        ``(split, skipped)``.

    Raises:
        DataError: bad input, or no evaluation data for dataset ``files`` without a test file.
    """
    dataset = "files" if cfg.train_file and not cfg.test_file else cfg.dataset
    test, skipped = _load_test_pool(cfg, dataset)
    if test is None:
        raise DataError(
            "no evaluation data: pass --test-file PATH (CSV, JSONL or Parquet), or use "
            "--dataset imdb / aclimdb"
        )
    if len(test) == 0:
        raise DataError(f"{test.source}: no valid rows to evaluate")
    test = _subset_test(test, cfg, seed)
    logger.info("evaluation data: %s from %s", _count_text(test), test.source)
    return test, skipped
