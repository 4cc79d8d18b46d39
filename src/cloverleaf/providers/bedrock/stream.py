"""Bedrock ConverseStream: event-stream frames to :class:`~cloverleaf._types.StreamEvent` values.

The frames (``messageStart``, ``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``,
``messageStop``, ``metadata``) come out of :class:`~cloverleaf.streams.eventstream.EventStreamDecoder`;
this module only interprets their JSON payloads. Bedrock ends a stream with ``messageStop``
(the stop reason) followed by ``metadata`` (token usage), so the one ``done`` event is emitted
once both have arrived, or at ``close()`` if only ``messageStop`` came; a stream that ends
before ``messageStop`` was cut off and raises MalformedResponseError. ``messageStop`` also
names the stop sequence that matched when Claude was asked for it (:data:`STOP_SEQUENCE_PATH`):
it rides on the ``done`` event's extra, as the Anthropic adapter's does.

Also shared with the non-streaming parser: the stop-reason table and the usage conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._errors import MalformedResponseError, ProviderError
from ..._types import FinishReason, StreamEvent, Usage
from ...streams.eventstream import EventMessage, EventStreamDecoder
from ..anthropic.tool_names import read_back
from .citations import citation_from
from .server_blocks import StreamedServerBlocks

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # the model produced output or a tool call Bedrock could not parse (Gemini's MALFORMED_FUNCTION_CALL)
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}


#: The JSON pointer a Converse request names in ``additionalModelResponseFieldPaths`` to be told
#: which stop sequence ended a Claude answer (it comes back in ``additionalModelResponseFields``).
STOP_SEQUENCE_PATH = "/stop_sequence"


def matched_stop_sequence(data: dict[str, Any]) -> str | None:
    """Which of the request's stop sequences ended the answer, from a Converse response or a
    ``messageStop`` event: only when the model said so (Claude, asked with STOP_SEQUENCE_PATH);
    other models report ``stopReason: stop_sequence`` alone, and none is made up for them."""
    fields = data.get("additionalModelResponseFields")
    value = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return value if isinstance(value, str) else None


def usage_from(raw: dict[str, Any] | None) -> Usage:
    """Bedrock counts cache reads and writes apart from ``inputTokens``; ours includes them
    (so ``total_tokens`` equals Bedrock's ``totalTokens``), and ``cacheDetails`` tells which writes
    went to a one-hour cache (cost: they bill above the five-minute rate). Without a ``usage`` object, usage
    is unknown, not zero."""
    if not isinstance(raw, dict):
        return Usage(reported=False)
    read = int(raw.get("cacheReadInputTokens") or 0)
    write = int(raw.get("cacheWriteInputTokens") or 0)
    details = raw.get("cacheDetails")
    hour = sum(int(d.get("inputTokens") or 0) for d in details if isinstance(d, dict) and d.get("ttl") == "1h") \
        if isinstance(details, list) else 0
    return Usage(
        input_tokens=int(raw.get("inputTokens") or 0) + read + write,
        output_tokens=int(raw.get("outputTokens") or 0),
        cached_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=min(hour, write),   # cacheDetails: the writes by TTL, billed at the 1h rate
    )


# what a content block carries, decided at contentBlockStart
_TOOL, _STRUCTURED, _SKIP = "tool", "structured", "skip"


class ConverseStreamDecoder:
    """Incremental decoder for one ConverseStream response body.

    ``tool_names`` maps the request's tool names Converse refuses to those they were sent under
    (:func:`.request_rules.tool_name_map`): a call's name is read back to the caller's.
    ``structured_tool`` names the forced tool that carries structured output: its input
    fragments come out as ``text`` events (the JSON answer), not as a tool call. Plain text
    the model writes around that tool call is dropped, as the non-streaming parser does; it is
    held back until the stream shows whether the tool is called, and released at the end if
    it was not. Server-side tool blocks (``server_tool_use`` and their ``toolResult``) are run
    by Bedrock: no part of the answer, they are kept whole in the ``done`` event's
    ``server_tool_blocks``, as the non-streamed answer keeps them (:mod:`.server_blocks`). A tool block that ends (``contentBlockStop``, or the end of the
    message) without any input text was called with no arguments: it gets ``{}``, the input
    the non-streamed answer has, never ``""`` (which is not JSON).
    """

    __slots__ = ("_frames", "_provider", "_model", "_structured_tool", "_blocks", "_tool_index",
                 "_stop_reason", "_stop_sequence", "_usage_seen", "_done", "_structured_seen", "_held", "_input_seen",
                 "_extra", "_server", "_tool_names")

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        structured_tool: str | None = None,
        tool_names: dict[str, str] | None = None,
        on_exception: Callable[[EventMessage], ProviderError] | None = None,
    ) -> None:
        self._frames = EventStreamDecoder(provider=provider, model=model, on_exception=on_exception)
        self._provider = provider
        self._model = model
        self._structured_tool = structured_tool
        #: the request's tool names sent in another form (:mod:`.request_rules`), to read the answer's back
        self._tool_names = tool_names or {}
        self._blocks: dict[int, str] = {}
        self._tool_index: dict[int, int] = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage_seen = False
        self._done = False
        self._structured_seen = False
        self._held: list[str] = []
        #: tool and structured blocks that have received input text
        self._input_seen: set[int] = set()
        #: what the whole answer keeps too: the guardrail ``trace``, the model's extra response fields
        self._extra: dict[str, Any] = {}
        self._server = StreamedServerBlocks()

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self._events(self._frames.feed(data))

    def close(self) -> list[StreamEvent]:
        events = self._events(self._frames.close())
        if self._done:
            return events
        if self._stop_reason is None:
            raise MalformedResponseError(
                "the stream ended before Bedrock's messageStop event (connection cut off?)",
                provider=self._provider, model=self._model,
            )
        self._finish(events)
        return events

    # -- frames to events ----------------------------------------------------------------
    def _events(self, messages: list[EventMessage]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for msg in messages:
            if msg.message_type != "event" or self._done:
                continue
            try:
                data = msg.json()
            except ValueError:
                raise MalformedResponseError(
                    f"event {msg.event_type!r} payload is not JSON: {msg.payload[:200]!r}",
                    provider=self._provider, model=self._model,
                ) from None
            kind = msg.event_type
            if kind == "contentBlockStart":
                self._start(data, out)
            elif kind == "contentBlockDelta":
                self._delta(data, out)
            elif kind == "contentBlockStop":
                self._block_stop(int(data.get("contentBlockIndex") or 0), out)
            elif kind == "messageStop":
                self._stop_reason = str(data.get("stopReason") or "")
                self._stop_sequence = matched_stop_sequence(data)
                self._extra.update(response_extras(data))
            elif kind == "metadata":
                self._usage_seen = True
                out.append(StreamEvent("usage", usage=usage_from(data.get("usage"))))
                self._extra.update(response_extras(data))
            if self._stop_reason is not None and self._usage_seen:
                self._finish(out)
        return out

    def _start(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        block = int(data.get("contentBlockIndex") or 0)
        start = data.get("start") or {}
        tool = start.get("toolUse")
        if tool is None:
            if "toolResult" in start:
                self._blocks[block] = _SKIP
                self._server.start_result(block, start["toolResult"])
            return
        if tool.get("type") == "server_tool_use":
            self._blocks[block] = _SKIP
            self._server.start_use(block, tool)
        elif self._structured_tool is not None and tool.get("name") == self._structured_tool:
            self._blocks[block] = _STRUCTURED
            self._structured_seen = True
            self._held.clear()
        else:
            self._blocks[block] = _TOOL
            index = self._tool_index.setdefault(block, len(self._tool_index))
            name = tool.get("name")
            if isinstance(name, str) and self._tool_names:
                name = read_back(self._tool_names, name)
            out.append(StreamEvent("tool_call_delta", index=index, id=tool.get("toolUseId"), name=name))

    def _delta(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        block = int(data.get("contentBlockIndex") or 0)
        delta = data.get("delta") or {}
        role = self._blocks.get(block)
        if role == _SKIP:
            self._server.delta(block, delta)
            return
        if "text" in delta:
            self._text(delta["text"], out, block)
        elif "citation" in delta:  # CitationsDelta: a citation of this block's text
            self._citation(delta["citation"], block, out)
        elif "citationsContent" in delta:  # a whole citations block in one delta (Nova grounding)
            texts, cited = citations_block(delta["citationsContent"])
            for item in cited:
                self._citation(item, block, out)
            for text in texts:
                self._text(text, out, block)
        elif "toolUse" in delta:
            fragment = (delta["toolUse"] or {}).get("input") or ""
            if fragment:
                self._input_seen.add(block)
            if role == _STRUCTURED:
                if fragment:
                    out.append(StreamEvent("text", text=fragment))
            else:
                index = self._tool_index.setdefault(block, len(self._tool_index))
                out.append(StreamEvent("tool_call_delta", index=index, arguments=fragment))
        elif "reasoningContent" in delta:
            rc = delta["reasoningContent"] or {}
            if rc.get("text") or rc.get("signature") or rc.get("redactedContent"):
                out.append(StreamEvent(
                    "reasoning", text=rc.get("text") or None, signature=rc.get("signature"),
                    redacted=rc.get("redactedContent"),
                ))

    def _block_stop(self, block: int, out: list[StreamEvent]) -> None:
        """A tool block closed without input text: called with no arguments, so ``{}``."""
        role = self._blocks.pop(block, None)
        if role == _SKIP:
            self._server.stop(block)
            return
        if block in self._input_seen:
            return
        if role == _STRUCTURED:
            out.append(StreamEvent("text", text="{}"))
        elif role == _TOOL:
            out.append(StreamEvent("tool_call_delta", index=self._tool_index[block], arguments="{}"))

    def _text(self, text: Any, out: list[StreamEvent], block: int) -> None:
        if not text:
            return
        if self._structured_tool is None:
            out.append(StreamEvent("text", text=text, index=block))
        elif not self._structured_seen:
            self._held.append(text)

    def _citation(self, data: Any, block: int, out: list[StreamEvent]) -> None:
        """A citation of block ``block``'s text: a ``citation`` event (Anthropic's API sends a
        block's citations before its text, and Claude on Bedrock keeps that order)."""
        citation = citation_from(data)
        if citation is not None and self._structured_tool is None:
            out.append(StreamEvent("citation", index=block, citation=citation))

    def _finish(self, out: list[StreamEvent]) -> None:
        for block in [b for b, role in self._blocks.items() if role in (_TOOL, _STRUCTURED)]:
            self._block_stop(block, out)   # a block the stream never closed
        if self._held:  # structured output asked for, but the model answered in plain text
            out.append(StreamEvent("text", text="".join(self._held)))
            self._held.clear()
        self._done = True
        raw = self._stop_reason or None
        finish: FinishReason = STOP_REASONS.get(raw or "", "other")
        if finish == "tool_calls" and self._structured_seen and not self._tool_index:
            finish = "stop"  # the forced structured-output tool is the answer, not a call to run
        extra: dict[str, Any] = {}
        if self._stop_sequence is not None:
            extra["stop_sequence"] = self._stop_sequence
        extra.update(self._extra)
        extra.update(self._server.extra())
        out.append(StreamEvent("done", finish_reason=finish, raw_finish_reason=raw, model=self._model,
                               extra=extra or None))


def response_extras(data: dict[str, Any]) -> dict[str, Any]:
    """What a Converse answer (or a stream's ``messageStop``/``metadata`` event) says beside its
    content, for ``metadata.extra``: the guardrail ``trace`` (``guardrailConfig`` with ``trace``),
    and ``additional_model_response_fields``, the model's own fields the request asked for with
    ``additionalModelResponseFieldPaths``, as Bedrock sent them."""
    extra: dict[str, Any] = {}
    if isinstance(data.get("trace"), dict):
        extra["trace"] = data["trace"]
    if isinstance(data.get("additionalModelResponseFields"), dict):
        extra["additional_model_response_fields"] = data["additionalModelResponseFields"]
    return extra


def citations_block(block: Any) -> tuple[list[str], list[Any]]:
    """(the generated texts, the citations) of a Converse ``citationsContent`` block: AWS documents
    ``content[].text`` as the answer the ``citations`` support, so it is part of the answer."""
    if not isinstance(block, dict):
        return [], []
    texts = [c["text"] for c in block.get("content") or () if isinstance(c, dict) and isinstance(c.get("text"), str)]
    cited = [c for c in block.get("citations") or () if isinstance(c, dict)]
    return texts, cited
