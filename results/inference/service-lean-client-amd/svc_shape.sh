# the lean client with the same-calls offline figure: student OV export x2, demo OV export x1
cd /work/main
HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model runs/s19/student-ov --db sqlite --clients 8 --duration 15 --json runs/s20/svc_student_ov_shape_1.json 2>&1 | grep -v Loading | tail -1
HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model runs/s19/ovwork2/openvino --db sqlite --clients 8 --duration 15 --json runs/s20/svc_demo_ov_shape_1.json 2>&1 | grep -v Loading | tail -1
HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_service.py --model runs/s19/student-ov --db sqlite --clients 1,8,32 --duration 15 --json runs/s20/svc_student_ov_shape_levels.json 2>&1 | grep -v Loading | tail -3
