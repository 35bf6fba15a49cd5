#!/bin/bash
# session 12: service A/B on the AMX student (idle machine): torch vs OpenVINO, split, process
cd /work/main
export HF_HUB_OFFLINE=1 PYTHONPATH=/work/s11-run/src
PY=.venv/bin/python
S=runs/s11/student-l3-s42
OV=runs/s12/student-l3-s42-ov
[ -f $OV/openvino_model.xml ] || $PY -m reviewsense export $S --format openvino --output $OV || exit 1
b() { # name, model, extra
  $PY benchmarks/bench_service.py --model $2 --db sqlite --clients 8 --duration 20 \
    --extra="$3" --json runs/s12/svc-$1.json 2>&1 | grep -E "clients=|offline"
}
for round in 1 2; do
  b torch-r$round $S ""
  b ov-r$round $OV ""
  b torch-nosplit-r$round $S "--no-batch-split"
  b ov-nosplit-r$round $OV "--no-batch-split"
  b torch-proc-r$round $S "--inference-process"
done
echo done
