#!/usr/bin/env bash
# Set-up command 2: install into .venv (if needed) and run the test suite.
# Extra arguments go to pytest (e.g. -m slow for the long tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
