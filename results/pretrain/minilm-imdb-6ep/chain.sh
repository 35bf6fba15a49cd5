# Issue #14, end to end and resumable: finish the 6-epoch MLM pre-training, publish it, run the
# 2,000-label comparison sweep, publish that, then the 256 vs 512 tokens sweep of the pretrained
# encoder (configs/sweeps/length_offline_6ep.yaml), publish that. Each step is skipped when its
# output is complete, so rerunning this script after an interruption continues where it stopped.
#
#   setsid nohup bash results/pretrain/minilm-imdb-6ep/chain.sh >> runs/pretrain6-chain.log 2>&1 &
#
# Runs from a snapshot of the code (a detached worktree at SNAP_REV, default: the commit that
# started the pre-training), so that editing the working tree cannot reach the running jobs
# (results/README.md, "Long runs start from a snapshot").
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
SNAP_REV=${SNAP_REV:-febd307}
SNAP=$ROOT/../snap-pretrain
[ -d "$SNAP/src" ] || git worktree add --detach "$SNAP" "$SNAP_REV"
export PYTHONPATH=$SNAP/src HF_HUB_OFFLINE=1
HERE=results/pretrain/minilm-imdb-6ep
OUT=runs/minilm-imdb-6ep
SWEEP=runs/sweeps/pretrain_offline_6ep
LOG=${PRETRAIN_LOG:-runs/pretrain6.log}
mkdir -p "$(dirname "$LOG")"

echo "=== chain: $(date -u) code $(git -C "$SNAP" rev-parse --short HEAD) ==="
if [ ! -f $OUT/pretrain.json ]; then
  R=""; [ -d $OUT/checkpoints ] && R="--resume"
  .venv/bin/reviewsense pretrain --model minilm --data imdb-unsupervised --epochs 6 \
    --batch-size 32 --output $OUT $R >> "$LOG" 2>&1
fi
cp $OUT/pretrain.json $HERE/pretrain.json
grep -E "INFO|WARNING|ERROR" "$LOG" > $HERE/pretrain.log || true
grep "held-out loss" "$LOG" | sort -u -k6,6n > $HERE/progress.log || true

.venv/bin/reviewsense sweep --config pretrain_offline_6ep --output $SWEEP
.venv/bin/python results/publish.py $SWEEP results/pretrain-offline-6ep

# 256 vs 512 tokens for the pretrained encoder: the 256-token runs are the ones above (same
# definition, tests/sweep/test_spec.py), copied in rather than trained twice.
LEN=runs/sweeps/length_offline_6ep
for s in $SWEEP/minilm_imdb_mlm6ep/seed-*; do
  [ -e $LEN/mlm6ep_256/$(basename $s) ] || { mkdir -p $LEN/mlm6ep_256; cp -r $s $LEN/mlm6ep_256/; }
done
.venv/bin/reviewsense sweep --config configs/sweeps/length_offline_6ep.yaml --output $LEN
.venv/bin/python results/publish.py $LEN results/length-offline-6ep
echo "=== chain done: $(date -u) ==="
