# lean vs httpx load generator, alternated; student OV export (3 pairs), then the demo model's OV export (2 pairs)
cd /work/main
one() {  # model tag client i
  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model $1 --db sqlite --clients 8 --duration 15 --client $3 --json runs/s20/svc_$2_client_$3_r$4.json 2>&1 | grep -v Loading | tail -1 | sed "s/^/$2 $3 r$4 /"
}
for i in 1 2 3; do
  if [ $((i % 2)) = 1 ]; then order="lean httpx"; else order="httpx lean"; fi
  for v in $order; do one runs/s19/student-ov student_ov $v $i; done
done
for i in 1 2; do
  if [ $i = 1 ]; then order="lean httpx"; else order="httpx lean"; fi
  for v in $order; do one runs/s19/ovwork2/openvino demo_ov $v $i; done
done
echo DONE
