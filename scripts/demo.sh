#!/usr/bin/env bash
# Set-up command 1: install into .venv (if needed) and run the embedded demo.
# Extra arguments go to `sparkrl demo` (e.g. --out runs/demo --seed 1).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/sparkrl" demo "$@"
