"""Copy the small outputs of a finished run or sweep into ``results/<name>/`` (the lab notebook).

    python results/publish.py runs/sweeps/seed_debugging_offline results/seed-debugging-offline

Keeps the folder layout and only the files that make the numbers checkable and the report
re-creatable (``reviewsense sweep --report-only --output results/<name>`` works on a published
sweep): definitions, metrics, environment, trainer state, test predictions (row id, label,
P(positive), prediction), reports and ``DONE``. Never model weights, checkpoints or data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

KEEP = {
    "sweep.yaml",
    "summary.json",
    "report.md",
    "config.yaml",
    "metrics.json",
    "environment.json",
    "trainer_state.json",
    "test_predictions.parquet",
    "DONE",
}
SKIP_DIRS = {"model", "checkpoints", "plots"}
MAX_BYTES = 2 * 2**20  # a file this large is not a "small output"


def publish(src: Path, dst: Path) -> list[Path]:
    copied = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or path.name not in KEEP or SKIP_DIRS & set(rel.parts[:-1]):
            continue
        if path.stat().st_size > MAX_BYTES:
            sys.stderr.write(f"skipped (over {MAX_BYTES // 2**20} MiB): {rel}\n")
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst / rel)
        copied.append(rel)
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python results/publish.py SRC_RUN_OR_SWEEP DST_UNDER_RESULTS")
    files = publish(Path(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(f"{len(files)} files -> {sys.argv[2]}\n")
