"""Neutral stream events -> the Anthropic Messages SSE event sequence.

``message_start``, then ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta``, ``signature_delta``, ``citations_delta``) / ``content_block_stop`` with
consecutive indices, then ``message_delta`` (stop reason, the stop sequence that matched when the
upstream said, usage, the context edits an Anthropic upstream applied) and ``message_stop`` —
what the Anthropic SDK's accumulator rebuilds into a ``Message``, whatever provider
produced the events.
"""

from __future__ import annotations

from typing import Any

from .._types import StreamEvent, Usage
from ..providers.anthropic.citations import citation_json
from ..streams.call_ids import made_up_call_id
from . import signed_call_ids
from .anthropic_wire import context_management_json, matched_stop_sequence, stop_reason, usage_json
from .http_io import dumps_text, tally_usage


def _event(name: str, payload: str) -> str:
    return f"event: {name}\ndata: {payload}\n\n"


class MessageStreamEncoder:
    """Renders neutral stream events as Anthropic SSE events with consecutive block indices.

    As in Anthropic's own streams, one block is open at a time: each is started, filled and
    stopped before the next starts (a change of kind, or a new tool call, closes it). Should
    a provider interleave the argument fragments of parallel tool calls, a late fragment is
    still sent with its own block's index, so the SDK's accumulator files it correctly.
    """

    __slots__ = ("_message_id", "_model", "_next", "_open", "_open_kind", "_tools", "usage",
                 "finish_reason", "raw_finish_reason", "done_extra", "_cited")

    def __init__(self, *, message_id: str, model: str) -> None:
        self._message_id = message_id
        self._model = model
        self._next = 0
        self._open: int | None = None
        self._open_kind: str | None = None
        self._tools: dict[int, int] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.raw_finish_reason: str | None = None
        #: the done event's provider extras (the stop sequence that matched, the context edits applied)
        self.done_extra: dict[str, Any] | None = None
        #: the upstream's index of the cited text block now open (None: the open block cites nothing)
        self._cited: int | None = None

    def start(self) -> bytes:
        message: dict[str, Any] = {"id": self._message_id, "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage_json(self.usage)}
        return (_event("message_start", dumps_text({"type": "message_start", "message": message}))
                + _event("ping", '{"type":"ping"}')).encode()

    def encode(self, ev: StreamEvent) -> bytes | None:
        t = ev.type
        if t == "text":
            if not ev.text:
                return None
            # a cited block holds only its own text: the next block's starts a block of its own
            out = self._close() if self._open_kind == "cited" and ev.index != self._cited else ""
            out += "" if self._open_kind == "cited" else self._ensure("text", '{"type":"text","text":""}')
            return (out + self._delta(f'{{"type":"text_delta","text":{dumps_text(ev.text)}}}')).encode()
        if t == "citation":
            return self._citation(ev)
        if t == "reasoning":
            return self._reasoning(ev)
        if t == "tool_call_delta":
            return self._tool(ev)
        if t == "usage":
            tally_usage(self.usage, ev)
        elif t == "done":
            tally_usage(self.usage, ev)
            self.finish_reason = ev.finish_reason
            self.raw_finish_reason = ev.raw_finish_reason
            self.done_extra = ev.extra
        return None

    # -- blocks ----------------------------------------------------------------------
    def _delta(self, delta: str, index: int | None = None) -> str:
        i = self._open if index is None else index
        return _event("content_block_delta", f'{{"type":"content_block_delta","index":{i},"delta":{delta}}}')

    def _begin(self, block: str) -> tuple[int, str]:
        index = self._next
        self._next += 1
        return index, _event("content_block_start",
                             f'{{"type":"content_block_start","index":{index},"content_block":{block}}}')

    @staticmethod
    def _stop(index: int) -> str:
        return _event("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}')

    def _close(self) -> str:
        if self._open is None:
            return ""
        out = self._stop(self._open)
        self._open = self._open_kind = None
        return out

    def _ensure(self, kind: str, block: str) -> str:
        if self._open_kind == kind:
            return ""
        out = self._close()
        self._open, start = self._begin(block)
        self._open_kind = kind
        return out + start

    def _reasoning(self, ev: StreamEvent) -> bytes | None:
        # text, then its signature, then opaque data: the order message_json writes a part in
        out = ""
        if ev.text:
            out += self._ensure("thinking", '{"type":"thinking","thinking":"","signature":""}')
            out += self._delta(f'{{"type":"thinking_delta","thinking":{dumps_text(ev.text)}}}')
        if ev.signature:
            out += self._ensure("thinking", '{"type":"thinking","thinking":"","signature":""}')
            out += self._delta(f'{{"type":"signature_delta","signature":{dumps_text(ev.signature)}}}')
            out += self._close()  # a signature ends its thinking block
        if ev.redacted:
            out += self._close()
            index, start = self._begin(dumps_text({"type": "redacted_thinking", "data": ev.redacted}))
            out += start + self._stop(index)
        return out.encode() if out else None

    def _citation(self, ev: StreamEvent) -> bytes | None:
        """A citation opens its text block (``citations: []``, as Anthropic starts one), unless
        that block is the one open; then a ``citations_delta``, before the block's text."""
        if ev.citation is None:
            return None
        out = ""
        if self._open_kind != "cited" or ev.index != self._cited:
            out = self._close() + self._ensure("cited", '{"type":"text","text":"","citations":[]}')
            self._cited = ev.index
        delta = dumps_text({"type": "citations_delta", "citation": citation_json(ev.citation)})
        return (out + self._delta(delta)).encode()

    def _tool(self, ev: StreamEvent) -> bytes:
        key = ev.index if ev.index is not None else len(self._tools)
        out = ""
        index = self._tools.get(key)
        if index is None:
            out += self._close()
            call_id = ev.id or made_up_call_id(self._message_id, len(self._tools))   # (an engine's stream has every id)
            call_id = signed_call_ids.signed_id(call_id, ev.extra)
            block = {"type": "tool_use", "id": call_id, "name": ev.name or "", "input": {}}
            index, start = self._begin(dumps_text(block))
            self._tools[key] = index
            self._open, self._open_kind = index, "tool_use"
            out += start
        if ev.arguments:
            out += self._delta(f'{{"type":"input_json_delta","partial_json":{dumps_text(ev.arguments)}}}', index)
        return out.encode()

    def finish(self) -> bytes:
        reason = stop_reason(self.finish_reason, self.raw_finish_reason, bool(self._tools))
        delta = {"type": "message_delta",
                 "delta": {"stop_reason": reason, "stop_sequence": matched_stop_sequence(reason, self.done_extra)},
                 "usage": usage_json(self.usage), **context_management_json(self.done_extra)}
        return (self._close() + _event("message_delta", dumps_text(delta))
                + _event("message_stop", '{"type":"message_stop"}')).encode()

    @staticmethod
    def error(payload: dict[str, Any]) -> bytes:
        return _event("error", dumps_text(payload)).encode()
