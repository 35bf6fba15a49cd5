"""`make demo` end to end, an older commit vs this one, side by side on one machine.

Each revision is cloned fresh next to this checkout (so ``../shared`` with the IMDb data sits
beside it, as on CI), and ``/usr/bin/time -v make demo`` runs in the clone: venv creation,
pip install, fine-tuning, the 25,000-review test pass — what a user waits for. Runs go one
after the other (never side by side: two trainings on 2 cores halve each other), in the order
given. Reads wall time and peak RSS from ``time -v`` and test accuracy and training speed from
the run's ``metrics.json``.

``--json FILE`` writes ``{"runs": [{"rev", "commit", "wall_s", "max_rss_mb", "exit_code",
"test_accuracy", "examples_per_s", "precision", "log"}], "speedup": baseline wall / candidate
wall, "speedup_note", "environment"}`` (CPU model and bf16 path: the ratio is what must hold on
every CPU kind; ``precision``: what each run's ``train`` resolved). ``speedup`` is null unless both runs exited 0 (a run that stopped early would look
fast); ``speedup_note`` says why. While a run goes, a line every minute gives its elapsed time,
an ETA from the run before it (when there is one) and the last line of its log.

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
sys.path.insert(0, str(ROOT / "src"))

from reviewsense.progress import eta_text  # noqa: E402

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


PROGRESS_EVERY_S = 60.0  # a progress line while `make` runs


def waiting_line(rev: str, target: str, elapsed_s: float, previous_s: float | None) -> str:
    """``make demo`` of ``rev``: elapsed time, and an ETA when the run before took ``previous_s``."""
    line = f"{rev}: make {target} running for {eta_text(elapsed_s)}"
    if previous_s:
        line += f", ETA {eta_text(max(previous_s - elapsed_s, 0))} (the run before took "
        line += f"{eta_text(previous_s)})"
    return line


def _last_line(logfile: Path, limit: int = 160) -> str:
    """The last non-empty line of a log (its tail only: the log grows to megabytes)."""
    with logfile.open("rb") as f:
        f.seek(max(0, logfile.stat().st_size - 4096))
        lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    return lines[-1][:limit] if lines else ""


def speedup(base: dict, cand: dict) -> tuple[float | None, str]:
    """(baseline wall / candidate wall, note): None unless both runs exited 0 with a wall time."""
    failed = [f"{r['rev']} exited {r['exit_code']}" for r in (base, cand) if r["exit_code"] != 0]
    if failed:
        return None, "not computed: " + ", ".join(failed) + " (a run that stopped early looks fast)"
    if not base["wall_s"] or not cand["wall_s"]:
        return None, "not computed: no wall time"
    return base["wall_s"] / cand["wall_s"], "one run each, one after the other, same machine"


def run_one(rev: str, workdir: Path, target: str, previous_s: float | None = None) -> dict:
    """Fresh clone of ``rev`` under ``workdir``, then ``time -v make <target>`` in it; progress
    lines meanwhile, with an ETA from ``previous_s`` (the wall time of the run before)."""
    commit = _git("rev-parse", rev)
    clone = workdir / f"bench-demo-{commit[:7]}"
    if clone.exists():
        shutil.rmtree(clone)
    _git("clone", "-q", str(ROOT), str(clone), cwd=workdir)
    _git("checkout", "-q", commit, cwd=clone)
    logfile = workdir / f"bench-demo-{commit[:7]}.log"
    log.info(
        "%s (%s): make %s in %s, log %s%s",
        rev,
        commit[:7],
        target,
        clone,
        logfile,
        f" (ETA {eta_text(previous_s)}: the run before took as long)" if previous_s else "",
    )
    t0 = time.time()
    with logfile.open("w") as out:
        proc = subprocess.Popen(
            ["/usr/bin/time", "-v", "make", target],
            cwd=clone,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},  # a user's shell
        )
        while True:
            try:
                proc.wait(timeout=PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                last = _last_line(logfile)
                log.info("%s  | %s", waiting_line(rev, target, time.time() - t0, previous_s), last)
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
        "precision": None,
    }
    metrics = sorted((clone / "runs").glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if metrics:
        m = json.loads(metrics[-1].read_text())
        row["test_accuracy"] = (m.get("test") or {}).get("accuracy")
        row["examples_per_s"] = (m.get("train") or {}).get("examples_per_s")
        row["precision"] = (m.get("train") or {}).get("precision")  # what the run resolved
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
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
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
    from reviewsense.jsonio import write_json
    from reviewsense.runtime import environment_facts

    base = run_one(args.baseline, args.workdir, args.target)
    cand = run_one(args.candidate, args.workdir, args.target, base["wall_s"])
    ratio, note = speedup(base, cand)
    result = {
        "target": args.target,
        "runs": [base, cand],
        "speedup": ratio,
        "speedup_note": note,
        # each run's own resolved precision: runs[].precision (from its metrics.json)
        "environment": environment_facts(),
    }
    if ratio is None:
        log.warning("speed-up of make %s %s", args.target, note)
    else:
        log.info("speed-up of make %s: %.2fx", args.target, ratio)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result)
    return 0 if ratio is not None else 1


if __name__ == "__main__":
    sys.exit(main())
