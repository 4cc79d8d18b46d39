"""An OpenAI-compatible upstream on 127.0.0.1 that answers every chat call from its prompt
and counts what it served: for tests that must see whether the provider was called at all
(the response cache, telemetry). Streams are sent as real SSE chunks, one word each. A
non-streamed request that offers tools is answered with a call to the first one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from cloverleaf._config import ProviderSettings
from tests.loopback import Answer, LoopbackServer, Request, json_answer, sse_event, sse_stream


class OpenAIMock:
    def __init__(self) -> None:
        self.chats = 0
        self.embeddings = 0
        self.bodies: list[dict[str, Any]] = []
        #: False: answers carry no usage object (a compatible server that reports none)
        self.report_usage = True
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._answer)

    def _answer(self, request: Request) -> Answer:
        body = request.json(empty={})
        with self._lock:
            self.bodies.append(body)
        if request.path.endswith("/embeddings"):
            with self._lock:
                self.embeddings += 1
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                    for i, t in enumerate(inputs)]
            return json_answer({"object": "list", "data": data, "model": body["model"],
                                "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        with self._lock:
            self.chats += 1
            n = self.chats
        prompt = body["messages"][-1]["content"]
        prompt = prompt if isinstance(prompt, str) else " ".join(p.get("text", "") for p in prompt)
        answer = f"answer {n} to: {prompt}"
        usage: dict[str, int] | None = {"prompt_tokens": 10, "completion_tokens": len(answer.split()),
                                        "total_tokens": 20} if self.report_usage else None
        if body.get("stream"):
            return sse_stream(_stream(body["model"], answer, usage))
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": "{}"}}]}
        return json_answer({"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": body["model"],
                            "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if body.get("tools") else "stop"}],
                            **({"usage": usage} if usage else {})})

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def provider(self, name: str = "mock") -> ProviderSettings:
        return ProviderSettings(name=name, kind="openai", base_url=self.base_url, api_key_env="MOCK_KEY")

    def close(self) -> None:
        self.server.close()


def _stream(model: str, answer: str, usage: dict[str, int] | None) -> Iterator[bytes]:
    """The answer as SSE chunks, one word each, then the finish (with the usage) and ``[DONE]``."""
    words = answer.split(" ")
    for i, word in enumerate(words):
        delta = {"content": word if i == 0 else " " + word}
        yield sse_event({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield sse_event({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                     **({"usage": usage} if usage else {})})
    yield sse_event("[DONE]")
