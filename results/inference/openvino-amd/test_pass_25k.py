"""The demo's 25,000-review test pass: torch bf16 (what train runs) vs the OpenVINO export in bf16 (ad hoc)."""
import json, sys, time, numpy as np, pandas as pd
from reviewsense.inference import Predictor
from reviewsense.runtime import tune_allocator
tune_allocator()
df = pd.read_parquet("../shared/data/imdb/test.parquet")
texts, labels = df.text.tolist(), df.label.to_numpy()
out = {}
for name, folder in (("torch-bf16", "runs/sweeps/training_kernels_offline/reviewsense_kernels/seed-42/model"), ("openvino-bf16", "runs/s19/ovwork2/openvino")):
    p = Predictor.from_pretrained(folder, precision="bf16", num_threads=2)
    p.predict(texts[:32])
    t = time.perf_counter()
    probs = np.array([r.prob_positive for r in p.predict_many(texts)])
    s = time.perf_counter() - t
    out[name] = {"seconds": s, "reviews_per_s": len(texts) / s, "accuracy": float(((probs >= 0.5) == labels).mean())}
    out[name + "_probs"] = probs
    print(name, round(s, 1), "s", round(len(texts) / s, 1), "reviews/s, accuracy", out[name]["accuracy"], flush=True)
d = np.abs(out["torch-bf16_probs"] - out["openvino-bf16_probs"])
print("agreement", float(((out["torch-bf16_probs"] >= 0.5) == (out["openvino-bf16_probs"] >= 0.5)).mean()), "max |dp|", float(d.max()), "p99", float(np.quantile(d, 0.99)))
