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

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    request_queue_size = 256     # a burst of connections waits in the backlog, not in SYN retries


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
        #: when each request arrived (epoch seconds, taken before its body is read)
        self.arrivals: list[float] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FlakyUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

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
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                arrived = time.time()
                with upstream._lock:
                    upstream.arrivals.append(arrived)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                assert "authorization" in {k.lower() for k in self.headers}
                with upstream._lock:
                    upstream.requests.append(body)
                behaviour = upstream._next()
                text = " ".join(f"word{i}" for i in range(6))
                if behaviour.kind == "hang":
                    upstream._stopping.wait(30)
                    return
                if behaviour.kind == "status":
                    payload = json.dumps({"error": {"message": f"flaky says {behaviour.status}",
                                                    "type": "server_error", "code": None}}).encode()
                    self._send(behaviour.status, payload, behaviour.headers)
                    return
                if behaviour.kind == "garbage":
                    self._send(200, b'{"id": "chatcmpl-x", "choices": [{"mess', {})
                    return
                if body.get("stream") and behaviour.kind.endswith("-after-done"):
                    self._unterminated(body, text, stall=behaviour.kind == "stall-after-done")
                    return
                if body.get("stream"):
                    self._stream(body, text, behaviour)
                    return
                self._send(200, json.dumps(_completion(body, text)).encode(), {})

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, body: dict[str, Any], text: str, behaviour: Behaviour) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                words = text.split(" ")
                for i, word in enumerate(words):
                    if behaviour.kind == "reset" and i >= behaviour.after:
                        self.wfile.flush()
                        # SO_LINGER 0: close() sends a TCP RST, a connection reset mid-body
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        return
                    if i == 1 and behaviour.pause:
                        self.wfile.flush()
                        time.sleep(behaviour.pause)
                    piece = word if i == 0 else " " + word
                    self._event(_chunk(body, {"content": piece} if i else {"role": "assistant", "content": piece}))
                self._event(_chunk(body, {}, "stop"))
                self._event({**_chunk(body, {}), "choices": [], "usage": _usage(body, text)})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _unterminated(self, body: dict[str, Any], text: str, *, stall: bool) -> None:
                """The whole answer, usage and [DONE] as one chunk; the closing 0-chunk never comes."""
                events = [_chunk(body, {"content": text}), _chunk(body, {}, "stop"),
                          {**_chunk(body, {}), "choices": [], "usage": _usage(body, text)}]
                sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(sse), sse))
                self.wfile.flush()
                if stall:
                    upstream._stopping.wait(30)
                self.close_connection = True

            def _event(self, data: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

        return Handler


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
