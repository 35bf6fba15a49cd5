#!/bin/bash
# session 12: OpenVINO student with a longer batch wait; torch with a 0.5 ms GIL switch interval
cd /work/main
export HF_HUB_OFFLINE=1 PYTHONPATH=/work/s11-run/src
PY=.venv/bin/python
S=runs/s11/student-l3-s42
OV=runs/s12/student-l3-s42-ov
b() { $PY benchmarks/bench_service.py --model $2 --db sqlite --clients 8 --duration 20 \
    --extra="$3" --json runs/s12/svc-$1.json 2>&1 | grep -E "clients=|offline"; }
b ov-wait20-nosplit $OV "--no-batch-split --batch-wait-ms 20"
b ov-wait20 $OV "--batch-wait-ms 20"
PYTHONPATH=/work/s11-run/src:/work/main/runs/s12/swi b torch-swi05 $S ""
b torch-r3 $S ""
PYTHONPATH=/work/s11-run/src:/work/main/runs/s12/swi b torch-swi05-r2 $S ""
echo done
