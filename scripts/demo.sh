#!/usr/bin/env bash
# The main job: bash scripts/demo.sh
# Makes the demo data if absent, trains a small ResNeXt on it on the CPU (about 3 minutes on 2 cores), then scores
# the best checkpoint with validate.py; the last line is validate.py's JSON (top1 >= 0.90 expected).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" requirements.txt
python scripts/make_demo_data.py --root data/demo
python train.py -c configs/demo/resnext_demo_cpu.yaml "$@"
python validate.py --ckpt_path output/demo/best.ckpt --json
