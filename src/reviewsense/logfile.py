"""The log of a run copied into a file of its folder while it works (``train.log``,
``sweep.log``): one format, INFO and above, the handler removed afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_to_file(path: Path, enabled: bool = True) -> Iterator[None]:
    """Copy every log record (INFO and above) into ``path`` inside the ``with`` block.

    ``enabled=False`` does nothing (a non-zero DDP rank writes no log file).
    """
    if not enabled:
        yield
        return
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
