"""A stand-in provider on 127.0.0.1 answering from recorded traffic (tests/fixtures/wire)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.wire import cassette


class Replay:
    """A stand-in provider: answers each POST under ``/<name>/`` with that recording's next
    response, and keeps the request bodies it received."""

    def __init__(self) -> None:
        self.queues: dict[str, list[Any]] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                name = self.path.strip("/").split("/", 1)[0]
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                replay.received.setdefault(name, []).append(json.loads(body))
                queue = replay.queues.get(name) or []
                if not queue:
                    self.send_response(500)
                    self.end_headers()
                    return
                resp = queue.pop(0)
                self.send_response(resp.status)
                self.send_header("content-type", resp.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def load(self, name: str, recording: str) -> None:
        self.queues[name] = [i.response for i in cassette(recording)]
        self.received[name] = []
