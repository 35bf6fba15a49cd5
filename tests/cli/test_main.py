"""The `reviewsense` entry point: command registry, help, error handling and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from reviewsense.cli import main as cli_main
from reviewsense.errors import ConfigError, DataError, ModelError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def run_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT
    )


def test_help_lists_commands():
    r = run_py("-m", "reviewsense", "--help")
    assert r.returncode == 0, r.stderr
    for name in cli_main.COMMANDS:
        assert name in r.stdout
    assert "train" in r.stdout and "evaluate" in r.stdout
    assert "fine-tune" in r.stdout  # the commands' one-line help


def test_no_command_prints_help_and_exits_0(capsys):
    assert cli_main.main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_exit_2():
    r = run_py("-m", "reviewsense", "nosuch")
    assert r.returncode == 2
    assert "invalid choice: 'nosuch'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("argv", "shown", "others"),
    [
        (["train", "--help"], "--max-steps", ("reviewsense.cli.serve", "reviewsense.cli.evaluate")),
        # the top level lists the commands from their HELP lines; the flags of each (some read
        # defaults from the service or the consumer) are built only for that command
        (["--help"], "consume", ()),
    ],
)
def test_help_does_not_import_heavy_modules(argv, shown, others):
    code = (
        "import contextlib, io, sys\n"
        "from reviewsense.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        f"assert {shown!r} in out.getvalue()\n"
        "heavy = ('torch', 'transformers', 'datasets', 'sqlalchemy', 'fastapi', 'pyarrow', "
        f"'reviewsense.service', *{others!r})\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = run_py("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_registry_modules_follow_the_contract():
    for name in ("train", "evaluate"):
        mod = cli_main._load(name)
        assert isinstance(mod.HELP, str) and mod.HELP and "\n" not in mod.HELP
        assert callable(mod.add_arguments) and callable(mod.run)


# -- error handling with a fake command ------------------------------------------------------
@pytest.fixture
def fake(monkeypatch):
    """Register `reviewsense fake --what X` whose run() does what X says."""
    mod = types.ModuleType("reviewsense.cli.fake")
    mod.HELP = "a fake command"

    def add_arguments(p):
        p.add_argument("--what", default="ok")

    def run(args):
        what = args.what
        if what == "ok":
            print("ran")
            return None
        if what == "three":
            return 3
        if what == "interrupt":
            raise KeyboardInterrupt
        if what == "bug":
            raise RuntimeError("a real bug")
        raise {"data": DataError, "config": ConfigError, "model": ModelError}[what](
            f"bad {what} in file x.csv"
        )

    mod.add_arguments, mod.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "reviewsense.cli.fake", mod)
    monkeypatch.setitem(cli_main.COMMANDS, "fake", "fake")
    return mod


def test_fake_command_runs(fake, capsys):
    assert cli_main.main(["fake"]) == 0
    assert capsys.readouterr().out == "ran\n"
    assert cli_main.main(["-v", "fake", "--what", "three"]) == 3


@pytest.mark.parametrize("what", ["data", "config", "model"])
def test_user_errors_are_one_line_exit_2(fake, capsys, what):
    assert cli_main.main(["fake", "--what", what]) == 2
    err = capsys.readouterr().err
    assert err == f"reviewsense fake: error: bad {what} in file x.csv\n"


def test_keyboard_interrupt_exit_130(fake, capsys):
    assert cli_main.main(["fake", "--what", "interrupt"]) == 130
    assert capsys.readouterr().err == "reviewsense fake: interrupted\n"


def test_real_bugs_are_not_hidden(fake):
    with pytest.raises(RuntimeError, match="a real bug"):
        cli_main.main(["fake", "--what", "bug"])


def test_build_parser_only_one_command(fake):
    parser = cli_main.build_parser("fake")
    args = parser.parse_args(["fake", "--what", "x"])
    assert args.command == "fake" and args.what == "x" and args._run is fake.run
    # the other commands exist as names (no arguments, no run function)
    other = parser.parse_args(["keys"])
    assert other.command == "keys" and not hasattr(other, "_run")
