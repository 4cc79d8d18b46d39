"""A stream is one pass over one connection: every way of reading it continues that pass.

Each ``iter(s)`` used to build a fresh generator whose collection closed the real stream, so a
peek (``next(iter(s))``) or a ``break`` left the stream silently empty, with no response.
"""

from __future__ import annotations

import pytest

import cloverleaf
from cloverleaf import AsyncClient, Client

TEXT = "one two three four five"


@pytest.fixture
def client():
    with Client(env={}, max_retries=0) as c:
        yield c


def test_peeking_then_reading_the_rest_gets_every_event_and_the_response(client) -> None:
    s = client.stream("fake/echo", TEXT)
    first = next(iter(s))
    rest = list(s)
    assert first.type == "text" and rest[-1].type == "done"
    assert first.text + "".join(e.text for e in rest if e.type == "text") == TEXT
    assert s.response is not None and s.response.content == TEXT


def test_a_loop_left_with_break_resumes_and_until_done_finishes_it(client) -> None:
    s = client.stream("fake/echo", TEXT)
    for ev in s:
        if ev.type == "text":
            break
    assert s.until_done().content == TEXT


def test_text_stream_continues_after_an_abandoned_text_stream(client) -> None:
    s = client.stream("fake/echo", TEXT)
    it = s.text_stream
    first = next(it)
    del it
    assert first + "".join(s.text_stream) == TEXT and s.response.content == TEXT


def test_until_done_on_a_closed_unfinished_stream_says_so(client) -> None:
    s = client.stream("fake/echo", TEXT)
    next(iter(s))
    s.close()
    assert list(s) == []
    with pytest.raises(cloverleaf.CloverleafError, match="closed before it finished"):
        s.until_done()


def test_a_with_block_closes_the_stream(client) -> None:
    with client.stream("fake/echo", TEXT) as s:
        next(iter(s))
    with pytest.raises(cloverleaf.CloverleafError, match="closed before it finished"):
        s.until_done()


async def test_async_peek_then_rest_and_text_stream_continue_one_stream() -> None:
    async with AsyncClient(env={}) as c:
        s = c.stream("fake/echo", TEXT)
        first = await s.__aiter__().__anext__()
        rest = [e async for e in s]
        assert first.text + "".join(e.text for e in rest if e.type == "text") == TEXT
        assert s.response is not None and s.response.content == TEXT

        s = c.stream("fake/echo", TEXT)
        async for t in s.text_stream:
            head = t
            break
        assert head + "".join([t async for t in s.text_stream]) == TEXT


async def test_async_until_done_after_break_and_after_close() -> None:
    async with AsyncClient(env={}) as c:
        s = c.stream("fake/echo", TEXT)
        async for _ in s:
            break
        assert (await s.until_done()).content == TEXT

        s = c.stream("fake/echo", TEXT)
        async with s:
            await s.__anext__()
        with pytest.raises(cloverleaf.CloverleafError, match="closed before it finished"):
            await s.until_done()
