#!/bin/bash
# Issue #13: the service with packed inference vs varlen attention, alternated, on an otherwise
# idle machine. A = ../ab-varlen (a worktree of 7ef47d5: SERVICE_ATTENTION "varlen"), B = this
# tree (SERVICE_ATTENTION "packed"); each side runs its own code (PYTHONPATH) and its own
# benchmark scripts. Model: bench_service's default (MiniLM + a seed-0 random head, 256 tokens,
# head_tail): the speed of the demo model, not its accuracy.
set -u
cd "$(dirname "$0")/../../.."
HERE=results/inference/service-packed-amd
A=$(cd ../ab-varlen && pwd); B=$PWD
PY=$B/.venv/bin/python
export HF_HUB_OFFLINE=1
lscpu | grep "Model name" > $HERE/cpu.txt; grep -o -E "amx_bf16|avx512_bf16" /proc/cpuinfo | sort -u >> $HERE/cpu.txt
# 1. the model alone on service-like calls (4 reviews in arrival order), paired rounds
PYTHONPATH=$B/src $PY benchmarks/ab_predictor.py --model runs/ab-model --a attention=varlen \
  --b attention=packed --call-size 4 --n 600 --rounds 6 --json $HERE/ab_calls_of_4.json 2>&1 | tail -3
# and on predict's sorted batches of 32 (auto = chunked on avx512_bf16 without AMX)
PYTHONPATH=$B/src $PY benchmarks/ab_predictor.py --model runs/ab-model --a attention=auto \
  --b attention=packed --n 600 --rounds 4 --json $HERE/ab_sorted_32.json 2>&1 | tail -3
# 2. the service, 8 clients, SQLite, real IMDb reviews, alternated
for i in 1 2 3; do
  for side in varlen packed; do
    T=$A; [ $side = packed ] && T=$B
    (cd $T && PYTHONPATH=$T/src $PY benchmarks/bench_service.py --model $B/runs/ab-model --db sqlite \
      --clients 8 --duration 20 --warmup 3 --json $B/$HERE/svc_${side}_$i.json 2>&1 | grep -E "clients|offline" | tail -3)
  done
done
