#!/usr/bin/env bash
# Set up .venv (finding a Python >= 3.12 by itself) and run one job.
#
#   bash scripts/bootstrap.sh study   # set up, then the study of the default case (the main job)
#   bash scripts/bootstrap.sh test    # set up, then the whole test suite (incl. mpirun -n 2 tests)
#   bash scripts/bootstrap.sh setup   # set up only
#
# Set-up is skipped when .venv already holds this pyproject.toml's install.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="$root/.venv"

is_good_python() {  # a runnable interpreter >= 3.12 with venv
  "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local c candidates=()
  [ -n "${MFPDE_PYTHON:-}" ] && candidates+=("$MFPDE_PYTHON")
  candidates+=(python3.13 python3.12 python3)
  if command -v pyenv >/dev/null 2>&1; then
    local proot; proot=$(pyenv root)
    for c in $(ls -d "$proot"/versions/3.1[2-9]* "$proot"/versions/3.[2-9][0-9]* 2>/dev/null | sort -rV); do
      candidates+=("$c/bin/python3")
    done
  fi
  candidates+=(/usr/bin/python3.13 /usr/bin/python3.12 /usr/local/bin/python3.13 /usr/local/bin/python3.12)
  for c in "${candidates[@]}"; do
    if is_good_python "$c"; then command -v "$c" || echo "$c"; return 0; fi
  done
  return 1
}

setup() {
  local stamp="$venv/.mfpde-install" want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ -x "$venv/bin/python" ] && is_good_python "$venv/bin/python" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if ! [ -x "$venv/bin/python" ] || ! is_good_python "$venv/bin/python"; then
    local py
    py=$(find_python) || { echo "bootstrap: no Python >= 3.12 found (set MFPDE_PYTHON=/path/to/python3.12)" >&2; exit 1; }
    echo "bootstrap: creating .venv with $py ($("$py" --version 2>&1))"
    rm -rf "$venv"
    "$py" -m venv "$venv"
  fi
  echo "bootstrap: installing mfpde and its dependencies into .venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[wheel,test,bench]"
  "$venv/bin/python" -c 'import mfpde.pde.fem as fem, pennylane; print("bootstrap: dolfinx", fem.dolfinx.__version__, "(" + fem.PROVIDER + ")", "pennylane", pennylane.__version__)'
  echo "$want" > "$stamp"
}

job=${1:-setup}
shift || true
setup
export MPLBACKEND=Agg
case "$job" in
  setup) ;;
  study) exec "$venv/bin/mpirun" -n "${MFPDE_RANKS:-2}" "$venv/bin/mfpde" study default "$@" ;;
  test)  exec "$venv/bin/python" -m pytest -q "$@" ;;
  *) echo "usage: bash scripts/bootstrap.sh {study|test|setup} [args]" >&2; exit 2 ;;
esac
