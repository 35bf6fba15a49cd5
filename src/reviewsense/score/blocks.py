"""Input files -> deterministic blocks -> one scored Parquet file per block.

Plan: input files sorted by path. A Parquet file is cut into blocks of ``block_rows`` rows (the
row count is in its footer, so planning reads no data); a CSV/TSV/JSONL/TXT file is one block
(its rows are only known once parsed: split big ones or convert them to Parquet). A block's
output file is ``part-{file:05d}-{first_row:010d}.parquet``: the same name on every run with the
same input and block size, which is what resume relies on. A block is written under a hidden
temp name and renamed once complete, so a file under its final name is always whole.

Output columns, one row per input row, in input order:
  row_id          str      "<file path relative to the input root>:<row index in that file>"
  <kept columns>           as in the input (``--keep-columns``; a name that clashes with an
                           output column is kept as ``input_<name>``)
  label           str      "negative" | "positive"; null where ``error`` is set
  prob_negative   float64  null where ``error`` is set
  prob_positive   float64  null where ``error`` is set
  truncated       bool     the text was longer than the model's max_length; null where ``error``
  error           str      null when scored, else why not: "missing text", "empty text",
                           "not text", "invalid utf-8", "invalid json" (see inference.io)
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reviewsense.errors import DataError
from reviewsense.inference.io import (
    OK,
    READ_FORMATS,
    TEXT_COLUMN_GUESSES,
    check_text_column,
    clean_text,
    detect_format,
    read_input,
    text_status,
)

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ("row_id", "label", "prob_negative", "prob_positive", "truncated", "error")
BLOCK_GLOB = "part-*.parquet"
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class BlockSpec:
    """One unit of work: rows [start, stop) of one input file -> one output file."""

    name: str  # output file name, e.g. part-00000-0000004096.parquet
    path: str  # input file
    source: str  # the file's path relative to the input root (the row_id prefix)
    fmt: str  # parquet | csv | tsv | jsonl | txt
    start: int  # first row, 0-based in the file
    stop: int  # one past the last row; -1: to the end of the file (non-Parquet)
    text_column: str  # "" = let inference.io choose (non-Parquet)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BlockSpec:
        return cls(**{k: (v if isinstance(v, str) else int(v)) for k, v in d.items()})


@dataclass
class BlockResult:
    """What scoring one block produced (small: it travels back from Ray actors)."""

    name: str
    rows: int
    errors: dict[str, int] = field(default_factory=dict)  # reason -> rows not scored
    seconds: float = 0.0  # read + score + write


def resolve_inputs(spec: str) -> tuple[list[Path], Path]:
    """The input files of ``--input`` (a file, a folder of Parquet files or a glob) and their root.

    Raises:
        DataError: nothing found, or a file with an unsupported extension.
    """
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.parquet") if not f.name.startswith((".", "_")))
        if not files:
            raise DataError(f"{p}: folder has no .parquet files; give a file, folder or glob")
        root = p
    elif p.is_file():
        files, root = [p], p.parent
    elif _GLOB_CHARS & set(spec):
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
        if not files:
            raise DataError(f"{spec}: no files match this pattern")
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
    else:
        raise DataError(f"{p}: no such file or folder (give a file, a folder or a glob)")
    for f in files:
        detect_format(f, READ_FORMATS)
    # Absolute paths: Ray workers do not share the driver's working directory.
    return [Path(os.path.abspath(f)) for f in files], Path(os.path.abspath(root))


def _parquet_text_column(path: Path, names: list[str], text_column: str | None) -> str:
    found = ", ".join(names) or "none"
    if text_column:
        if text_column not in names:
            raise DataError(f"{path}: no column {text_column!r} (columns found: {found})")
        return text_column
    for guess in TEXT_COLUMN_GUESSES:
        if guess in names:
            return guess
    raise DataError(
        f"{path}: cannot tell which column holds the review text (columns found: {found}); "
        "pass --text-column"
    )


def plan_blocks(
    files: list[Path],
    root: Path,
    block_rows: int,
    text_column: str | None = None,
    keep_columns: tuple[str, ...] = (),
) -> list[BlockSpec]:
    """Cut the input files into blocks (see the module docstring); checks Parquet columns.

    Raises:
        DataError: a Parquet file without the text column or a kept column, or unreadable.
        ConfigError: ``text_column`` given for a ``.txt`` file.
    """
    blocks = []
    whole: list[str] = []  # non-Parquet sources: one block each, block_rows does not apply
    for i, f in enumerate(files):
        fmt = detect_format(f, READ_FORMATS)
        source = f.relative_to(root).as_posix()
        if fmt != "parquet":
            check_text_column(f, fmt, text_column)  # before any work, not on a worker
            name = f"part-{i:05d}-{0:010d}.parquet"
            blocks.append(BlockSpec(name, str(f), source, fmt, 0, -1, text_column or ""))
            whole.append(source)
            continue
        try:
            meta = pq.ParquetFile(f).metadata
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError variants
            raise DataError(f"{f}: cannot read as Parquet: {e}") from None
        names = list(meta.schema.names)
        col = _parquet_text_column(f, names, text_column)
        _check_keep(f, names, keep_columns)
        for start in range(0, meta.num_rows, block_rows):
            stop = min(start + block_rows, meta.num_rows)
            name = f"part-{i:05d}-{start:010d}.parquet"
            blocks.append(BlockSpec(name, str(f), source, fmt, start, stop, col))
    if whole:
        log.info(
            "%d non-Parquet input file(s) (first: %s) scored as one block each: --block-rows %d "
            "applies to Parquet files only (convert big files to Parquet to cut them)",
            len(whole), whole[0], block_rows,
        )  # fmt: skip
    return blocks


def _check_keep(path: Path | str, names: list[str], keep_columns: tuple[str, ...]) -> None:
    missing = [c for c in keep_columns if c not in names]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r} for --keep-columns "
            f"(columns found: {', '.join(names) or 'none'})"
        )


def _read_parquet_rows(path: str, start: int, stop: int, columns: list[str]) -> pa.Table:
    """Rows [start, stop) of a Parquet file, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    groups, offset, first = [], 0, None
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if offset < stop and offset + n > start:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    table = pf.read_row_groups(groups, columns=columns)
    return table.slice(start - (first or 0), stop - start)


