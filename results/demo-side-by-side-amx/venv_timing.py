"""Fresh-venv creation with and without pip's byte-compilation (`make venv`'s steps), alternated.

    python results/demo-side-by-side-amx/venv_timing.py --rounds 1 --json FILE

Each round creates a venv in a temporary folder the way the Makefile does (venv, pip upgrade,
torch 2.13.0, the project with [dev,scale]) once with pip's default (compile every .py) and once
with --no-compile, then times the first import of what `reviewsense train` loads (which
compiles, for the --no-compile venv, the modules it uses).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = "import reviewsense.train, reviewsense.inference.predictor, transformers, datasets, torch"


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def make_venv(where: Path, compile_: bool) -> dict:
    pip_flags = ["-q"] + ([] if compile_ else ["--no-compile"])
    pip = [str(where / "bin" / "pip"), "install", *pip_flags]
    steps = {
        "venv": _timed([sys.executable, "-m", "venv", str(where)]),
        "pip": _timed([*pip, "--upgrade", "pip"]),
        "torch": _timed([*pip, "torch==2.13.0"]),
        "project": _timed([*pip, "-e", ".[dev,scale]"]),
    }
    install = sum(steps.values())
    first_import = _timed([str(where / "bin" / "python"), "-c", IMPORT])
    return {"steps_s": steps, "install_s": install, "first_import_s": first_import}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for r in range(args.rounds):
        for compile_ in (True, False):
            tmp = Path(tempfile.mkdtemp(prefix="venv-timing-"))
            try:
                row = {"round": r, "pip_compile": compile_} | make_venv(tmp / "v", compile_)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            rows.append(row)
            print(json.dumps(row), flush=True)  # noqa: T201 (a script: progress on stdout)
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    out = {"rows": rows, "cpu": cpu, "python": platform.python_version()}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
