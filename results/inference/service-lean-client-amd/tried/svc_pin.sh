# OpenVINO CPU pinning (on: OpenVINO's default) and --inference-workers 2, student OV export, alternated
cd /work/main
M=${M:-runs/s19/student-ov}
TAG=${TAG:-student_ov}
run() {  # name pin extra
  RS_OV_PIN=$2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model $M --db sqlite --clients 8 --duration 15 --extra "$3" --json runs/s20/svc_${TAG}_$1.json 2>&1 | grep -v Loading | tail -1 | sed "s/^/$1 /"
}
run w1pin_1 1 ""
run w1nopin_1 0 ""
run w2nopin_1 0 "--inference-workers 2"
run w2nopin_2 0 "--inference-workers 2"
run w1nopin_2 0 ""
run w1pin_2 1 ""
