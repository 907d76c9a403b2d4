#!/usr/bin/env bash
# Creates the project virtual environment at .venv and installs sparkrl into it (idempotent).
#
# Torch: a CPU build of torch 2.13.0 is installed only when no torch is importable. If the
# interpreter that creates the environment already has a torch (a GPU machine, say), the
# environment is created with access to it, so that torch stays the user's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
py=${PYTHON:-$(command -v python3.11 || command -v python3)}

if [ ! -x "$venv/bin/python" ]; then
  if "$py" -c "import torch" >/dev/null 2>&1; then
    echo "[setup] creating .venv with access to the existing torch of $py"
    "$py" -m venv --system-site-packages "$venv"
  else
    echo "[setup] creating .venv with $py"
    "$py" -m venv "$venv"
  fi
fi

if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] no torch found: installing the CPU build torch==2.13.0"
  "$venv/bin/python" -m pip install --quiet torch==2.13.0
fi

stamp="$venv/.sparkrl-install-stamp"
want=$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing sparkrl and its dependencies into .venv"
  "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
  echo "$want" >"$stamp"
fi
