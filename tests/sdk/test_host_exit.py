"""A program that never closes its clients exits cleanly, as users' scripts do.

Run as the user runs it: a child interpreter with ``-W error`` (every warning an error, as in
CI jobs and ``-X dev``), talking to a real upstream on 127.0.0.1 (``upstream.py``) through the
module-level functions, a ``Client`` kept in a global and the default client of a finished
``asyncio.run()``; its stderr must be empty after its last line of output. Each left its pooled
keep-alive socket to the collector at shutdown, printed as "Exception ignored in: <socket ...>
ResourceWarning: unclosed ..." lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .upstream import Reply, Upstream

ANSWER = json.dumps({"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()

NEVER_CLOSED = textwrap.dedent("""
    import asyncio, sys
    import cloverleaf

    url = sys.argv[1] + "/v1"
    print(cloverleaf.chat("openai/gpt-4o-mini", "hi", base_url=url).content)
    kept = cloverleaf.Client()
    print(kept.chat("openai/gpt-4o-mini", "hi", base_url=url).content)

    async def main() -> str:
        return (await cloverleaf.achat("openai/gpt-4o-mini", "hi", base_url=url)).content

    print(asyncio.run(main()))
""")


def test_a_program_that_never_closes_its_clients_exits_without_warnings(tmp_path, upstream: Upstream) -> None:
    upstream.queue(*[Reply(body=ANSWER) for _ in range(3)])
    script = tmp_path / "never_closed.py"
    script.write_text(NEVER_CLOSED)
    run = subprocess.run([sys.executable, "-W", "error", str(script), upstream.url], capture_output=True, text=True,
                         timeout=120, env={**_env(), "OPENAI_API_KEY": "sk-test-exit"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["hello", "hello", "hello"]
    assert run.stderr == ""
    assert len({seen.peer for seen in upstream.seen}) == 3   # each pool held an open connection at exit


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
