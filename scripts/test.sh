#!/usr/bin/env bash
# Set-up command 2: install into .venv (if needed) and run the test suite.
# Extra arguments go to pytest (e.g. -m slow for the long tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
# The real pretrained chat model of the tests (.cache/models; converted once, checksummed).
"$root/.venv/bin/python" "$root/scripts/real_model.py" >/dev/null
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
