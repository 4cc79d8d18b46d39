"""Decode an OpenAI Responses API stream into StreamEvents, incrementally, with no I/O.

The Responses stream is SSE with named events. Only a few carry what a caller sees:

- ``response.output_text.delta`` / ``response.refusal.delta`` -> ``text``; the message's
  item id (from ``response.output_item.added``) rides on its first text event as
  ``extra={"item_id": ...}`` so the assembled Text can be sent back by id. Every refusal delta
  is also marked ``extra["refusal"] = True`` (with the item id), so the refusal is a Text of its
  own that a server relays as ``delta.refusal`` or a ``refusal`` part, as the Chat Completions
  decoder marks one; :func:`output_parts` marks a non-streamed ``refusal`` part the same way.
- ``response.output_text.annotation.added`` (a ``url_citation`` of the ``web_search`` tool) ->
  ``citation`` of the text before it; :func:`output_parts` reads a message's ``annotations`` as
  the same citations of its text (as the Chat Completions adapter reads ``message.annotations``).
- ``response.output_item.added`` (``function_call``) -> the ``tool_call_delta`` that opens a
  call (``index`` = the item's ``output_index``, ``id`` = ``call_id``, the item id in
  ``extra``); ``response.function_call_arguments.delta`` -> its argument fragments. A custom
  tool's call (``custom_tool_call``, ``response.custom_tool_call_input.delta``) streams its input
  text as the arguments ``{"input": ...}``, as :mod:`.call_shapes` reads Chat Completions' one.
- ``response.reasoning_summary_text.delta`` (and raw ``response.reasoning_text.delta``) ->
  ``reasoning``. Each summary part becomes its own Reasoning part: a ``reasoning`` event with
  ``signature`` = the ``rs_`` item id closes a part when the next one starts, and
  ``response.output_item.done`` closes the last one with the item's final
  ``encrypted_content`` as ``redacted`` (the copy in ``output_item.added`` may be incomplete).
  :func:`output_parts` builds the same parts from a non-streamed response.
- ``response.completed`` / ``response.incomplete`` -> ``usage`` and the single ``done``.
- with ``ChatRequest.raw_events``, every event also comes out whole, first, as a ``raw``
  StreamEvent (a gateway serving the Responses API relays them unchanged);
- ``response.failed`` and ``error`` events raise the mapped ProviderError from ``feed()``;
  end of input before a terminal event raises MalformedResponseError from ``close()``.

The items of tools OpenAI runs (``web_search_call``...) are kept from ``response.output_item.done``
as the whole answer keeps them (:mod:`.server_items`), on the ``done`` event's ``extra``.
Everything else (``content_part``, ``*.done`` echoes, built-in tool progress) is ignored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from ... import _jsoncodec as jsoncodec
from ..._errors import MalformedResponseError, ProviderError
from ..._types import Citation, FinishReason, Part, Reasoning, StreamEvent, Text, ToolCall
from ...streams.accumulate import parse_arguments
from ...streams.sse import ServerSentEvent, SSEDecoder
from .answer_extras import annotation_citations
from .call_shapes import CUSTOM, CustomInputs
from .responses_messages import ITEM_ID
from .server_items import ServerItems
from .stream import usage_from

if TYPE_CHECKING:
    from ..._types import ChatRequest


class _Host(Protocol):
    name: str

    def failure(self, error: Any, model: str | None) -> ProviderError: ...


_INCOMPLETE: dict[str, FinishReason] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def finish_of(response: dict[str, Any], *, has_calls: bool, refused: bool) -> tuple[FinishReason, str | None]:
    """(normalised, raw) finish reason of a terminal response object."""
    status = response.get("status")
    if status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE.get(reason or "", "other"), reason or status
    if refused:
        return "content_filter", status
    if status == "completed":
        return ("tool_calls" if has_calls else "stop"), status
    return "other", status


def output_parts(output: list[Any], provider: str) -> tuple[list[Part], str | None]:
    """Parts of a response's ``output`` items in order, and the refusal text if any."""
    parts: list[Part] = []
    refusal: list[str] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            parts.extend(_reasoning_parts(item, provider))
        elif kind == "message":
            texts = _message_texts(item)
            refusal.extend(t.text for t in texts if t.extra is not None and t.extra.get("refusal") is True)
            parts.extend(texts)
        elif kind == "function_call":
            raw = item.get("arguments") or ""
            parts.append(ToolCall(id=item.get("call_id") or item.get("id") or "", name=item.get("name") or "",
                                  arguments=parse_arguments(raw), raw_arguments=raw,
                                  extra={ITEM_ID: item["id"]} if item.get("id") else None))
        elif kind == "custom_tool_call":   # a custom tool's input is text: {"input": ...} (.call_shapes)
            text = item.get("input") if isinstance(item.get("input"), str) else ""
            parts.append(ToolCall(id=item.get("call_id") or item.get("id") or "", name=item.get("name") or "",
                                  arguments={"input": text}, raw_arguments=json.dumps({"input": text}),
                                  extra=_custom_extra(item)))
    return parts, ("".join(refusal) or None)


