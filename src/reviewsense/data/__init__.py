"""Labelled and unlabelled review data.

Modules (imports point down the list): ``tables`` (THE table reader: CSV/TSV/JSONL/Parquet,
UTF-8) → ``rows`` (labels, row validation, :class:`Split`) → ``sources`` (IMDb parquet/Hub incl.
``unsupervised``, aclImdb) → ``splits`` (the dataset rule, stratified subsets, validation split,
:func:`load_data` / :func:`load_eval_split`). The public names are re-exported here, so
``from reviewsense.data import load_imdb_split`` keeps working.
"""

from reviewsense.data.rows import SkippedRow, Split, normalize_label, read_labelled_file
from reviewsense.data.sources import (
    HUB_DATASET,
    IMDB_SPLITS,
    IMDB_UNSUPERVISED,
    load_imdb_split,
    read_aclimdb,
    resolve_imdb_dir,
)
from reviewsense.data.splits import (
    DataBundle,
    load_data,
    load_eval_split,
    resolve_dataset,
    stratified_indices,
)
from reviewsense.data.tables import SUPPORTED_EXTENSIONS, read_table, read_texts

__all__ = [
    "HUB_DATASET",
    "IMDB_SPLITS",
    "IMDB_UNSUPERVISED",
    "SUPPORTED_EXTENSIONS",
    "DataBundle",
    "SkippedRow",
    "Split",
    "load_data",
    "load_eval_split",
    "load_imdb_split",
    "normalize_label",
    "read_aclimdb",
    "read_labelled_file",
    "read_table",
    "read_texts",
    "resolve_dataset",
    "resolve_imdb_dir",
    "stratified_indices",
]
