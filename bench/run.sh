#!/usr/bin/env bash
# The benchmark in one command: bench/run.sh [--quick] [any bench.run flag; --help lists them]
# Creates bench/.venv-litellm (the LiteLLM proxy from PyPI, kept apart from cloverleaf's
# dependencies) on first use, then runs `python -m bench.run` with the project's venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
LITELLM_SPEC=${LITELLM_SPEC:-"litellm[proxy]==1.106.2"}
if [ ! -x bench/.venv-litellm/bin/litellm ]; then
  echo "setting up bench/.venv-litellm with $LITELLM_SPEC (once) ..." >&2
  base=$("$PY" -c 'import sys; print(sys.base_prefix)')/bin/python3
  "$base" -m venv bench/.venv-litellm
  bench/.venv-litellm/bin/pip install -q "$LITELLM_SPEC"
fi
if ! "$PY" -c 'import uvloop' 2>/dev/null; then
  echo "note: uvloop is not installed in $PY; the mock upstream and load generator fall back to asyncio" \
       "(slower: install cloverleaf's dev extra)" >&2
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin processes to cores" >&2; exit 1; }
exec "$PY" -m bench.run "$@"
