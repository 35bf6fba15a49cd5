# the 3-layer student's OpenVINO export: 1 model call at a time (default) vs --inference-workers 2, alternated
cd /work/main
M=${M:-runs/s19/student-ov}
TAG=${TAG:-student_ov}
for i in 1 2; do
  if [ $i = 1 ]; then order="w1 w2"; else order="w2 w1"; fi
  for v in $order; do
    if [ $v = w1 ]; then X=""; else X="--inference-workers 2"; fi
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model $M --db sqlite --clients 8 --duration 15 --extra "$X" --json runs/s20/svc_${TAG}_${v}_$i.json 2>&1 | grep -v Loading | tail -1
  done
done
