"""The answer to a request the server itself stopped: what both HTTP protocols send.

uvicorn cancels every request task still running when the graceful shutdown period (10 s)
ends. That is neither an error of the app nor a client hanging up, and the client is still
there: it is told, in the API's error shape, that the server stopped its request and that
it may retry (another replica, or this one restarted, can serve it) — a ``503`` with
``Retry-After``, never a bare ``500`` with a traceback in the log. A stream already under
way says so in-band (:class:`~.streaming.EventStream` sends the error event itself).

Shared so ``h1`` (:mod:`.h1_cycle`) and ``--http uvicorn`` (:mod:`.uvicorn_protocol`) answer
alike; this module builds the answer and the log line, each protocol writes them its way.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("cloverleaf.server")

Headers = list[tuple[bytes, bytes]]


def log_cut(scope: dict[str, Any], shutting_down: bool, started: bool, complete: bool) -> None:
    """One warning per cut request: which one, why, and what the client got."""
    why = "the server's graceful shutdown period ended" if shutting_down else "the server cancelled it"
    outcome = "answered 503" if not started else "response cut" if not complete else "response ended early"
    log.warning("%s %s was cut short, still running when %s (%s)", scope["method"], scope["path"], why, outcome)


def shutdown_answer(scope: dict[str, Any]) -> tuple[Headers, bytes]:
    """The ``503``'s headers and JSON body, in Anthropic's shape for its endpoints (or a
    client that sent ``anthropic-version``), else OpenAI's. The caller closes the connection
    after it: the server is going away."""
    from .errors import ApiError, error_body

    err = ApiError("the server is shutting down and stopped this request before it was answered; retry it",
                   status=503, kind="overloaded", code="server_shutting_down")
    anthropic = scope["path"].startswith("/v1/messages") or any(k == b"anthropic-version" for k, _ in scope["headers"])
    body = error_body(err, "anthropic" if anthropic else "openai")
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1"),
               (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    return headers, body
