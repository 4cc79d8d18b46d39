#!/usr/bin/env bash
# Creates .venv (if missing) and installs cloverleaf with the extras named in $1
# (default: the ones the main job needs). Idempotent and quiet; safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-server}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.cloverleaf-installed-$(echo "$extras" | tr ',[]' '___')"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (this machine's pip config names mirror folders that may be absent: drop those warnings)
  .venv/bin/python -m pip install -q -e ".[${extras}]" 2> >(grep -v '^WARNING: Location' >&2)
  touch "$stamp"
fi
