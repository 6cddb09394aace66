# Sourced by demo.sh and test.sh: create or reuse the project's virtual environment and install what it needs.
# Usage: source scripts/env.sh REQUIREMENTS_FILE...   (reinstalls only when a listed file changed)
# Set MINDCV_RESNEXT_VENV to use another environment folder, PYTHON to pick the interpreter that creates it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MINDCV_RESNEXT_VENV:-$ROOT/.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtual environment in $VENV"
  "${PYTHON:-python3}" -m venv "$VENV" || { echo "error: could not create a virtual environment with ${PYTHON:-python3} (needs Python 3.9-3.11 with venv)" >&2; exit 1; }
fi

requirements=()
for file in "$@"; do requirements+=(-r "$ROOT/$file"); done
stamp="$VENV/.installed-requirements"
wanted="$(cd "$ROOT" && cat "$@" | sha256sum | cut -d' ' -f1) $*"
if ! grep -qxF "$wanted" "$stamp" 2>/dev/null; then
  echo "Installing ${*} into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}" \
    || { echo "error: pip could not install ${*}; see the messages above" >&2; exit 1; }
  echo "$wanted" >> "$stamp"
fi

export PATH="$VENV/bin:$PATH"   # msrun starts the `python` found on PATH
export GLOG_v="${GLOG_v:-3}"    # quiet MindSpore's C++ logs (read once, when mindspore is imported)
cd "$ROOT"
