"""An OpenAI-compatible upstream on 127.0.0.1 that counts every connection and byte it gets.

The privacy tests point "cloud" targets at one of these and assert it saw *zero* connections:
a refused call must not even open a socket. Answers are minimal but valid chat completions
(JSON or SSE) and embeddings, so a target that is allowed really answers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.connections = 0
        self.bytes_received = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        upstream = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                pair = super().get_request()
                with upstream._lock:
                    upstream.connections += 1
                return pair

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with upstream._lock:
                    upstream.bytes_received += length
                    upstream.paths.append(self.path)
                request = json.loads(body or b"{}")
                if self.path.endswith("/embeddings"):
                    texts = request.get("input") or [""]
                    texts = [texts] if isinstance(texts, str) else texts
                    self._json({"object": "list", "model": request.get("model"),
                                "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
                                         for i, _ in enumerate(texts)],
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
                    return
                text = f"answered by {upstream.name}"
                if request.get("stream"):
                    chunks = [
                        {"id": "c1", "object": "chat.completion.chunk", "model": request.get("model"),
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
                        {"id": "c1", "object": "chat.completion.chunk", "model": request.get("model"),
                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    ]
                    payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                    self._send(payload.encode(), "text/event-stream")
                    return
                self._json({"id": "c1", "object": "chat.completion", "model": request.get("model"),
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

            def _json(self, value: Any) -> None:
                self._send(json.dumps(value).encode(), "application/json")

            def _send(self, data: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
