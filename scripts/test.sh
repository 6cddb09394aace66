#!/usr/bin/env bash
# The test suite: bash scripts/test.sh [pytest arguments, e.g. tests/test_data.py -k cifar]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" requirements.txt requirements-dev.txt
exec python -m pytest "$@"  # pyproject.toml points pytest at tests/
