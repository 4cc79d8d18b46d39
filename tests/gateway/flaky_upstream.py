"""A real, misbehaving OpenAI-compatible HTTP server on 127.0.0.1 for gateway tests.

Each request takes the next scripted behaviour (default ``ok``): ``ok``, ``status`` (any
HTTP error, optional headers such as Retry-After), ``hang`` (never answers until the
server stops), ``reset`` (a stream that sends ``after`` content chunks, then a TCP reset),
``garbage`` (200 with malformed JSON), ``ok`` with a ``pause`` (a stream whose second piece
comes that many seconds after its first), ``drop-after-done`` / ``stall-after-done`` (a whole
stream up to ``data: [DONE]`` in a chunked body, then the connection closed, or kept open
silent, without the body's closing 0-chunk). Speaks just enough Chat Completions, streaming and
not, for the real OpenAI adapter.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import Answer, LoopbackServer, Request, Writer, json_answer, sse_event, sse_stream


@dataclass
class Behaviour:
    kind: str = "ok"                 # ok | status | hang | reset | garbage | drop-after-done | stall-after-done
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0                   # reset: content chunks sent before the reset
    pause: float = 0.0               # ok, streamed: seconds between the first content chunk and the next


class FlakyUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        #: when each request arrived (epoch seconds, taken as its body is in)
        self.arrivals: list[float] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the upstream first"
        return f"{self._server.url}/v1"

    def start(self) -> FlakyUpstream:
        self._server = LoopbackServer(self._answer)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    # -- scripting --------------------------------------------------------------------
    def then(self, kind: str, *, status: int = 200, headers: dict[str, str] | None = None, after: int = 0,
             times: int = 1, pause: float = 0.0) -> FlakyUpstream:
        with self._lock:
            self._script.extend(Behaviour(kind, status, dict(headers or {}), after, pause) for _ in range(times))
        return self

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else Behaviour()

    # -- serving ----------------------------------------------------------------------
    def _answer(self, request: Request) -> Answer | Writer:
        with self._lock:
            self.arrivals.append(time.time())
        body = request.json(empty={})
        assert "authorization" in request.headers
        with self._lock:
            self.requests.append(body)
        behaviour = self._next()
        text = " ".join(f"word{i}" for i in range(6))
        if behaviour.kind == "hang":
            return self._hang
        if behaviour.kind == "status":
            return json_answer({"error": {"message": f"flaky says {behaviour.status}", "type": "server_error",
                                          "code": None}}, behaviour.status, behaviour.headers)
        if behaviour.kind == "garbage":
            return Answer(200, b'{"id": "chatcmpl-x", "choices": [{"mess', {"content-type": "application/json"})
        if body.get("stream") and behaviour.kind.endswith("-after-done"):
            stall = behaviour.kind == "stall-after-done"
            return lambda handler: self._unterminated(handler, body, text, stall=stall)
        if body.get("stream") and behaviour.kind == "reset":
            return lambda handler: self._reset(handler, body, text, behaviour.after)
        if body.get("stream"):
            return sse_stream(self._stream(body, text, behaviour.pause))
        return json_answer(_completion(body, text))

    def _hang(self, handler: BaseHTTPRequestHandler) -> None:
        """Never answers, until the server stops."""
        assert self._server is not None
        self._server.stopping.wait(30)

    def _stream(self, body: dict[str, Any], text: str, pause: float = 0.0) -> Iterator[bytes]:
        """The answer as SSE, a word a chunk, the second ``pause`` seconds after the first."""
        words = text.split(" ")
        for i, word in enumerate(words):
            if i == 1 and pause:
                time.sleep(pause)
            piece = word if i == 0 else " " + word
            yield sse_event(_chunk(body, {"content": piece} if i else {"role": "assistant", "content": piece}))
        yield sse_event(_chunk(body, {}, "stop"))
        yield sse_event({**_chunk(body, {}), "choices": [], "usage": _usage(body, text)})
        yield sse_event("[DONE]")

    def _reset(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], text: str, after: int) -> None:
        """The stream's first ``after`` content chunks, then a TCP reset mid-body."""
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")
        handler.end_headers()
        for piece in list(self._stream(body, text))[:min(after, len(text.split(" ")))]:
            handler.wfile.write(piece)
            handler.wfile.flush()
        # SO_LINGER 0: close() sends a TCP RST, a connection reset mid-body
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()

    def _unterminated(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], text: str, *, stall: bool) -> None:
        """The whole answer, usage and [DONE] as one chunk; the closing 0-chunk never comes."""
        events = [_chunk(body, {"content": text}), _chunk(body, {}, "stop"),
                  {**_chunk(body, {}), "choices": [], "usage": _usage(body, text)}]
        sse = b"".join(sse_event(e) for e in events) + sse_event("[DONE]")
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(sse), sse))
        handler.wfile.flush()
        if stall:
            assert self._server is not None
            self._server.stopping.wait(30)
        handler.close_connection = True


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4 + 1
    completion = len(text.split(" "))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-flaky", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": _usage(body, text)}


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-flaky", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
