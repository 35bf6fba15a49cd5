"""`make demo` end to end, an older commit vs this one, side by side on one machine.

Each revision is cloned fresh next to this checkout (so ``../shared`` with the IMDb data sits
beside it, as on CI), and ``/usr/bin/time -v make demo`` runs in the clone: venv creation,
pip install, fine-tuning, the 25,000-review test pass — what a user waits for. Runs go one
after the other (never side by side: two trainings on 2 cores halve each other), in the order
given. Reads wall time and peak RSS from ``time -v`` and test accuracy and training speed from
the run's ``metrics.json``.

``--json FILE`` writes ``{"runs": [{"rev", "commit", "wall_s", "max_rss_mb", "exit_code",
"test_accuracy", "examples_per_s", "log"}], "speedup": baseline wall / candidate wall,
"environment"}`` (CPU model and bf16 path: the ratio is what must hold on every CPU kind).

Usage (about 35 min on a 2-core AMD EPYC; the issue's baseline is commit 761ebc5):

    .venv/bin/python benchmarks/bench_demo.py --baseline 761ebc5 --candidate HEAD \\
        --json results/demo-side-by-side/bench_demo.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_demo")


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _time_v(stderr_text: str) -> tuple[float | None, float | None]:
    """(wall seconds, max RSS MiB) from ``/usr/bin/time -v`` output."""
    wall = rss = None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr_text)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        wall = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr_text)
    if m:
        rss = int(m.group(1)) / 1024
    return wall, rss


def run_one(rev: str, workdir: Path, target: str) -> dict:
    """Fresh clone of ``rev`` under ``workdir``, then ``time -v make <target>`` in it."""
    commit = _git("rev-parse", rev)
    clone = workdir / f"bench-demo-{commit[:7]}"
    if clone.exists():
        shutil.rmtree(clone)
    _git("clone", "-q", str(ROOT), str(clone), cwd=workdir)
    _git("checkout", "-q", commit, cwd=clone)
    logfile = workdir / f"bench-demo-{commit[:7]}.log"
    log.info("%s (%s): make %s in %s, log %s", rev, commit[:7], target, clone, logfile)
    t0 = time.time()
    with logfile.open("w") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "make", target],
            cwd=clone,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},  # a user's shell
        )
    wall, rss = _time_v(logfile.read_text(errors="replace"))
    row = {
        "rev": rev,
        "commit": commit,
        "wall_s": wall if wall is not None else time.time() - t0,
        "max_rss_mb": rss,
        "exit_code": proc.returncode,
        "log": str(logfile),
        "test_accuracy": None,
        "examples_per_s": None,
    }
    metrics = sorted((clone / "runs").glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if metrics:
        m = json.loads(metrics[-1].read_text())
        row["test_accuracy"] = (m.get("test") or {}).get("accuracy")
        row["examples_per_s"] = (m.get("train") or {}).get("examples_per_s")
    log.info(
        "%s: exit %d, %.0f s wall, peak RSS %s MiB, test accuracy %s",
        rev,
        proc.returncode,
        row["wall_s"],
        f"{rss:,.0f}" if rss else "?",
        row["test_accuracy"],
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="761ebc5", help="the older revision (git rev)")
    ap.add_argument("--candidate", default="HEAD", help="the revision measured against it")
    ap.add_argument("--target", default="demo", help="make target run in each clone")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=ROOT.parent,
        help="where the clones go; must hold shared/ (the IMDb data) like CI",
    )
    ap.add_argument("--json", type=Path, help="write runs, speedup and environment here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    from reviewsense.runtime import environment_facts

    runs = [run_one(rev, args.workdir, args.target) for rev in (args.baseline, args.candidate)]
    base, cand = runs
    result = {
        "target": args.target,
        "runs": runs,
        "speedup": base["wall_s"] / cand["wall_s"] if cand["wall_s"] else None,
        "environment": environment_facts(),
    }
    log.info("speed-up of make %s: %.2fx", args.target, result["speedup"] or 0)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
