"""bench_service's flags and the offline predictor's options, without starting a server."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_service  # noqa: E402
import service_options  # noqa: E402


def _args(*argv: str):
    return bench_service.parser().parse_args(list(argv))


def test_db_and_clients_are_lists_of_known_values():
    args = _args("--db", "sqlite", "--clients", "1,4")
    assert args.db == ["sqlite"] and args.clients == [1, 4]
    assert _args().db == ["sqlite", "postgresql"] and _args().clients == [1, 8, 32]


@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "mysql"],
        ["--db", "sqlite,"],
        ["--clients", "0"],
        ["--clients", "2,x"],
    ],
)
def test_bad_db_or_clients_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        _args(*argv)
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--duration", "0"], ["--warmup", "-1"], ["--offline-n", "0"], ["--threads", "0"]]
)
def test_bad_numbers_are_refused_with_one_line(argv):
    with pytest.raises(SystemExit, match="must be"):
        service_options.check_args(_args(*argv))


def test_help_states_units_and_defaults():
    text = " ".join(bench_service.parser().format_help().split())
    assert "concurrent clients" in text and "seconds of load before" in text
    assert "(default 3)" in text and "(default sqlite,postgresql)" in text


def test_the_offline_predictor_takes_the_servers_model_flags(monkeypatch):
    for var in ("REVIEWSENSE_BACKEND", "REVIEWSENSE_BATCH_MAX_TEXTS"):
        monkeypatch.delenv(var, raising=False)
    extra = "--batch-wait-ms 2 --backend torch --num-threads 3 --batch-max 8 --precision fp32"
    assert service_options.offline_options(extra, threads=1) == {
        "backend": "torch",
        "num_threads": 3,  # the server's --num-threads wins over --threads, as in `serve`
        "batch_size": 8,
        "precision": "fp32",
    }
    assert service_options.offline_options("--batch-split", threads=2) == {
        "backend": "auto",
        "num_threads": 2,
        "batch_size": 32,
        "precision": "auto",
    }


def test_a_bad_model_flag_in_extra_is_refused():
    with pytest.raises(SystemExit, match="--extra"):
        service_options.offline_options("--backend tensorrt", threads=1)


def test_the_offline_settings_are_recorded(tiny_bert):
    options = service_options.offline_options("--backend torch --precision fp32", threads=1)
    _, settings = service_options.offline_predictor(tiny_bert, options)
    assert settings == {
        "backend": "torch",
        "precision": "fp32",
        "attention": "sdpa",  # "auto" keeps SDPA in fp32
        "threads": 1,
        "batch_size": 32,
    }
