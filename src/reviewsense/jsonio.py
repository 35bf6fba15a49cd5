"""Strict JSON output: NaN/Infinity (which JSON forbids) become null."""

from __future__ import annotations

import json
import math
from pathlib import Path


def json_ready(obj: object) -> object:
    """Replace NaN/Infinity with None and numpy scalars with Python ones, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return json_ready(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(data: object) -> str:
    return json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, data: object) -> None:
    """Write ``data`` as strict, indented JSON (atomically: temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(data), encoding="utf-8")
    tmp.replace(path)