def read_block(
    spec: BlockSpec, keep_columns: tuple[str, ...]
) -> tuple[pa.Table, list[str | None], list[str | None]]:
    """(kept columns [n rows], text to score or None [n], error or None [n]) of one block."""
    if spec.fmt == "parquet":
        cols = list(dict.fromkeys([spec.text_column, *keep_columns]))
        table = _read_parquet_rows(spec.path, spec.start, spec.stop, cols)
        checked = [text_status(v) for v in table.column(spec.text_column).to_pylist()]
        texts = [t for t, _ in checked]
        errors = [None if st == OK else st for _, st in checked]
        return table.select(list(keep_columns)), texts, errors
    inp = read_input(spec.path, spec.text_column or None)
    _check_keep(spec.path, [str(c) for c in inp.frame.columns], keep_columns)
    kept = inp.frame[list(keep_columns)].copy()
    for c in kept.columns:
        if kept[c].dtype == object:
            kept[c] = kept[c].map(clean_text)  # surrogates cannot be written as Parquet strings
    errors = [None if st == OK else st for st in inp.status]
    return pa.Table.from_pandas(kept, preserve_index=False), inp.texts, errors


def build_output(
    spec: BlockSpec, kept: pa.Table, preds: list, errors: list[str | None]
) -> pa.Table:
    """The block's output table (module docstring); ``preds[i]`` is None where errors[i] is set."""
    n = len(errors)
    cols: dict[str, pa.Array] = {
        "row_id": pa.array([f"{spec.source}:{spec.start + i}" for i in range(n)], pa.string())
    }
    for c in kept.column_names:
        cols[f"input_{c}" if c in OUTPUT_COLUMNS else c] = kept.column(c)
    cols["label"] = pa.array([p and p.label for p in preds], pa.string())
    cols["prob_negative"] = pa.array([p and p.prob_negative for p in preds], pa.float64())
    cols["prob_positive"] = pa.array([p and p.prob_positive for p in preds], pa.float64())
    cols["truncated"] = pa.array([p and p.truncated for p in preds], pa.bool_())
    cols["error"] = pa.array(errors, pa.string())
    return pa.table(cols)


def write_atomic(table: pa.Table, out_dir: Path, name: str) -> None:
    """Write ``out_dir/name`` via a hidden temp file, so a half-written block never counts."""
    tmp = out_dir / f".{name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out_dir / name)


def score_block(
    spec: BlockSpec, predictor, out_dir: Path, keep_columns: tuple[str, ...]
) -> BlockResult:
    """Read, score and write one block; the one function both engines run."""
    t0 = time.perf_counter()
    kept, texts, errors = read_block(spec, keep_columns)
    ok = [i for i, e in enumerate(errors) if e is None]
    preds: list = [None] * len(errors)
    for i, p in zip(ok, predictor.predict([texts[i] for i in ok]), strict=True):
        preds[i] = p
    write_atomic(build_output(spec, kept, preds, errors), Path(out_dir), spec.name)
    reasons = Counter(e for e in errors if e is not None)
    return BlockResult(spec.name, len(errors), dict(reasons), time.perf_counter() - t0)


def done_blocks(out_dir: Path) -> set[str]:
    """Names of the blocks already written under their final name."""
    return {p.name for p in Path(out_dir).glob(BLOCK_GLOB)}


def remove_partial(out_dir: Path) -> int:
    """Delete temp files left by an interrupted run; returns how many."""
    stale = list(Path(out_dir).glob(".part-*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
