"""Strict JSON output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from reviewsense.jsonio import dumps, json_ready, write_json


def test_non_finite_floats_become_null():
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": np.float32(2.0)}}
    assert json_ready(data) == {"a": None, "b": [None, None, 1.5], "c": {"d": 2.0}}
    # strict parsers (JSON.parse, jq) reject bare NaN: the output must parse strictly
    json.loads(dumps(data), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_numpy_scalars_paths_and_int_keys():
    out = json_ready({1: np.int64(3), "p": Path("/x/y"), "t": (np.bool_(True),)})
    assert out == {"1": 3, "p": "/x/y", "t": [True]}


def test_write_json_is_atomic_and_readable(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"x": math.nan})
    assert json.loads(path.read_text()) == {"x": None}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind
