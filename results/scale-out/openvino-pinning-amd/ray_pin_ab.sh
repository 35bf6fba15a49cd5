# Ray scoring, 3,000 IMDb test reviews, demo model's OpenVINO export, 6 blocks of 500:
# 1 actor x 2 threads vs 2 actors x 1 thread, with OpenVINO's CPU pinning always on (before) and by the new rule (after)
cd /work/main
M=runs/s19/ovwork2/openvino
one() {  # tag actors threads
  rm -rf /tmp/score_out
  HF_HUB_OFFLINE=1 .venv/bin/reviewsense score $M --input /tmp/imdb3k.parquet --output /tmp/score_out --engine ray --block-rows 500 --actors $2 --threads-per-actor $3 > runs/s20/ray_$1_$2x$3.log 2>&1
  echo "$1 actors=$2 threads=$3: $(grep -o 'scored .*engine ray)' runs/s20/ray_$1_$2x$3.log)"
}
git stash push -q src/reviewsense/inference/backends.py
one before 1 2; one before 2 1
git stash pop -q
one after 2 1; one after 1 2
