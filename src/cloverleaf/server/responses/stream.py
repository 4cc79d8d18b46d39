"""Neutral stream events -> the Responses API's SSE event sequence, with sequence numbers.

``response.created`` and ``response.in_progress`` first; then, per output item,
``response.output_item.added``, its content events and ``response.output_item.done``:

- a message: per content part ``content_part.added``, ``output_text.delta``...,
  ``output_text.done``, ``content_part.done`` (or ``refusal.delta``..., ``refusal.done`` for a
  refusal: text events marked ``extra["refusal"]``, as OpenAI streams a refusal part; a refusal
  the final event says of text already sent, as Claude's does, closes its part as a refusal);
- a function call: ``function_call_arguments.delta``..., ``function_call_arguments.done``;
- a custom (freeform) tool call: ``custom_tool_call_input.delta``..., ``custom_tool_call_input.done``
  (the raw text, decoded from the function arguments the upstream streams: :mod:`.client_tools`);
- a client-run tool search's call: no events between its added and done items (the
  Responses API defines none; the done item carries the parsed ``arguments``);
- reasoning: per summary part ``reasoning_summary_part.added``,
  ``reasoning_summary_text.delta``..., ``reasoning_summary_text.done``,
  ``reasoning_summary_part.done``;

and last ``response.completed`` (or ``response.incomplete`` when the output was cut by
``max_output_tokens`` or a content filter), carrying the whole Response. Every event has a
``sequence_number`` counting from 0, which the official SDK orders by.

Items open and close one at a time, as OpenAI's own streams do; the item boundaries follow
the same rules as :func:`.items.output_items` on the assembled answer (a run of reasoning is
one item; text with another upstream item id starts a new message), so the events fold to
exactly the non-streamed Response. An error after the headers is ``response.failed`` with
the error and whatever output was complete.
"""

from __future__ import annotations

from typing import Any

from ..._jsoncodec import utf8_replacing
from ..._types import Reasoning, StreamEvent, ToolCall, Usage
from ...providers.openai.responses_messages import ITEM_ID
from ...streams.call_ids import made_up_call_id
from ..http_io import dumps_text, tally_usage
from .client_tools import InputStream, custom_input
from .items import (
    call_item_id,
    content_part,
    function_call_output_item,
    is_refusal,
    item_extra,
    message_output,
    new_item_id,
    reasoning_item,
    reasoning_provider,
)
from .tool_search import search_call_item
from .wire import ResponsesRequest, response_object, status_of

_ERROR_CODES = {429: "rate_limit_exceeded"}
_CALL_ITEMS = ("function_call", "custom_tool_call", "tool_search_call")


class _Call:
    """A function call being streamed: its item, output index and argument fragments."""

    __slots__ = ("item", "index", "arguments", "custom")

    def __init__(self, item: dict[str, Any], index: int) -> None:
        self.item = item
        self.index = index
        self.arguments: list[str] = []
        #: a custom tool's call: its input text as decoded so far
        self.custom = InputStream() if item["type"] == "custom_tool_call" else None