def _custom_extra(item: dict[str, Any]) -> dict[str, Any]:
    return {**CUSTOM, ITEM_ID: item["id"]} if item.get("id") else dict(CUSTOM)


def _message_texts(item: dict[str, Any]) -> list[Text]:
    """A message item's content as Text parts: each run of ``output_text`` one part, each run of
    ``refusal`` one part marked ``extra["refusal"] = True`` (as the Chat Completions adapter marks
    ``message.refusal``), so a server renders the refusal as ``message.refusal`` or a ``refusal``
    content part, never as answer text a client would parse."""
    extra = message_extra(item)
    runs: list[tuple[bool, list[str], list[Citation]]] = []
    for piece in item.get("content") or ():
        if not isinstance(piece, dict):
            continue
        kind = piece.get("type")
        text = piece.get("text") if kind == "output_text" else piece.get("refusal") if kind == "refusal" else None
        if not text:
            continue
        refused = kind == "refusal"
        citations = annotation_citations(piece.get("annotations")) if not refused else []
        if runs and runs[-1][0] == refused:
            runs[-1][1].append(text)
            runs[-1][2].extend(citations)
        else:
            runs.append((refused, [text], citations))
    return [Text("".join(texts), extra=refusal_extra(extra) if refused else extra, citations=citations or None)
            for refused, texts, citations in runs]


def refusal_extra(item_extra: dict[str, Any] | None) -> dict[str, Any]:
    """The extras of a refusal's text: its message item's, and the refusal mark."""
    return {**(item_extra or {}), "refusal": True}


def _reasoning_parts(item: dict[str, Any], provider: str) -> list[Reasoning]:
    item_id = item.get("id")
    texts = [s.get("text") or "" for s in item.get("summary") or () if isinstance(s, dict)]
    if not texts:  # raw chain of thought (open-weight models, OpenRouter) instead of a summary
        raw = "".join(c.get("text") or "" for c in item.get("content") or () if isinstance(c, dict))
        texts = [raw]
    parts = [Reasoning(text, signature=item_id, provider=provider) for text in texts]
    parts[-1].redacted = item.get("encrypted_content") or None
    return parts


def message_extra(item: dict[str, Any]) -> dict[str, Any] | None:
    if not item.get("id"):
        return None
    extra: dict[str, Any] = {ITEM_ID: item["id"]}
    if item.get("phase"):
        extra["phase"] = item["phase"]
    return extra


