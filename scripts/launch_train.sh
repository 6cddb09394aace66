#!/usr/bin/env bash
# Data-parallel training with msrun.
#
#   One node, N devices:   bash scripts/launch_train.sh N -c RECIPE [--key value ...]
#   Several nodes:         NODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash scripts/launch_train.sh 8 -c RECIPE ...
#                          (the same command on every node, NODE_RANK 0..NODES-1; N devices per node)
#
# msrun runs the `python` found on PATH, so activate the project's environment first (source .venv/bin/activate).
# --join=True makes msrun wait for every worker and exit non-zero when one fails; logs go to LOG_DIR/worker_*.log.
set -euo pipefail
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: [NODES=n NODE_RANK=r MASTER_ADDR=host] bash scripts/launch_train.sh DEVICES_PER_NODE -c RECIPE [--key value ...]" >&2
  exit 2
fi
per_node=$1; shift
nodes=${NODES:-1}
command -v msrun >/dev/null || { echo "error: msrun not found: activate the environment with mindspore first (source .venv/bin/activate)" >&2; exit 2; }
export GLOG_v="${GLOG_v:-3}"
exec msrun --bind_core="${BIND_CORE:-True}" --worker_num=$((per_node * nodes)) --local_worker_num="$per_node" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" --node_rank="${NODE_RANK:-0}" \
  --log_dir="${LOG_DIR:-output/msrun_logs}" --join=True \
  python train.py "$@" --distribute true
