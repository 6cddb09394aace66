#!/usr/bin/env bash
# The main job: bash scripts/demo.sh
# Until training lands: make the demo data if absent, build resnext50_32x4d in graph mode, classify a generated
# image, print the model table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" requirements.txt
python scripts/make_demo_data.py --root data/demo
python scripts/forward_demo.py
python scripts/model_info.py
