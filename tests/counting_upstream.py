"""An OpenAI-compatible upstream on 127.0.0.1 that counts every connection and byte it gets.

The privacy tests point "cloud" targets at one of these and assert it saw *zero* connections:
a refused call must not even open a socket. Answers are minimal but valid chat completions
(JSON or SSE) and embeddings, so a target that is allowed really answers.
"""

from __future__ import annotations

from tests.loopback import Answer, LoopbackServer, Request, json_answer, sse_event


class CountingUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.server = LoopbackServer(self._answer)
        self.port = self.server.port

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def bytes_received(self) -> int:
        return sum(len(r.body) for r in self.server.requests)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.server.requests]

    def _answer(self, request: Request) -> Answer:
        body = request.json(empty={})
        if request.path.endswith("/embeddings"):
            texts = body.get("input") or [""]
            texts = [texts] if isinstance(texts, str) else texts
            return json_answer({"object": "list", "model": body.get("model"),
                                "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
                                         for i, _ in enumerate(texts)],
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        text = f"answered by {self.name}"
        if body.get("stream"):
            chunks = [
                {"id": "c1", "object": "chat.completion.chunk", "model": body.get("model"),
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
                {"id": "c1", "object": "chat.completion.chunk", "model": body.get("model"),
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            payload = b"".join(sse_event(c) for c in chunks) + sse_event("[DONE]")
            return Answer(200, payload, {"content-type": "text/event-stream"})
        return json_answer({"id": "c1", "object": "chat.completion", "model": body.get("model"),
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def close(self) -> None:
        self.server.close()
