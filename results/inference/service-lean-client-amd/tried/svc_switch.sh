# GIL switch interval in the server: 5 ms (Python's default) vs 0.5 ms, alternated
cd /work/main
M=${M:-runs/s19/student-ov}
TAG=${TAG:-student_ov}
for i in 1 2; do
  if [ $i = 1 ]; then order="s5 s05"; else order="s05 s5"; fi
  for v in $order; do
    if [ $v = s5 ]; then export RS_SWITCH=0.005; else export RS_SWITCH=0.0005; fi
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model $M --db sqlite --clients 8 --duration 15 --extra "$X" --json runs/s20/svc_${TAG}_${v}_$i.json 2>&1 | grep -v Loading | tail -1
  done
done
