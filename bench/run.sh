#!/usr/bin/env bash
# The benchmark in one command: bench/run.sh [--quick] [any bench.run flag; --help lists them]
# Creates bench/.venv-litellm (the LiteLLM proxy from PyPI, kept apart from cloverleaf's
# dependencies) and bench/.venv-portkey (the Portkey gateway from npm) on first use, then runs `python -m bench.run` with the project's venv.
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
PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
if [ ! -f bench/.venv-portkey/node_modules/@portkey-ai/gateway/build/start-server.js ]; then
  if command -v npm >/dev/null; then
    echo "setting up bench/.venv-portkey with @portkey-ai/gateway@$PORTKEY_VERSION (once) ..." >&2
    mkdir -p bench/.venv-portkey
    # @hono/node-server above 1.14.2 makes every streamed answer fail with "TypeError: immutable"
    # (Portkey-AI/gateway issue 1389), so it is pinned to the last version that works
    cat > bench/.venv-portkey/package.json <<JSON
{"private": true, "dependencies": {"@portkey-ai/gateway": "$PORTKEY_VERSION"},
 "overrides": {"@hono/node-server": "1.14.2"}}
JSON
    npm install --silent --no-fund --no-audit --prefix bench/.venv-portkey >&2 \
      || echo "npm install of the Portkey gateway failed: Portkey will be skipped" >&2
    # On node >= 20 an OpenAI stream passed through unchanged keeps fetch's immutable headers and
    # every stream fails with "TypeError: immutable" (Portkey-AI/gateway issues 1389/1550); the
    # fix proposed upstream (PR 1551) copies the response before its headers are changed. The
    # same one-expression change is applied here, or the benchmark could not stream through it.
    server=bench/.venv-portkey/node_modules/@portkey-ai/gateway/build/start-server.js
    if [ -f "$server" ] && grep -q 'r?(i=t,c=s)' "$server"; then
      sed -i 's/r?(i=t,c=s)/r?(i=new Response(t.body,t),c=s)/' "$server"
    elif [ -f "$server" ]; then
      echo "note: the Portkey stream fix did not apply to this version; its streams may fail" >&2
    fi
  else
    echo "note: npm/node not found: the Portkey gateway will be skipped" >&2
  fi
fi
if ! "$PY" -c 'import uvloop' 2>/dev/null; then
  echo "note: uvloop is not installed in $PY; the mock upstream and load generator fall back to asyncio" \
       "(slower: install cloverleaf's dev extra)" >&2
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin processes to cores" >&2; exit 1; }
exec "$PY" -m bench.run "$@"
