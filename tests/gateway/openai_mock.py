"""An OpenAI-compatible upstream on 127.0.0.1 that answers every chat call from its prompt
and counts what it served: for tests that must see whether the provider was called at all
(the response cache, telemetry). Streams are sent as real SSE chunks, one word each. A
non-streamed request that offers tools is answered with a call to the first one."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloverleaf._config import ProviderSettings


class OpenAIMock:
    def __init__(self) -> None:
        self.chats = 0
        self.embeddings = 0
        self.bodies: list[dict[str, Any]] = []
        #: False: answers carry no usage object (a compatible server that reports none)
        self.report_usage = True
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                with mock._lock:
                    mock.bodies.append(body)
                if self.path.endswith("/embeddings"):
                    with mock._lock:
                        mock.embeddings += 1
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                            for i, t in enumerate(inputs)]
                    self._json({"object": "list", "data": data, "model": body["model"],
                                "usage": {"prompt_tokens": 3, "total_tokens": 3}})
                    return
                with mock._lock:
                    mock.chats += 1
                    n = mock.chats
                prompt = body["messages"][-1]["content"]
                prompt = prompt if isinstance(prompt, str) else " ".join(p.get("text", "") for p in prompt)
                answer = f"answer {n} to: {prompt}"
                usage: dict[str, int] | None = {"prompt_tokens": 10, "completion_tokens": len(answer.split()),
                                                "total_tokens": 20} if mock.report_usage else None
                if body.get("stream"):
                    self._stream(body["model"], answer, usage)
                    return
                message: dict[str, Any] = {"role": "assistant", "content": answer}
                if body.get("tools"):
                    name = body["tools"][0]["function"]["name"]
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": "{}"}}]}
                self._json({"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": body["model"],
                            "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if body.get("tools") else "stop"}],
                            **({"usage": usage} if usage else {})})

            def _json(self, doc: dict[str, Any]) -> None:
                raw = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, model: str, answer: str, usage: dict[str, int] | None) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                words = answer.split(" ")
                for i, word in enumerate(words):
                    delta = {"content": word if i == 0 else " " + word}
                    self._event({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                             **({"usage": usage} if usage else {})})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, doc: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(doc).encode() + b"\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def provider(self, name: str = "mock") -> ProviderSettings:
        return ProviderSettings(name=name, kind="openai", base_url=self.base_url, api_key_env="MOCK_KEY")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
