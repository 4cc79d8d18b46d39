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

import pytest

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


STREAM_LEFT_OPEN = textwrap.dedent("""
    import asyncio, sys, weakref
    import cloverleaf

    url, http_client = sys.argv[1] + "/v1", sys.argv[2]
    started = []   # every async generator the loop saw start, oldest first

    class NewestFirst(asyncio.SelectorEventLoop):
        \"\"\"Closes the async generators still alive at its end newest first: the inner one before
        the outer one holding it. asyncio's own order is a set's, which makes this order on some
        runs and not on others; here it is every run's.\"\"\"

        async def shutdown_asyncgens(self) -> None:
            for agen in reversed([ref() for ref in started]):
                if agen is None:
                    continue
                try:
                    await agen.aclose()
                except Exception as exc:
                    self.call_exception_handler({"message": "an error occurred during closing of asynchronous "
                                                 "generator", "exception": exc, "asyncgen": agen})
            await super().shutdown_asyncgens()

    async def main() -> None:
        firstiter, finalizer = sys.get_asyncgen_hooks()

        def recorded(agen):
            started.append(weakref.ref(agen))
            firstiter(agen)

        sys.set_asyncgen_hooks(firstiter=recorded, finalizer=finalizer)
        client = cloverleaf.AsyncClient(http_client=http_client)
        stream = client.stream("openai/gpt-4o-mini", "hi", base_url=url)
        events = stream.__aiter__()
        print(type(await events.__anext__()).__name__)
        globals()["kept"] = (client, stream, events)   # still open when the loop ends

    with asyncio.Runner(loop_factory=NewestFirst) as runner:
        runner.run(main())
    print("end")
""")


@pytest.mark.parametrize("http_client", ["h1", "aiohttp", "httpx"])
def test_an_async_stream_left_open_as_the_loop_ends_exits_without_errors(tmp_path, upstream: Upstream,
                                                                          http_client: str) -> None:
    """``asyncio.run()`` closes the async generators still alive in any order; when the
    transport's stream wrapper (an ``@asynccontextmanager`` generator) went before the engine's
    stream that held it, the program ended with "an error occurred during closing of
    asynchronous generator ... generator didn't stop after athrow()" on stderr. The script
    makes that order every run's (``NewestFirst``)."""
    upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=[_chunk(f"w{i} ") for i in range(3)],
                         end="hang"))
    script = tmp_path / "stream_left_open.py"
    script.write_text(STREAM_LEFT_OPEN)
    run = subprocess.run([sys.executable, "-W", "error", str(script), upstream.url, http_client], capture_output=True,
                         text=True, timeout=120, env={**_env(), "OPENAI_API_KEY": "sk-test-exit"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["StreamEvent", "end"]
    assert run.stderr == ""


def _chunk(text: str) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"
