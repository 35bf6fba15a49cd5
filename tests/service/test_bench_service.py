"""benchmarks/bench_service.py end to end on the tiny model: its --json contract (issue #13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("client, levels", [("lean", "1,2"), ("httpx", "2")])
def test_bench_service_writes_the_json_contract(tiny_model_dir, tmp_path, client, levels):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_service.py"), "--model"]
    cmd += [str(tiny_model_dir), "--db", "sqlite", "--clients", levels, "--duration", "1"]
    cmd += ["--client", client, "--extra", "--backend torch"]
    cmd += ["--warmup", "0.3", "--texts", "synthetic", "--offline-n", "16", "--threads", "1"]
    cmd += ["--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    levels_given, levels = levels, json.loads(out.read_text())
    assert [lv["clients"] for lv in levels] == [int(c) for c in levels_given.split(",")]
    for lv in levels:
        assert lv["client"] == client and lv["offline_same_calls_reviews_per_s"] > 0
        assert lv["offline_calls_of"] == max(1, round(lv["mean_batch_texts"]))
        for key in ("db", "reviews_per_s", "p50_ms", "p99_ms", "offline_reviews_per_s", "cpu"):
            assert key in lv
        assert lv["db"] == "sqlite" and set(lv["status_codes"]) == {"201"}
        assert lv["transport_errors"] == {}
        # the offline figure: timed after each level, at the server's backend and threads
        assert lv["offline_reviews_per_s"] > 0 and lv["offline_reviews_per_s_start"] > 0
        assert lv["offline_settings"]["backend"] == "torch"
        assert lv["offline_settings"]["threads"] == lv["environment"]["threads"] == 1
        assert lv["environment"]["model"] == str(tiny_model_dir) and lv["environment"]["torch"]
        assert lv["reviews_per_s"] > 0 and lv["p99_ms"] >= lv["p50_ms"] > 0
        assert lv["server_cpu_cores"] > 0 and 0 <= lv["machine_idle_share"] <= 1
        # from the server's /metrics: the model ran, on 1..32 texts per call, one commit or more
        assert 0 < lv["model_busy_share"] <= 1.05
        assert 1 <= lv["mean_batch_texts"] <= 32 and lv["mean_write_group"] >= 1
