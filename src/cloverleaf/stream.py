"""What ``stream()``/``astream()`` return: an iterator of events that remembers the end.

Iterating yields :class:`StreamEvent` values (``text``, ``reasoning``, ``tool_call_delta``,
``usage``, and one final ``done``). Once consumed, ``.response`` is the assembled
:class:`ChatResponse` (complete tool calls, usage, cost, ``.parsed``). ``text_stream``
yields only text; ``partial_objects()`` yields the structured output as it grows. Closing
early (``with`` block or ``close()``) releases the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .structured import PartialJSON
from .types import ChatResponse, StreamEvent


class Stream:
    def __init__(self, events: Iterator[StreamEvent]) -> None:
        self._events = events
        self.response: ChatResponse | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        for ev in self._events:
            if ev.type == "done":
                self.response = ev.response
            yield ev

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    @property
    def text_stream(self) -> Iterator[str]:
        for ev in self:
            if ev.type == "text" and ev.text:
                yield ev.text

    def partial_objects(self) -> Iterator[Any]:
        """Structured output as it arrives: each yield is the object so far (a dict/list),
        only when it changed. The final, validated value is ``response.parsed``."""
        partial = PartialJSON()
        last: Any = None
        for ev in self:
            if ev.type == "text" and ev.text:
                obj = partial.feed(ev.text)
                if obj is not None and obj != last:
                    last = obj
                    yield obj

    def until_done(self) -> ChatResponse:
        """Consume the rest and return the assembled response."""
        for _ in self:
            pass
        assert self.response is not None
        return self.response


class AsyncStream:
    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events
        self.response: ChatResponse | None = None

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        async for ev in self._events:
            if ev.type == "done":
                self.response = ev.response
            yield ev

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    async def text_stream(self) -> AsyncIterator[str]:
        async for ev in self:
            if ev.type == "text" and ev.text:
                yield ev.text

    async def partial_objects(self) -> AsyncIterator[Any]:
        partial = PartialJSON()
        last: Any = None
        async for ev in self:
            if ev.type == "text" and ev.text:
                obj = partial.feed(ev.text)
                if obj is not None and obj != last:
                    last = obj
                    yield obj

    async def until_done(self) -> ChatResponse:
        async for _ in self:
            pass
        assert self.response is not None
        return self.response