class ResponsesStreamEncoder:
    """One stream's state: the items so far, the open item, the next sequence number."""

    __slots__ = ("_req", "_id", "_model", "_created", "_seq", "_output", "_open", "_text", "_text_extra",
                 "_content", "_refusal_part", "_refused", "_reasoning", "_sealed", "_calls", "_open_calls", "usage", "finish_reason", "final", "_pending", "provider",
                 "_refusal_said")

    def __init__(self, req: ResponsesRequest, *, response_id: str, model: str, created_at: int) -> None:
        self._req = req
        self._id = response_id
        self._model = model
        self._created = created_at
        self._pending = ""
        #: the provider row that answered (from the final event), for the store
        self.provider: str | None = None
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None     # the item being streamed
        self._text: list[str] = []                   # the open content part's text
        self._text_extra: dict[str, Any] | None = None
        self._content: list[dict[str, Any]] = []     # the open message's finished content parts
        self._refusal_part = False                   # the open content part is a refusal
        self._refused = False                        # a refusal part was streamed: status completed
        self._reasoning: list[Reasoning] = []
        self._sealed = False                         # the current summary part got its signature
        self._calls: dict[int, _Call] = {}           # upstream index -> its function_call item
        self._open_calls: list[_Call] = []           # calls streaming now (side by side if interleaved)
        self.usage = Usage()
        self.finish_reason: str | None = None
        #: the refusal the final event's answer carries (Claude says so only at the end)
        self._refusal_said: str | None = None
        #: the finished Response object (set by :meth:`complete`, before ``finish``)
        self.final: dict[str, Any] | None = None

    # -- framing -----------------------------------------------------------------------
    def _event(self, kind: str, body: str) -> str:
        seq = self._seq
        self._seq += 1
        return f'event: {kind}\ndata: {{"type":"{kind}",{body},"sequence_number":{seq}}}\n\n'

    def _snapshot(self, status: str, **kw: Any) -> dict[str, Any]:
        return response_object(self._req, response_id=self._id, model=self._model, created_at=self._created,
                               status=status, output=list(self._output), **kw)

    def start(self) -> bytes:
        snap = dumps_text(self._snapshot("in_progress", usage=None))
        return (self._event("response.created", f'"response":{snap}')
                + self._event("response.in_progress", f'"response":{snap}')).encode()

    # -- events ------------------------------------------------------------------------
    def encode(self, ev: StreamEvent) -> bytes | None:
        t = ev.type
        if t == "text":
            return self._on_text(ev).encode() if ev.text else None
        if t == "reasoning":
            out = self._on_reasoning(ev)
            return out.encode() if out else None
        if t == "tool_call_delta":
            return self._on_tool(ev).encode()
        if t == "usage":
            tally_usage(self.usage, ev)
        elif t == "done":
            tally_usage(self.usage, ev)
            self.finish_reason = ev.finish_reason
            if ev.response is not None:
                self.provider = reasoning_provider(ev.response)
                self._refusal_said = ev.response.refusal
        return None

    def _index(self) -> int:
        return len(self._output)

    def _add(self, item: dict[str, Any]) -> str:
        self._open = item
        return self._event("response.output_item.added", f'"output_index":{self._index()},"item":{dumps_text(item)}')

    def _on_text(self, ev: StreamEvent) -> str:
        out = ""
        item = self._open
        extra, refusal = item_extra(ev.extra), is_refusal(ev.extra)
        new_item = extra and self._text_extra and extra != self._text_extra
        if item is None or item["type"] != "message" or new_item:
            out += self._close()
            item_id = (extra or {}).get(ITEM_ID) or new_item_id("message")
            opened: dict[str, Any] = {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress",
                                      "content": []}
            out += self._add(opened)
            self._content = []
            self._text_extra = extra
            out += self._open_part(opened, refusal)
            item = opened
        else:
            if extra:
                self._text_extra = {**(self._text_extra or {}), **extra}
            if refusal != self._refusal_part:   # answer text after a refusal, or the other way
                out += self._close_part(item) + self._open_part(item, refusal)
        self._text.append(ev.text or "")
        head = (f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},'
                f'"content_index":{len(self._content)},"delta":{dumps_text(ev.text)}')
        if refusal:
            return out + self._event("response.refusal.delta", head)
        return out + self._event("response.output_text.delta", f'{head},"logprobs":[]')

    def _open_part(self, item: dict[str, Any], refusal: bool) -> str:
        self._text = []
        self._refusal_part = refusal
        self._refused = self._refused or refusal
        return self._event("response.content_part.added",
                           f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},'
                           f'"content_index":{len(self._content)},"part":{dumps_text(content_part("", refusal=refusal))}')

    def _close_part(self, item: dict[str, Any]) -> str:
        """The open content part's ``.done`` events; the part joins the message's content."""
        text = "".join(self._text)
        part = content_part(text, refusal=self._refusal_part)
        head = f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},"content_index":{len(self._content)}'
        if self._refusal_part:
            out = self._event("response.refusal.done", f'{head},"refusal":{dumps_text(text)}')
        else:
            out = self._event("response.output_text.done", f'{head},"text":{dumps_text(text)},"logprobs":[]')
        self._content.append(part)
        return out + self._event("response.content_part.done", f'{head},"part":{dumps_text(part)}')

    def _on_reasoning(self, ev: StreamEvent) -> str:
        out = ""
        item = self._open
        if item is None or item["type"] != "reasoning":
            out += self._close()
            item = {"type": "reasoning", "id": new_item_id("reasoning"), "summary": []}
            out += self._add(item)
            self._reasoning = []
            self._sealed = False
        # the accumulator's rule: after a signature or redacted data, more content is a new part
        current = self._reasoning[-1] if self._reasoning else None
        if current is None or current.redacted or (self._sealed and (ev.text or ev.signature or ev.redacted)):
            if current is not None:
                out += self._close_summary(current, item)
            current = Reasoning("")
            self._reasoning.append(current)
            self._sealed = False
            out += self._event("response.reasoning_summary_part.added",
                               f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},'
                               f'"summary_index":{len(self._reasoning) - 1},"part":{{"type":"summary_text","text":""}}')
        if ev.text:
            current.text += ev.text
            out += self._event("response.reasoning_summary_text.delta",
                               f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},'
                               f'"summary_index":{len(self._reasoning) - 1},"delta":{dumps_text(ev.text)}')
        if ev.signature:
            current.signature = ev.signature
            self._sealed = True
        if ev.redacted:
            current.redacted = ev.redacted
        return out

    def _close_summary(self, part: Reasoning, item: dict[str, Any]) -> str:
        head = (f'"item_id":{dumps_text(item["id"])},"output_index":{self._index()},'
                f'"summary_index":{self._reasoning.index(part)}')
        return (self._event("response.reasoning_summary_text.done", f'{head},"text":{dumps_text(part.text)}')
                + self._event("response.reasoning_summary_part.done",
                              f'{head},"part":{{"type":"summary_text","text":{dumps_text(part.text)}}}'))

    def _on_tool(self, ev: StreamEvent) -> str:
        """Consecutive calls stay open together until another kind of item starts, so a
        provider that interleaves the argument fragments of parallel calls loses nothing."""
        key = ev.index if ev.index is not None else len(self._calls)
        out = ""
        call = self._calls.get(key)
        if call is None:
            if self._open is not None and self._open["type"] not in _CALL_ITEMS:
                out += self._close()
            kind = self._req.names.item_type(ev.name or "")
            item_id = call_item_id((ev.extra or {}).get(ITEM_ID) or new_item_id(kind), ev.extra)
            call_id = ev.id or made_up_call_id(self._id, len(self._calls))
            item = self._req.names.call_item(item_id, ToolCall(call_id, ev.name or "", {}, raw_arguments=""),
                                             "in_progress")
            call = self._calls[key] = _Call(item, len(self._output) + len(self._open_calls))
            self._open_calls.append(call)
            self._open = item
            out += self._event("response.output_item.added",
                               f'"output_index":{call.index},"item":{dumps_text(item)}')
        elif call not in self._open_calls:  # a call closed by a message or reasoning since: nothing sane to send
            return out
        if ev.arguments and call.custom is not None:
            call.arguments.append(ev.arguments)
            delta = call.custom.feed(ev.arguments)
            if delta:
                out += self._event("response.custom_tool_call_input.delta",
                                   f'"item_id":{dumps_text(call.item["id"])},"output_index":{call.index},'
                                   f'"delta":{dumps_text(delta)}')
        elif ev.arguments and call.item["type"] == "tool_search_call":
            call.arguments.append(ev.arguments)   # no delta events: the done item has them parsed
        elif ev.arguments:
            call.arguments.append(ev.arguments)
            out += self._event("response.function_call_arguments.delta",
                               f'"item_id":{dumps_text(call.item["id"])},"output_index":{call.index},'
                               f'"delta":{dumps_text(ev.arguments)}')
        return out

    # -- closing -----------------------------------------------------------------------
    def _close(self, status: str = "completed") -> str:
        """Finish the open item; ``status`` is ``incomplete`` when the answer was cut or failed
        while it was being written (a client reading the items must not take it as whole)."""
        item = self._open
        if item is None:
            return ""
        self._open = None
        index = self._index()
        out = ""
        if item["type"] == "message":
            out += self._close_part(item)
            done = message_output(item["id"], self._content, status)
        elif item["type"] == "reasoning":
            out += self._close_summary(self._reasoning[-1], item)
            done = reasoning_item(item["id"], self._reasoning, status)
        else:
            return self._close_calls(status)
        self._output.append(done)
        return out + self._event("response.output_item.done", f'"output_index":{index},"item":{dumps_text(done)}')

    def _close_calls(self, status: str = "completed") -> str:
        out = ""
        last = self._open_calls[-1] if self._open_calls else None
        for call in self._open_calls:
            item, arguments = call.item, "".join(call.arguments)
            head = f'"item_id":{dumps_text(item["id"])},"output_index":{call.index}'
            if call.custom is not None:
                text = custom_input(arguments)
                rest = call.custom.rest(text)
                if rest:
                    out += self._event("response.custom_tool_call_input.delta", f'{head},"delta":{dumps_text(rest)}')
                done = {**item, "input": text}
                out += self._event("response.custom_tool_call_input.done", f'{head},"input":{dumps_text(text)}')
            elif item["type"] == "tool_search_call":
                done = search_call_item(item["id"], ToolCall(item["call_id"], "", {}, raw_arguments=arguments),
                                        status if call is last else "completed")
            else:
                done = {**function_call_output_item(item["id"], ToolCall(item["call_id"], item["name"], {},
                                                                         raw_arguments=arguments),
                                                    status if call is last else "completed"),  # as output_items marks a cut
                        **({"namespace": item["namespace"]} if "namespace" in item else {})}
                out += self._event("response.function_call_arguments.done",
                                   f'{head},"name":{dumps_text(item["name"])},"arguments":{dumps_text(arguments)}')
            self._output.append(done)
            out += self._event("response.output_item.done", f'"output_index":{call.index},"item":{dumps_text(done)}')
        self._open_calls = []
        return out

    def complete(self, completed_at: int) -> dict[str, Any]:
        """Close the open item and build the finished Response (the route stores it before
        :meth:`finish` sends it, so it is readable the moment the client sees it)."""
        self._pending = self._mark_late_refusal()
        status, incomplete = status_of(self.finish_reason, refused=self._refused)
        self._pending += self._close("completed" if status == "completed" else "incomplete")
        self.final = self._snapshot(status, usage=self.usage, incomplete=incomplete,
                                    completed_at=completed_at if status == "completed" else None)
        return self.final

    def _mark_late_refusal(self) -> str:
        """A refusal said only by the final event (Claude's ``stop_reason: "refusal"`` comes after
        its text went out as ``output_text.delta``): the open text part closes as a ``refusal``
        (``refusal.done``, never the ``output_text.done`` the SDK parses as the JSON), as the
        non-streamed Response marks it; a refusal with no text gets a message with its words."""
        said = self._refusal_said
        if said is None or self._refused:
            return ""
        item = self._open
        if item is not None and item["type"] == "message" and not self._refusal_part:
            self._refusal_part = self._refused = True
            return ""
        out = self._close()
        opened: dict[str, Any] = {"type": "message", "id": new_item_id("message"), "role": "assistant",
                                  "status": "in_progress", "content": []}
        out += self._add(opened)
        self._content = []
        out += self._open_part(opened, True)
        self._text.append(said)
        return out + self._event("response.refusal.delta",
                                 f'"item_id":{dumps_text(opened["id"])},"output_index":{self._index()},'
                                 f'"content_index":0,"delta":{dumps_text(said)}')

    def finish(self) -> bytes:
        if self.final is None:
            self.complete(self._created)
        kind = "response.completed" if self.final["status"] == "completed" else "response.incomplete"  # type: ignore[index]
        return (self._pending + self._event(kind, f'"response":{dumps_text(self.final)}')).encode()

    def error(self, payload: dict[str, Any]) -> bytes:
        """An error after the stream started: ``response.failed`` with the output finished so far.

        It cannot raise: it is how the client hears that the stream failed, so text no UTF-8
        can carry is written as U+FFFD, and when the snapshot with the output cannot be written
        at all, ``response.failed`` goes out without that output (a stream once ended with no
        terminal event when the failure being reported sat in the output)."""
        err = payload.get("error") or {}
        code = "server_error"
        message = "the response failed"
        try:
            code = _ERROR_CODES.get(int(err.get("status") or 0), "server_error")
            if err.get("type") == "rate_limit_error":
                code = "rate_limit_exceeded"
            message = str(err.get("message") or message)
            out = self._closed_for_failure() if self.final is None else ""
            failed = self._snapshot("failed", usage=self.usage, error={"code": code, "message": message})
            return utf8_replacing(out + self._event("response.failed", f'"response":{dumps_text(failed)}'))
        except Exception:  # noqa: BLE001 - nothing may keep the failure from being reported
            bare = {"id": self._id, "object": "response", "created_at": self._created, "status": "failed",
                    "model": self._model, "output": [], "error": {"code": code, "message": message}}
            return utf8_replacing(self._event("response.failed", f'"response":{dumps_text(bare)}'))

    def _closed_for_failure(self) -> str:
        """The open item closed as ``incomplete`` for ``response.failed``; when closing it
        fails too (the very fault being reported may sit in it), it is left out instead, with
        what closing had already written undone: the client still hears ``response.failed``
        with every item finished before, rather than a connection dropped with no word."""
        seq, finished = self._seq, len(self._output)
        try:
            return self._close("incomplete")
        except Exception:  # noqa: BLE001 - nothing may keep the failure from being reported
            self._seq = seq
            del self._output[finished:]
            self._open, self._open_calls = None, []
            return ""
