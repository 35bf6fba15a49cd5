"""Compare finished runs scored on the same test reviews: several seeds of one recipe vs a baseline.

    python results/compare_runs.py --runs results/full25k-stage2-h200/seed-4{2,3,4} \
        --baseline results/full25k-mlm --json results/full25k-stage2-h200/comparison.json

For the runs: test accuracy per seed, their mean with a Student-t interval over seeds, and the
accuracy of the seed ensemble (mean P(positive)). Against the baseline (one run, or one per seed):
the paired statistics of ``reviewsense sweep`` with the review as the unit (sign-flip test on
per-review correctness averaged over seeds, cluster bootstrap interval). The baseline's own
seed-to-seed variation is unknown when it is a single run: the report says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reviewsense.sweep.stats import paired_bootstrap, sign_flip_test, t_interval  # noqa: E402
from reviewsense.sweep.summary import paired_predictions  # noqa: E402


def _accuracy(run: Path) -> tuple[float, pd.DataFrame]:
    df = pd.read_parquet(run / "test_predictions.parquet")
    return float((df["prediction"] == df["label"]).mean()), df


def compare(runs: list[Path], baselines: list[Path]) -> dict:
    per_seed, frames = {}, []
    for run in runs:
        acc, df = _accuracy(run)
        per_seed[str(run)] = acc
        frames.append(df.set_index("row_id")[["label", "prob_positive"]])
    accs = np.array(list(per_seed.values()))
    mean_ci = t_interval(accs)  # Student-t interval of the seed mean (None with one seed)
    joined = pd.concat([f["prob_positive"] for f in frames], axis=1, join="inner")
    labels = frames[0]["label"].loc[joined.index]
    ensemble = float(((joined.mean(axis=1) >= 0.5).astype(int) == labels).mean())
    out = {
        "runs": per_seed,
        "n_reviews": int(len(joined)),
        "mean_accuracy": float(accs.mean()),
        "seed_std": float(accs.std(ddof=1)) if len(accs) > 1 else None,
        "mean_accuracy_ci": [mean_ci.lo, mean_ci.hi],
        "ensemble_accuracy": ensemble,
        "vs_baseline": {},
    }
    for base in baselines:
        base_acc, _ = _accuracy(base)
        data = paired_predictions(dict.fromkeys(range(len(runs)), base), dict(enumerate(runs)))
        test = sign_flip_test(data).to_dict()
        boot = paired_bootstrap(data).to_dict()
        out["vs_baseline"][str(base)] = {
            "baseline_accuracy": base_acc,
            "difference": float(accs.mean() - base_acc),
            "sign_flip": test,
            "cluster_bootstrap": boot,
            "note": "baseline is a single run: its seed-to-seed variation is not in these intervals",
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--runs", nargs="+", type=Path, required=True, help="run folders (one per seed)"
    )
    ap.add_argument("--baseline", nargs="*", type=Path, default=[], help="run folders to pair with")
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    doc = compare(args.runs, args.baseline)
    text = json.dumps(doc, indent=2) + "\n"
    if args.json:
        args.json.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
