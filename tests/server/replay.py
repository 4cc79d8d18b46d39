"""A stand-in provider on 127.0.0.1 answering from recorded traffic (tests/fixtures/wire)."""

from __future__ import annotations

from typing import Any

from tests.loopback import Answer, LoopbackServer, Request
from tests.wire import cassette


class Replay:
    """A stand-in provider: answers each POST under ``/<name>/`` with that recording's next
    response, and keeps the request bodies it received."""

    def __init__(self) -> None:
        self.queues: dict[str, list[Any]] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.server = LoopbackServer(self._answer)
        self.url = self.server.url

    def _answer(self, request: Request) -> Answer:
        name = request.path.strip("/").split("/", 1)[0]
        self.received.setdefault(name, []).append(request.json())
        queue = self.queues.get(name) or []
        if not queue:
            return Answer(500)
        resp = queue.pop(0)
        return Answer(resp.status, resp.body, {"content-type": resp.headers.get("content-type", "application/json")})

    def load(self, name: str, recording: str) -> None:
        self.queues[name] = [i.response for i in cassette(recording)]
        self.received[name] = []

    def close(self) -> None:
        self.server.close()
