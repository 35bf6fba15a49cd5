# Issue #14: 6 epochs of IMDb MLM from MiniLM (the 1+2-epoch models gave +0.7/+0.8 pt at 2,000 labels; goal +1.0).
# Resumable: rerun this script to continue from the last checkpoint.
cd /work/main
OUT=runs/minilm-imdb-6ep
R=""; [ -d $OUT/checkpoints ] && R="--resume"
HF_HUB_OFFLINE=1 .venv/bin/reviewsense pretrain --model minilm --data imdb-unsupervised --epochs 6 \
  --batch-size 32 --output $OUT $R
