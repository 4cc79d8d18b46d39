"""One streamed call's I/O-free half, and the read of a stream's tail after its answer is whole.

The engine's sync and async stream loops differ only in how they wait for the network; what they
do with each chunk (decode, accumulate, time the first token, finish the response) lives here once,
so the two loops cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from ._errors import CloverleafError, MalformedResponseError, TransportError
from ._estimate import answer_tokens
from ._http import kept_headers, request_id
from ._resolve import Target
from ._types import ChatRequest, ChatResponse, StreamEvent
from ._upstream_errors import scrubbed
from .streams.accumulate import StreamAccumulator
from .transport.base import BoundedReads


class Finisher(Protocol):
    """What a stream run needs of the engine that started it (typed here, not imported, so the
    engine can import this module)."""

    def _finalize(self, target: Target, req: ChatRequest, out: ChatResponse) -> ChatResponse: ...

    def estimate_tokens(self, req: ChatRequest) -> int: ...

#: After a stream's terminal event, how long :meth:`Engine.astream` waits for the rest of the body
#: (the chunked encoding's closing chunk) so the connection can be pooled; then it is closed.
TAIL_GRACE_SECONDS = 0.25


async def read_tail(chunks: AsyncIterator[bytes]) -> None:
    """The body after a stream's terminal event, read and ignored for at most
    ``TAIL_GRACE_SECONDS`` (:meth:`Engine.astream`): its end lets the connection be pooled; a
    drop, a stall or anything else there changes nothing, the answer being complete."""
    try:
        async with asyncio.timeout(TAIL_GRACE_SECONDS):
            async for _ in chunks:
                pass
    except (TransportError, TimeoutError):
        pass


def read_tail_sync(bounded: BoundedReads | None, chunks: Iterator[bytes]) -> None:
    """:func:`read_tail` for a sync stream, with every read bounded by the transport; nothing
    when it cannot bound them (a read could then block for ``idle``)."""
    if bounded is None:
        return
    try:
        with bounded(TAIL_GRACE_SECONDS):
            for _ in chunks:
                pass
    except TransportError:
        pass


class StreamRun:
    """The shared, I/O-free part of one streamed call: decode, accumulate, time, finish."""

    __slots__ = ("engine", "target", "req", "decoder", "acc", "t0", "ttft", "headers", "done")

    def __init__(self, engine: Finisher, target: Target, req: ChatRequest) -> None:
        self.engine = engine
        self.target = target
        self.req = req
        self.decoder = target.adapter.stream_decoder(req)
        self.acc = StreamAccumulator(target.model, target.adapter.name, target.adapter.reasoning_source)
        self.t0 = time.perf_counter()
        self.ttft: float | None = None
        self.headers: dict[str, str] = {}
        #: The decoder's terminal event once it came: the answer is whole, and reading stops.
        self.done: StreamEvent | None = None

    def opened(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        try:
            events = self.decoder.feed(chunk)
        except CloverleafError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise self._malformed(exc) from exc
        return self._take(events)

    def closed(self) -> list[StreamEvent]:
        """The end of the body: the last events, a stream cut before its end raising (with
        :meth:`broke`'s usage)."""
        try:
            return self.close()
        except CloverleafError as exc:
            self.broke(exc)
            raise

    def broke(self, exc: CloverleafError) -> None:
        """``exc``, which broke the stream, with the call's secrets masked (an upstream's error
        inside the stream echoes a key as an error response does) and carrying what the call used
        so far (``stream_usage``): the upstream's counts where it gave them (Anthropic's input in
        ``message_start``), the rest estimated from the prompt and the text received, never a
        reported 0 for what was cut off. Marked unreported: it prices nothing by itself."""
        scrubbed(self.target, exc)
        got = self.acc.response()
        usage = got.usage
        usage.input_tokens = usage.input_tokens or self.engine.estimate_tokens(self.req)
        usage.output_tokens = max(usage.output_tokens, answer_tokens(got))
        usage.reported = False
        exc.stream_usage = usage

    def close(self) -> list[StreamEvent]:
        try:
            events = self._take(self.decoder.close())
        except CloverleafError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise self._malformed(exc) from exc
        out = self.acc.response()
        md = out.metadata
        md.latency_ms = (time.perf_counter() - self.t0) * 1000.0
        md.time_to_first_token_ms = self.ttft
        md.request_id = request_id(self.headers)
        md.headers = kept_headers(self.headers)
        self.engine._finalize(self.target, self.req, out)
        done = self.done or StreamEvent("done", finish_reason=out.finish_reason)
        done.response = out
        done.finish_reason = out.finish_reason
        return [*events, done]

    def _take(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out = []
        acc = self.acc
        for ev in events:
            acc.add(ev)
            if ev.type == "done":
                self.done = ev  # held back: emitted once, last, with the assembled response
                continue
            if self.ttft is None and ev.type not in ("usage", "raw"):
                self.ttft = (time.perf_counter() - self.t0) * 1000.0
            out.append(ev)
        return out

    def _malformed(self, exc: BaseException) -> MalformedResponseError:
        return self.target.adapter.malformed(f"bad stream data: {type(exc).__name__}: {exc}", None, self.target.model)
