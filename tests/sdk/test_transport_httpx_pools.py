"""The httpx backend's pools, shared the ways real applications share a client: by threads
(a web app's thread pool on one sync Client), by event loops (one AsyncClient across
``asyncio.run()`` calls) and by processes (a client used before ``os.fork()``: gunicorn
``--preload``, celery's prefork pool). Against a real HTTP server on 127.0.0.1 (``upstream.py``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from cloverleaf._http import HttpRequest
from cloverleaf.transport import RetryPolicy, Transport

from .upstream import Reply, Upstream

SSE = {"content-type": "text/event-stream"}


def _req(url: str) -> HttpRequest:
    return HttpRequest("POST", url + "/v1/chat/completions", {"content-type": "application/json"}, b'{"x":1}')


def _transport(**kw: str) -> Transport:
    return Transport(retry=RetryPolicy(max_retries=0), **kw)


def test_a_tail_read_still_open_when_its_connection_serves_the_next_stream_leaves_that_stream_alone(
        upstream: Upstream) -> None:
    """A sync stream reads its tail inside ``bounded(...)``; the body ends there, so its connection
    goes back to the pool while the caller is still inside the context, and another thread's
    stream takes it at once. That stream's reads, and the connection's later ones, are not the
    first caller's business: they used to be patched per call on the shared connection and
    unpatched again, so leaving the contexts raised AttributeError ('SyncStream' object has no
    attribute 'read') and a leftover patch timed later reads out at once."""
    upstream.queue(*[Reply(headers=SSE, chunks=[f"data: {i}\n\n".encode()]) for i in range(3)])
    t = _transport()
    with ExitStack() as first_caller:
        first = first_caller.enter_context(t.stream(_req(upstream.url)))
        assert first.bounded is not None
        first_caller.enter_context(first.bounded(5))
        assert b"".join(first.chunks()) == b"data: 0\n\n"   # the body ended: the connection is pooled again
        with t.stream(_req(upstream.url)) as second:          # ... and serves the next stream at once
            assert second.bounded is not None
            with second.bounded(5):
                assert b"".join(second.chunks()) == b"data: 1\n\n"
    with t.stream(_req(upstream.url)) as third:
        assert b"".join(third.chunks()) == b"data: 2\n\n"
    t.close()
    assert len({seen.peer for seen in upstream.seen}) == 1   # one connection served all three


def test_the_first_calls_of_many_threads_build_one_pool(upstream: Upstream) -> None:
    """A fresh client's first calls come from a thread pool at once: one pool serves them all
    (each thread built its own, and close() closed only the last one)."""
    t = _transport()
    barrier = threading.Barrier(32)

    def first(_: int) -> object:
        barrier.wait()
        return t._httpx._client()   # what a first send() or stream() takes its connection from

    with ThreadPoolExecutor(32) as pool:
        pools = list(pool.map(first, range(32)))
    assert len({id(each) for each in pools}) == 1
    upstream.queue(Reply(body=b'{"n": 1}'))
    assert t.send(_req(upstream.url)).status == 200
    t.close()
    assert t._httpx._sync.peek() is None


@pytest.mark.filterwarnings(  # 3.12+ warns on every fork with threads running; forking one is what these tests test
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(upstream: Upstream) -> None:
    """A client used before a fork: the child must not write on the parent's pooled connection
    (parent and children read each other's answers there), nor end it for the parent."""
    upstream.queue(*[Reply(body=f'{{"n": {i}}}'.encode()) for i in range(3)])
    t = _transport()
    assert t.send(_req(upstream.url)).json() == {"n": 0}   # one pooled connection, then the fork
    pid = os.fork()
    if pid == 0:   # the child: report by exit status only, never return into pytest
        try:
            ok = t.send(_req(upstream.url)).json() == {"n": 1}
        except BaseException:  # noqa: BLE001 - any failure is the child's answer
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert t.send(_req(upstream.url)).json() == {"n": 2}   # the parent's connection still works
    t.close()
    parent, child, parent_again = (seen.peer for seen in upstream.seen)
    assert child != parent and parent_again == parent


def test_one_async_backend_serves_one_asyncio_run_after_another(upstream: Upstream) -> None:
    """httpx's async connections belong to the loop that opened them: each ``asyncio.run()``
    gets its own pool (a shared one raised a raw "Event loop is closed" on the next run's first
    call), and a finished loop's pool is let go, not kept alive with its loop."""
    upstream.queue(*[Reply(body=b'{"n": 1}') for _ in range(3)])
    t = _transport(http_client="httpx")
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def call() -> int:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return (await t.asend(_req(upstream.url))).status

    assert [asyncio.run(call()) for _ in range(3)] == [200, 200, 200]
    clients = t._httpx._async.peek()
    assert clients is not None and len(clients) == 1   # only the last loop's
    gc.collect()
    assert [ref() for ref in loops[:2]] == [None, None]
    t.close()
    assert len(clients) == 0   # that loop is closed too: close() lets its pool go