class OpenAIResponsesStreamDecoder:
    """One stream's state. ``feed`` any bytes; ``close`` at end of input."""

    __slots__ = ("_host", "_sse", "_model", "_id", "_done", "_seen", "_item_extras", "_text_seen", "_refusing",
                 "_args_seen", "_reasoning_open", "_unfinished_reasoning", "_closed_early", "_has_calls", "_refusal",
                 "_raw", "_server_items", "_customs")

    def __init__(self, host: _Host, req: ChatRequest) -> None:
        self._host = host
        self._sse = SSEDecoder()
        self._model = req.model
        self._id: str | None = None
        self._done = False
        self._seen = False
        self._item_extras: dict[int, dict[str, Any]] = {}  # output_index -> message item extras
        self._text_seen: set[int] = set()
        self._refusing: int | None = None  # output_index of the message whose last text was a refusal
        self._args_seen: set[int] = set()
        self._reasoning_open: set[int] = set()  # output_index of reasoning items with a summary part started
        self._unfinished_reasoning: dict[int, str | None] = {}  # reasoning items added, not yet done
        self._closed_early: set[int] = set()
        self._has_calls = False
        self._refusal: list[str] = []
        self._raw = req.raw_events
        self._server_items = ServerItems()   # the items of tools OpenAI ran, from output_item.done
        self._customs = CustomInputs()   # custom tools' calls: their input text as {"input": ...}

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            self._event(sse, out)
        return out

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.close():
            self._event(sse, out)
        if not self._done:
            what = "the stream ended before the response completed" if self._seen else "the stream was empty"
            raise MalformedResponseError(
                f"could not parse the provider's response: {what} (no response.completed)",
                provider=self._host.name, model=self._model)
        return out

    # -- internals ------------------------------------------------------------------------
    def _event(self, sse: ServerSentEvent, out: list[StreamEvent]) -> None:
        if self._done or not sse.data.strip() or sse.data == "[DONE]":
            return
        try:
            ev = jsoncodec.loads_upstream(sse.data)
        except ValueError:
            raise MalformedResponseError(
                f"could not parse the provider's response: stream data is not JSON: {sse.data[:200]!r}",
                provider=self._host.name, model=self._model, body=sse.data) from None
        if not isinstance(ev, dict):
            return
        self._seen = True
        if self._raw:
            out.append(StreamEvent("raw", extra={"event": ev}))
        kind = ev.get("type") or sse.event or ""
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, ev, out)

    def _response(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        response = ev.get("response") or {}
        self._model = response.get("model") or self._model
        self._id = response.get("id") or self._id

    def _item_added(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        item, index = ev.get("item") or {}, int(ev.get("output_index") or 0)
        kind = item.get("type")
        self._close_unfinished_reasoning(out)
        if kind == "reasoning":
            self._unfinished_reasoning[index] = item.get("id")
        elif kind == "message":
            extra = message_extra(item)
            if extra:
                self._item_extras[index] = extra
        elif kind == "custom_tool_call":
            self._has_calls = True
            if item.get("input"):
                self._args_seen.add(index)
            out.append(StreamEvent("tool_call_delta", index=index, id=item.get("call_id") or item.get("id"),
                                   name=item.get("name") or None, extra=_custom_extra(item),
                                   arguments=self._customs.fragment(index, item.get("input") or "")))
        elif kind == "function_call":
            self._has_calls = True
            args = item.get("arguments") or None
            if args:
                self._args_seen.add(index)
            out.append(StreamEvent("tool_call_delta", index=index, id=item.get("call_id") or item.get("id"),
                                   name=item.get("name") or None, arguments=args,
                                   extra={ITEM_ID: item["id"]} if item.get("id") else None))

    def _text(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = ev.get("delta")
        if not delta:
            return
        index = int(ev.get("output_index") or 0)
        first = index not in self._text_seen
        self._text_seen.add(index)
        extra: dict[str, Any] | None = None
        if ev.get("type") == "response.refusal.delta":
            # every refusal delta carries the mark (and its item), so the accumulator joins them
            # into one Text apart from the answer's, as the Chat Completions decoder marks them
            self._refusal.append(delta)
            extra = refusal_extra(self._item_extras.get(index))
            self._refusing = index
        elif first or self._refusing == index:  # the item's first answer text, or its first after a refusal
            extra = self._item_extras.get(index)
            self._refusing = None
        out.append(StreamEvent("text", text=delta, extra=extra))

    def _annotation(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        """A source of the text just streamed (a ``url_citation``): a citation of that text."""
        for citation in annotation_citations([ev.get("annotation")]):
            out.append(StreamEvent("citation", citation=citation))

    def _arguments(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        if ev.get("delta"):
            index = int(ev.get("output_index") or 0)
            self._args_seen.add(index)
            out.append(StreamEvent("tool_call_delta", index=index, arguments=ev["delta"]))

    def _custom_input(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        if ev.get("delta"):
            index = int(ev.get("output_index") or 0)
            self._args_seen.add(index)
            out.append(StreamEvent("tool_call_delta", index=index, arguments=self._customs.fragment(index, ev["delta"])))

    def _summary_part(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        index = int(ev.get("output_index") or 0)
        if index in self._reasoning_open:  # close the previous summary part of this item
            out.append(StreamEvent("reasoning", signature=ev.get("item_id")))
        self._reasoning_open.add(index)

    def _reasoning(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        if ev.get("delta"):
            self._reasoning_open.add(int(ev.get("output_index") or 0))
            out.append(StreamEvent("reasoning", text=ev["delta"]))

    def _item_done(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        item, index = ev.get("item") or {}, int(ev.get("output_index") or 0)
        kind = item.get("type")
        self._server_items.see(item)
        if kind == "reasoning":
            self._unfinished_reasoning.pop(index, None)
            redacted = item.get("encrypted_content") or None
            if index not in self._closed_early or redacted:
                out.append(StreamEvent("reasoning", signature=item.get("id"), redacted=redacted))
        elif kind == "function_call" and index not in self._args_seen and item.get("arguments"):
            out.append(StreamEvent("tool_call_delta", index=index, arguments=item["arguments"]))
        elif kind == "custom_tool_call" and index in self._customs.open:
            if index not in self._args_seen and item.get("input"):   # an input delivered whole
                out.append(StreamEvent("tool_call_delta", index=index,
                                       arguments=self._customs.fragment(index, item["input"])))
            self._customs.open.remove(index)
            out.append(StreamEvent("tool_call_delta", index=index, arguments='"}'))
        elif kind == "message" and index not in self._text_seen:
            # a message delivered whole (no deltas): emit it so nothing is lost
            parts, refusal = output_parts([item], self._host.name)
            if refusal:
                self._refusal.append(refusal)
            for part in parts:
                if isinstance(part, Text):
                    out.append(StreamEvent("text", text=part.text, extra=part.extra))
                    for citation in part.citations or ():
                        out.append(StreamEvent("citation", citation=citation))

    def _close_unfinished_reasoning(self, out: list[StreamEvent]) -> None:
        """A new item starts while a reasoning item is not done (OpenRouter sends its ``done``
        last): close the reasoning part now, or the next item's output would join it."""
        for index, item_id in self._unfinished_reasoning.items():
            out.append(StreamEvent("reasoning", signature=item_id))
            self._closed_early.add(index)
        self._unfinished_reasoning.clear()

    def _terminal(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        response = ev.get("response") or {}
        self._response(ev, out)
        usage = usage_from(response.get("usage"), response.get("service_tier"))
        if usage is not None:
            out.append(StreamEvent("usage", usage=usage))
        refusal = "".join(self._refusal) or None
        finish, raw = finish_of(response, has_calls=self._has_calls, refused=refusal is not None)
        self._done = True
        extra = {"refusal": refusal} if refusal else {}
        extra.update(self._server_items.extra())
        out.append(StreamEvent("done", finish_reason=finish, raw_finish_reason=raw, model=self._model, id=self._id,
                               extra=extra or None))

    def _failed(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        response = ev.get("response") or {}
        raise self._host.failure(response.get("error") or {"message": "the response failed"},
                                 response.get("model") or self._model)

    def _error(self, ev: dict[str, Any], out: list[StreamEvent]) -> None:
        raise self._host.failure(ev.get("error") if isinstance(ev.get("error"), dict) else ev, self._model)


_D = OpenAIResponsesStreamDecoder
_HANDLERS = {
    "response.created": _D._response,
    "response.in_progress": _D._response,
    "response.queued": _D._response,
    "response.output_item.added": _D._item_added,
    "response.output_text.delta": _D._text,
    "response.refusal.delta": _D._text,
    "response.output_text.annotation.added": _D._annotation,
    "response.function_call_arguments.delta": _D._arguments,
    "response.custom_tool_call_input.delta": _D._custom_input,
    "response.reasoning_summary_part.added": _D._summary_part,
    "response.reasoning_summary_text.delta": _D._reasoning,
    "response.reasoning_text.delta": _D._reasoning,
    "response.output_item.done": _D._item_done,
    "response.completed": _D._terminal,
    "response.incomplete": _D._terminal,
    "response.failed": _D._failed,
    "error": _D._error,
}
