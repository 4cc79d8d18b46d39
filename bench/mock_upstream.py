"""A mock OpenAI Chat Completions upstream that is never the bottleneck.

Why not Starlette or uvicorn: the benchmark measures what a gateway *adds*, so the upstream
must cost next to nothing per request. This is a raw ``asyncio.Protocol`` HTTP/1.1 server
with keep-alive and pipelining, pre-built response bytes and timers instead of tasks; on
this machine it answers tens of thousands of requests per second on one core.

The path picks the latency, the body picks the shape:

- ``/v1/chat/completions`` answers at once; ``/d20/v1/chat/completions`` after 20 ms
  (any ``/d<N>/v1/...`` waits N milliseconds).
- A body with ``"stream": true`` gets an SSE stream of :data:`STREAM_CHUNKS` chunks, the
  first at once and the rest ``N`` ms apart (so ``/d20`` is "64 chunks 20 ms apart"),
  a usage chunk when ``stream_options.include_usage`` asks for one, then ``data: [DONE]``.
- ``GET /v1/models`` lists one model (health checks); ``POST /v1/traces`` accepts an
  OTLP/HTTP export (the telemetry variant sends its spans here); anything else is a 404.

Run: ``python -m bench.mock_upstream --port 18080`` (prints ``READY <port>`` once listening).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Coroutine
from typing import Any

STREAM_CHUNKS = 64
MODEL = "mock-model"
REPLY = "Hello from the mock upstream."

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
_DELAY_RE = re.compile(rb"^/d(\d+)(/.*)$")
_CHAT_PATHS = (b"/v1/chat/completions", b"/chat/completions")


def _compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def chat_body() -> bytes:
    return _compact({
        "id": "chatcmpl-mock0001", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
        "system_fingerprint": "fp_mock",
    })


def stream_events(include_usage: bool) -> list[bytes]:
    """The SSE events of one stream, each a complete ``data: ...\\n\\n`` frame."""
    created = int(time.time())
    events = []
    for i in range(STREAM_CHUNKS):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta = {"role": "assistant", "content": "tok0 "}
        last = i == STREAM_CHUNKS - 1
        chunk = {"id": "chatcmpl-mock0001", "object": "chat.completion.chunk", "created": created, "model": MODEL,
                 "system_fingerprint": "fp_mock",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": "stop" if last else None}]}
        events.append(b"data: " + _compact(chunk) + b"\n\n")
    if include_usage:
        usage = {"id": "chatcmpl-mock0001", "object": "chat.completion.chunk", "created": created, "model": MODEL,
                 "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": STREAM_CHUNKS,
                                          "total_tokens": 9 + STREAM_CHUNKS}}
        events[-1] += b"data: " + _compact(usage) + b"\n\n"
    events[-1] += b"data: [DONE]\n\n"
    return events


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


_CHAT = _response("200 OK", chat_body())
_MODELS = _response("200 OK", _compact({"object": "list", "data": [
    {"id": MODEL, "object": "model", "created": 0, "owned_by": "mock"}]}))
_OTLP_OK = _response("200 OK", b"", b"application/x-protobuf")
_NOT_FOUND = _response("404 Not Found", _compact({"error": {"message": "no such path", "type": "invalid_request_error",
                                                            "code": "not_found"}}))
_SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
             b"transfer-encoding: chunked\r\n\r\n")
_SSE_EVENTS = {flag: [b"%x\r\n%s\r\n" % (len(ev), ev) for ev in stream_events(flag)] + [b"0\r\n\r\n"]
               for flag in (False, True)}
# The usage chunk is folded into the last frame; the terminating zero chunk rides with it.
for _frames in _SSE_EVENTS.values():
    _end = _frames.pop()
    _frames[-1] += _end


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection. Responses are written in request order, even when a
    delayed answer is followed by a pipelined one (a queue of pending replies)."""

    __slots__ = ("loop", "transport", "buf", "busy", "queue", "closed")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False  # a delayed response or a stream is in progress on this connection
        self.queue: list[tuple[bytes, bytes, bytes]] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            lower = head.lower()
            pos = lower.find(b"\r\ncontent-length:")
            if pos >= 0:
                stop = lower.find(b"\r\n", pos + 2)
                length = int(lower[pos + 17: stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding: chunked" in lower:
                body, used = _dechunk(self.buf, end + 4)
                if body is None:
                    return
                self.buf = self.buf[used:]
                self._request(head, body)
                continue
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4: total]
            self.buf = self.buf[total:]
            self._request(head, body)

    def _request(self, head: bytes, body: bytes) -> None:
        line_end = head.find(b"\r\n")
        method, _, rest = head[: line_end if line_end >= 0 else None].partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        self.queue.append((method, path, body))
        if not self.busy:
            self._next()

    def _next(self) -> None:
        while self.queue and not self.busy and not self.closed:
            method, path, body = self.queue.pop(0)
            delay_ms = 0
            m = _DELAY_RE.match(path)
            if m:
                delay_ms, path = int(m.group(1)), m.group(2)
            if method == b"GET" and path in (b"/v1/models", b"/models"):
                self.transport.write(_MODELS)  # type: ignore[union-attr]
            elif method == b"POST" and path == b"/v1/traces":
                self.transport.write(_OTLP_OK)  # type: ignore[union-attr]
            elif method != b"POST" or path not in _CHAT_PATHS:
                self.transport.write(_NOT_FOUND)  # type: ignore[union-attr]
            elif _STREAM_RE.search(body):
                self.busy = True
                self.transport.write(_SSE_HEAD)  # type: ignore[union-attr]
                self._stream(_SSE_EVENTS[bool(_USAGE_RE.search(body))], 0, delay_ms / 1000.0, self.loop.time())
            elif delay_ms:
                self.busy = True
                self.loop.call_later(delay_ms / 1000.0, self._reply, _CHAT)
            else:
                self.transport.write(_CHAT)  # type: ignore[union-attr]

    def _reply(self, data: bytes) -> None:
        self.busy = False
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]
            self._next()

    def _stream(self, frames: list[bytes], i: int, delay: float, start: float) -> None:
        """Write frame ``i``; frame ``k`` is due at ``start + k * delay`` (no drift)."""
        if self.closed:
            return
        if delay == 0:
            self.transport.write(b"".join(frames))  # type: ignore[union-attr]
            self.busy = False
            self._next()
            return
        self.transport.write(frames[i])  # type: ignore[union-attr]
        if i + 1 < len(frames):
            self.loop.call_at(start + (i + 1) * delay, self._stream, frames, i + 1, delay, start)
        else:
            self.busy = False
            self._next()


def _dechunk(buf: bytes, start: int) -> tuple[bytes | None, int]:
    """Decode a chunked request body starting at ``start``: (body, bytes used) or (None, 0)."""
    parts = []
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(buf[pos:eol].split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            if end < 0 and buf[eol:eol + 4] != b"\r\n\r\n":
                return None, 0
            return b"".join(parts), (end if end >= 0 else eol) + 4
        if len(buf) < eol + 2 + size + 2:
            return None, 0
        parts.append(buf[eol + 2: eol + 2 + size])
        pos = eol + 2 + size + 2


def install_fast_loop() -> str:
    """Use uvloop when it is installed (it is for the bench); say which loop runs."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def serve(host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(MockProtocol, host, port, backlog=4096, reuse_address=True)


async def _main(host: str, port: int) -> None:
    server = await serve(host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080, help="0 picks a free port (printed)")
    args = parser.parse_args()
    run_until_interrupted(_main(args.host, args.port))


def run_until_interrupted(main: Coroutine[Any, Any, None]) -> None:
    """The bench's servers (this mock, the floor proxy): uvloop when installed, until Ctrl-C."""
    install_fast_loop()
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
