"""Assemble decoded stream events into one :class:`ChatResponse`.

Every provider's decoder emits the same :class:`StreamEvent` vocabulary, so one
accumulator serves them all: text and reasoning are concatenated in order, tool-call
deltas are joined per ``index`` into complete calls with parsed arguments, usage fields
are merged (providers report input and output counts in different events), and the
``done`` event supplies the finish reason. A call whose decoder gave it no id gets one unique
to this answer (:mod:`.call_ids`), written on its first event too, so that a server relaying
the events sends the id the answer records (which its client sends back).
"""

from __future__ import annotations

import copy
from typing import Any

from .. import _jsoncodec as jsoncodec
from .._types import (
    ChatResponse,
    FinishReason,
    Part,
    Reasoning,
    ResponseMetadata,
    StreamEvent,
    Text,
    ToolCall,
    Usage,
)
from .call_ids import answer_salt, made_up_call_id


class _PendingCall:
    __slots__ = ("id", "name", "args", "extra")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name: str | None = None
        self.args: list[str] = []
        self.extra: dict[str, Any] | None = None


class StreamAccumulator:
    """Feed it every event with :meth:`add`; call :meth:`response` at the end."""

    __slots__ = ("_parts", "_calls", "_usage", "finish_reason", "raw_finish_reason", "model",
                 "response_id", "done", "_provider", "_reasoning_provider", "extra", "_block", "_salt")

    def __init__(self, model: str, provider: str, reasoning_provider: str | None = None) -> None:
        # parts in arrival order; consecutive text/reasoning deltas extend the last part
        self._parts: list[Part | _PendingCall] = []
        self._calls: dict[int, _PendingCall] = {}
        self._usage = Usage(reported=False)   # until the upstream reports some: a stream may never
        self.finish_reason: FinishReason | None = None
        self.raw_finish_reason: str | None = None
        self.model = model
        self.response_id: str | None = None
        self.done = False
        self._provider = provider
        #: what the reasoning parts carry: the adapter's ``reasoning_source`` (the row's name but
        #: for Claude on Vertex AI, whose thinking is marked as Claude's)
        self._reasoning_provider = reasoning_provider or provider
        #: Provider extras from the ``done`` event (Azure content-filter results), kept on metadata.extra.
        self.extra: dict[str, Any] = {}
        #: The provider's block index of the last text part (see :meth:`_text`).
        self._block: int | None = None
        #: What makes the ids of calls that came without one this answer's (made at the first).
        self._salt: str | None = None

    @property
    def has_output(self) -> bool:
        """True once any text, reasoning or tool call has arrived (the point of no replay)."""
        return bool(self._parts)

    def add(self, ev: StreamEvent) -> None:
        t = ev.type
        if t == "text":
            if ev.text:
                self._text(ev)
        elif t == "citation":
            self._citation(ev)
        elif t == "attachment":
            if ev.attachment is not None:   # a whole part (a generated image): the next text starts anew
                self._parts.append(ev.attachment)
        elif t == "reasoning":
            last = self._parts[-1] if self._parts else None
            # a signature or redacted data completes a reasoning block: more content starts the next
            # (Anthropic may send several redacted_thinking blocks in a row)
            if not isinstance(last, Reasoning) or last.redacted or (
                    last.signature and (ev.text or ev.signature or ev.redacted)):
                last = Reasoning("", provider=self._reasoning_provider)
                self._parts.append(last)
            if ev.text:
                last.text += ev.text
            if ev.signature:
                last.signature = ev.signature
            if ev.redacted:
                last.redacted = ev.redacted
            if ev.extra:
                last.extra = _extended(last.extra, ev.extra)
        elif t == "tool_call_delta":
            index = ev.index if ev.index is not None else len(self._calls)
            call = self._calls.get(index)
            if call is None:
                call = self._calls[index] = _PendingCall(ev.id or self._made_up_id(index))
                self._parts.append(call)
                # what relays the stream (the server) sends the id this answer records
                ev.id = call.id
            if ev.name:
                call.name = ev.name
            if ev.arguments:
                call.args.append(ev.arguments)
            if ev.extra:
                call.extra = {**(call.extra or {}), **ev.extra}
        elif t == "usage":
            if ev.usage is not None:
                self._merge_usage(ev.usage)
        elif t == "done":
            self.done = True
            if ev.finish_reason is not None:
                self.finish_reason = ev.finish_reason
            if ev.raw_finish_reason is not None:
                self.raw_finish_reason = ev.raw_finish_reason
            if ev.model:
                self.model = ev.model
            if ev.id:
                self.response_id = ev.id
            if ev.extra:
                self.extra.update(ev.extra)
            if ev.usage is not None:
                self._merge_usage(ev.usage)

    def _made_up_id(self, index: int) -> str:
        """An id for a call whose decoder gave none, unique to this answer (see
        :mod:`.call_ids`); the OpenAI decoder makes its own, from the answer's id."""
        self._salt = self._salt or answer_salt()
        return made_up_call_id(self._salt, index)

    def _text(self, ev: StreamEvent) -> None:
        """Text extends the last text part, except that text carrying different provider extras
        (another output item) starts a new part, and so does the text of another content block
        (both indexes known: Anthropic's and Bedrock's blocks), as a whole answer has a part per
        block; a cited part takes only the text of its own block, so a citation that comes after
        its text still finds it alone."""
        assert ev.text is not None
        last = self._parts[-1] if self._parts else None
        if isinstance(last, Text) and not (ev.extra and last.extra and ev.extra != last.extra) and not (
                ev.index != self._block and (last.citations is not None
                                             or (ev.index is not None and self._block is not None))):
            last.text += ev.text
            if last.citations is None:
                self._block = ev.index
        else:
            last = Text(ev.text)
            self._parts.append(last)
            self._block = ev.index
        if ev.extra:
            last.extra = {**(last.extra or {}), **ev.extra}

    def _citation(self, ev: StreamEvent) -> None:
        """A citation of the text block ``ev.index``: Anthropic sends it before that block's
        text; one that comes after (no provider is known to, but the order is not a contract)
        still joins the text of its own block rather than opening an empty part. A provider
        without blocks (no index: Gemini's grounding, OpenAI's annotations) cites the text it
        has just sent, after it: its citations join that (uncited) text part."""
        if ev.citation is None:
            return
        last = self._parts[-1] if self._parts else None
        if isinstance(last, Text) and self._block == ev.index:
            if last.citations is None:
                last.citations = []
            last.citations.append(ev.citation)
        else:
            self._parts.append(Text("", citations=[ev.citation]))
            self._block = ev.index

    def _merge_usage(self, u: Usage) -> None:
        cur = self._usage
        # Later reports carry running totals; keep the largest non-zero value per field.
        cur.input_tokens = u.input_tokens or cur.input_tokens
        cur.output_tokens = u.output_tokens or cur.output_tokens
        cur.cached_tokens = u.cached_tokens or cur.cached_tokens
        cur.cache_write_tokens = u.cache_write_tokens or cur.cache_write_tokens
        cur.reasoning_tokens = u.reasoning_tokens or cur.reasoning_tokens
        cur.cost = u.cost if u.cost is not None else cur.cost
        cur.cache_write_1h_tokens = u.cache_write_1h_tokens or cur.cache_write_1h_tokens
        cur.audio_input_tokens = u.audio_input_tokens or cur.audio_input_tokens
        cur.cached_audio_tokens = u.cached_audio_tokens or cur.cached_audio_tokens
        cur.audio_output_tokens = u.audio_output_tokens or cur.audio_output_tokens
        cur.image_output_tokens = u.image_output_tokens or cur.image_output_tokens
        cur.web_search_requests = u.web_search_requests or cur.web_search_requests
        cur.service_tier = u.service_tier or cur.service_tier
        cur.reported = cur.reported or u.reported

    def response(self) -> ChatResponse:
        parts: list[Part] = []
        for p in self._parts:
            if isinstance(p, _PendingCall):
                raw = "".join(p.args)
                parts.append(ToolCall(
                    id=p.id,
                    name=p.name or "",
                    arguments=parse_arguments(raw),
                    raw_arguments=raw,
                    extra=p.extra,
                ))
            else:
                parts.append(p)
        finish = self.finish_reason
        if finish in (None, "stop") and any(isinstance(p, ToolCall) for p in parts):
            finish = "tool_calls"
        return ChatResponse(
            parts=parts,
            model=self.model,
            provider=self._provider,
            finish_reason=finish,
            usage=copy.copy(self._usage),
            metadata=ResponseMetadata(response_id=self.response_id, raw_finish_reason=self.raw_finish_reason,
                                      extra=dict(self.extra)),
        )


