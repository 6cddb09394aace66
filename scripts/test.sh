#!/usr/bin/env bash
# The test suite: bash scripts/test.sh [pytest arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" requirements.txt requirements-dev.txt
exec python -m pytest tests "$@"
