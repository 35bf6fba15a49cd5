"""Where reviews come from: IMDb (local parquet or the Hub, incl. ``unsupervised``) and aclImdb.

* ``imdb`` — ``train.parquet`` / ``test.parquet`` (the Hub ``imdb`` schema: ``text``, ``label``)
  from ``--data-dir``, ``REVIEWSENSE_IMDB_DIR`` or ``../shared/data/imdb``; otherwise the Hub
  dataset ``stanfordnlp/imdb`` for online users. The ``unsupervised`` split (label -1, texts
  only) is for pre-training and distillation: :func:`reviewsense.unlabelled.data_file`.
* ``aclimdb`` — the raw Stanford layout ``<folder>/<split>/{pos,neg}/<id>_<rating>.txt``.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from reviewsense.data.rows import SkippedRow, Split, log_loaded, validate_frame
from reviewsense.data.tables import read_table
from reviewsense.errors import DataError
from reviewsense.settings import PROJECT_ROOT, get_settings

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

HUB_DATASET = "stanfordnlp/imdb"
IMDB_SPLITS = ("train", "test")
IMDB_UNSUPERVISED = "unsupervised"


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


def imdb_split(
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
                hint = (
                    " — this looks like a raw aclImdb folder, which train and evaluate read as "
                    "--data-dir (or with --set dataset=aclimdb); this step needs the parquet files"
                )
            raise DataError(
                f"{path}: file not found (the IMDb folder must hold train.parquet and "
                f"test.parquet){hint}"
            )
        df = read_table(path)
        file = str(path)
        source = f"IMDb {split} ({path})"
    result, skipped = validate_frame(
        df,
        file=file,
        text_column="text",
        label_column="label",
        make_ids=lambda pos: [f"{split}-{i:05d}" for i in pos.tolist()],
        row_key=lambda i: f"{split}-{i:05d}",
        source=source,
        skip_invalid=skip_invalid,
    )
    log_loaded(result, skipped)
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
    return imdb_split(split, data_dir, skip_invalid=False)[0]


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
    log_loaded(result, skipped)
    return result, skipped
