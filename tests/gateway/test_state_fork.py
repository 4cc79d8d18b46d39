"""A process forked from one whose gateway keeps its state in Redis talks to Redis over
connections of its own, and its calls count against the limits the parent's count against.

The Redis client is one per event loop, and a forked child never runs on its parent's loop (the
sync client's loop thread starts afresh in the child; asyncio itself forgets the running loop
at a fork): the child's first command opens a connection of its own. The child here is a real
``os.fork()`` of the test process, reporting through a pipe and leaving with ``os._exit``.
"""

from __future__ import annotations

import signal
import threading

import pytest

from cloverleaf import RateLimitExceeded

from .conftest import Harness, chat_request
from .redis_support import fresh_prefix, redis_url
from .test_store_fork import in_child


@pytest.mark.redis
def test_a_forked_child_counts_its_calls_in_the_limits_the_parent_counts_in(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, limits={"r": {"rpm": 3}},
                         state={"url": f"{redis_url()}?prefix={fresh_prefix()}"})
    assert gw.chat("r", chat_request()).text   # the parent's client: connected, idle in its pool

    def child() -> dict[str, object]:
        return {"answered": bool(gw.chat("r", chat_request()).text)}

    assert in_child(child) == {"answered": True}
    assert gw.chat("r", chat_request()).text
    with pytest.raises(RateLimitExceeded):   # three calls made: the parent's, the child's, the parent's
        gw.chat("r", chat_request())


def test_a_child_forked_while_a_thread_held_the_memory_states_lock_still_makes_calls(harness: Harness) -> None:
    """The sync client's loop thread holds the in-memory state's lock for each admission; a fork
    in that moment gave the child a lock held by a thread it does not have: its first call hung."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, limits={"r": {"rpm": 3}})
    assert gw.chat("r", chat_request()).text
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with gw.state._lock:   # type: ignore[attr-defined]   # as an admission on another thread does
            held.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    try:
        def child() -> dict[str, object]:
            signal.alarm(30)   # a hung child ends, and reports nothing, rather than hang the suite
            answered = bool(gw.chat("r", chat_request()).text)
            with pytest.raises(RateLimitExceeded):   # the parent's call, copied at the fork, and 2 of its own
                for _ in range(3):
                    gw.chat("r", chat_request())
            return {"answered": answered}

        assert in_child(child) == {"answered": True}
    finally:
        release.set()
        thread.join()
