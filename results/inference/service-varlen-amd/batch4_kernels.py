"""Service-like batches (4 random IMDb reviews): attention sdpa(mask) vs chunked vs per-review SDPA on exact lengths."""
import sys, time, statistics, random
sys.path.insert(0, "benchmarks")
import torch, numpy as np
from transformers import AutoModelForSequenceClassification, AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
from bench_service import imdb_texts
from reviewsense.inference import Predictor
from reviewsense.inference.backends import model_runner
from reviewsense.runtime import tune_allocator
tune_allocator(); torch.set_num_threads(2)
M = "runs/sweeps/training_kernels_offline/reviewsense_kernels/seed-42/model"
F = torch.nn.functional

def varlen_sdpa(module, query, key, value, attention_mask, scaling=None, **kw):
    b, h, t, d = query.shape
    out = query.new_zeros(b, t, h, d)
    if attention_mask is None:
        lens = [t] * b
    else:
        lens = (attention_mask[:, 0, 0, :] == 0).sum(-1).tolist()  # right padding: valid keys
    for i, n in enumerate(lens):
        o = F.scaled_dot_product_attention(query[i:i+1, :, :n], key[i:i+1, :, :n], value[i:i+1, :, :n], scale=scaling)
        out[i, :n] = o[0].transpose(0, 1)
    return out, None
AttentionInterface.register("varlen_sdpa", varlen_sdpa)
ALL_MASK_ATTENTION_FUNCTIONS.register("varlen_sdpa", eager_mask)

base = Predictor.from_pretrained(M)
preds = {}
for name in ("sdpa", "chunked", "varlen_sdpa"):
    m = AutoModelForSequenceClassification.from_pretrained(M, dtype=torch.float32)
    run = model_runner(m, "bf16", "cpu", attention="sdpa" if name == "varlen_sdpa" else name)
    if name == "varlen_sdpa":
        m.set_attn_implementation("varlen_sdpa")
    p = Predictor(model_dir=None, tokenizer=base.tokenizer, runner=run, settings=base.settings, trained_truncation="head_tail",
                  label_indices=(0, 1), backend="torch", precision="bf16", batch_size=32, num_threads=2, version="x")
    preds[name] = p
texts = imdb_texts(800, None)
ref = np.array([x.prob_positive for x in base.predict(texts[:200])])
for k, p in preds.items():
    q = np.array([x.prob_positive for x in p.predict(texts[:200])]); print(k, "max|dp| vs predict", float(np.abs(q - ref).max()))
seqs, _, _ = base.encode(texts)
batches = [seqs[i:i+4] for i in range(0, len(seqs), 4)]
def go(p):
    t = time.perf_counter()
    for b in batches: p._forward(b)
    return len(seqs) / (time.perf_counter() - t)
for p in preds.values(): go(p)
res = {k: [] for k in preds}
names = list(preds)
for r in range(4):
    for k in (names if r % 2 == 0 else names[::-1]):
        res[k].append(go(preds[k]))
for k, v in res.items(): print(k, round(statistics.median(v), 1), [round(x, 1) for x in v])
print("varlen/sdpa", statistics.median([a / b for a, b in zip(res["varlen_sdpa"], res["sdpa"])]))
print("chunked/sdpa", statistics.median([a / b for a, b in zip(res["chunked"], res["sdpa"])]))
