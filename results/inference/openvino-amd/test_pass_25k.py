"""The demo's 25,000-review test pass: torch bf16 (what `train` runs) vs the OpenVINO export.

Ad hoc measurement for issue #11 (results: test_pass_25k.txt). Usage, from the project root:

    python results/inference/openvino-amd/test_pass_25k.py TORCH_MODEL_DIR OPENVINO_EXPORT_DIR
"""

import sys
import time

import numpy as np
import pandas as pd

from reviewsense.inference import Predictor
from reviewsense.runtime import tune_allocator


def main(torch_dir: str, openvino_dir: str) -> None:
    tune_allocator()  # as `train` and `predict` do
    df = pd.read_parquet("../shared/data/imdb/test.parquet")
    texts, labels = df.text.tolist(), df.label.to_numpy()
    probs = {}
    for name, folder in (("torch-bf16", torch_dir), ("openvino-bf16", openvino_dir)):
        predictor = Predictor.from_pretrained(folder, precision="bf16", num_threads=2)
        predictor.predict(texts[:32])  # warm-up
        t = time.perf_counter()
        p = np.array([r.prob_positive for r in predictor.predict_many(texts)])
        s = time.perf_counter() - t
        probs[name] = p
        accuracy = float(((p >= 0.5) == labels).mean())
        print(f"{name} {s:.1f} s {len(texts) / s:.1f} reviews/s, accuracy {accuracy}")  # noqa: T201
    a, b = probs["torch-bf16"], probs["openvino-bf16"]
    d = np.abs(a - b)
    agreement = float(((a >= 0.5) == (b >= 0.5)).mean())
    print(f"agreement {agreement} max |dp| {d.max()} p99 {np.quantile(d, 0.99)}")  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
