"""Relaying OpenAI's own Responses API unchanged, when every target of the model is one.

A client of ``openai-responses/...`` (directly or through a route) gets OpenAI's answer as
OpenAI sent it — the same items, built-in tool calls (web search, file search, computer use)
and their annotations, the same events with their sequence numbers — with only ``model``
changed to the name the client asked for, and ``previous_response_id`` to the one it sent
(the gateway never sends that upstream: it rebuilds the conversation from its own store, so a
conversation begun on another provider continues here, and one begun here continues elsewhere).
``store: false``, ``metadata`` and the effort and ``strict`` as sent go upstream
(``ResponsesRequest.chat_request``), and ``store``/``metadata`` are echoed as the client sent them.

The events arrive as ``raw`` stream events (``ChatRequest.raw_events``) from the Responses
adapter, through the gateway as usual — limits, budgets, breakers, fallback between the
targets before the first output, call records all apply. :class:`PassthroughEncoder` is the
stream side (the same interface as :class:`.stream.ResponsesStreamEncoder`); :func:`relayed`
the non-streamed one. An answer that reaches the route without OpenAI's own copy (a response
cache hit, say) is rendered by the gateway's own encoder instead.
"""

from __future__ import annotations

from typing import Any

from ..._types import ChatResponse, StreamEvent, Usage
from ..http_io import dumps_text, tally_usage
from .stream import ResponsesStreamEncoder
from .wire import ResponsesRequest

_LIFECYCLE = ("response.created", "response.in_progress", "response.queued", "response.completed",
              "response.incomplete", "response.failed")
_TERMINAL = ("response.completed", "response.incomplete")


def _renamed(response: dict[str, Any], req: ResponsesRequest) -> dict[str, Any]:
    """OpenAI's Response as the client's: its model name and ``previous_response_id``, and
    ``store`` and ``metadata`` as it sent them (``store`` says whether the gateway keeps it)."""
    return {**response, "model": req.model, "previous_response_id": req.previous_response_id, "store": req.store,
            "metadata": req.metadata}


def relayed(req: ResponsesRequest, resp: ChatResponse) -> dict[str, Any] | None:
    """OpenAI's non-streamed Response, renamed; None when the answer did not come from it."""
    raw = resp.metadata.extra.get("raw_response")
    return _renamed(raw, req) if isinstance(raw, dict) else None


class PassthroughEncoder:
    """Writes each upstream event as it came (``model`` renamed in lifecycle events); the
    terminal one waits for :meth:`finish`, after the route has stored the Response."""

    __slots__ = ("_req", "_own", "_relaying", "_last_seq", "_final", "_terminal", "usage", "finish_reason",
                 "provider")

    def __init__(self, req: ResponsesRequest, own: ResponsesStreamEncoder) -> None:
        self._req = req
        #: the gateway's own encoder, used when the events carry no upstream copy (a cache hit)
        self._own = own
        self._relaying: bool | None = None  # decided by the first event that says
        self._last_seq = -1
        self._final: dict[str, Any] | None = None
        self._terminal = b""  # held until the Response is stored (see .state)
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.provider: str | None = None

    @property
    def final(self) -> dict[str, Any] | None:
        return self._final if self._relaying else self._own.final

    def start(self) -> bytes:
        return b""  # the upstream's own response.created comes first, or the fallback's start

    def encode(self, ev: StreamEvent) -> bytes | None:
        t = ev.type
        if t in ("usage", "done"):
            tally_usage(self.usage, ev)
            if t == "done":
                self.finish_reason = ev.finish_reason
                if ev.response is not None:
                    self.provider = ev.response.provider
        if self._relaying is None and t != "usage":
            self._relaying = t == "raw"
            if not self._relaying:
                return self._own.start() + (self._own.encode(ev) or b"")
        if not self._relaying:  # undecided (usage so far) or the gateway's own rendering
            return self._own.encode(ev)
        if t == "raw":
            event = dict((ev.extra or {}).get("event") or {})
            kind = str(event.get("type") or "")
            if kind in _LIFECYCLE and isinstance(event.get("response"), dict):
                event["response"] = _renamed(event["response"], self._req)
            if isinstance(event.get("sequence_number"), int):
                self._last_seq = event["sequence_number"]
            frame = f"event: {kind}\ndata: {dumps_text(event)}\n\n".encode()
            if kind in _TERMINAL:
                self._final = event["response"]
                self._terminal = frame
                return None
            return frame
        return None

    def complete(self, completed_at: int) -> dict[str, Any]:
        if not self._relaying:
            if self._relaying is None:  # nothing at all came: the fallback renders an empty answer
                self._relaying = False
                self._terminal = self._own.start()
            self.provider = self.provider or self._own.provider
            return self._own.complete(completed_at)
        if self._final is None:
            raise RuntimeError("the upstream Responses stream ended without a completed response")
        return self._final

    def finish(self) -> bytes:
        if not self._relaying:
            return self._terminal + self._own.finish()
        return self._terminal  # the upstream's own terminal event, once the Response is stored

    def error(self, payload: dict[str, Any]) -> bytes:
        """An error after the stream started: the Responses API's ``error`` event, numbered next."""
        if not self._relaying:
            return (b"" if self._relaying is False else self._own.start()) + self._own.error(payload)
        err = payload.get("error") or {}
        event = {"type": "error", "code": err.get("code"), "message": str(err.get("message") or "stream failed"),
                 "param": err.get("param"), "sequence_number": self._last_seq + 1}
        return f"event: error\ndata: {dumps_text(event)}\n\n".encode()