def arguments_text(value: Any) -> str | None:
    """Tool-call arguments as the JSON text every later reader expects: a string as sent, None
    as None, and anything else (the object a few OpenAI-compatible servers send in place of
    the string, whole or streamed) as its JSON, so it joins, parses and relays like a string."""
    if value is None or isinstance(value, str):
        return value
    return jsoncodec.dumps_text(value)


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool-call arguments as a dict: ``{}`` for empty, the object for valid JSON, and
    ``{"_raw": raw}`` when the model produced invalid JSON (kept, never dropped), or JSON
    nested deeper than ``jsoncodec.MAX_DEPTH`` (which later code would recurse out of stack on).
    A lone surrogate escape in it is read as U+FFFD (:func:`jsoncodec.loads_upstream`)."""
    if not raw or not raw.strip():
        return {}
    try:
        value = jsoncodec.loads_upstream(raw, jsoncodec.MAX_DEPTH)
    except (ValueError, RecursionError):
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _extended(current: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A reasoning part's extras with a delta's: a list (OpenRouter's ``reasoning_details``
    fragments) grows, anything else is replaced."""
    out = dict(current or {})
    for key, value in new.items():
        before = out.get(key)
        out[key] = [*before, *value] if isinstance(before, list) and isinstance(value, list) else value
    return out
