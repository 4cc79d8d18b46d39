"""Incremental decoder for the Anthropic Messages SSE stream, no I/O.

The stream is a message built up block by block::

    message_start          id, model, input usage
    content_block_start    index, block type (text / thinking / redacted_thinking / tool_use / server ...)
    content_block_delta    text_delta | thinking_delta | signature_delta | input_json_delta | citations_delta
                           (a citation of its text block, before that block's text: a ``citation`` event)
    content_block_stop
    message_delta          stop_reason (and the stop_sequence that matched), cumulative output usage,
                           the context edits applied (``context_management``, kept on ``done``'s extra)
    message_stop           the end; the only event that completes a message
    ping                   keep-alive, ignored
    error                  e.g. overloaded_error mid-stream: raised from feed()

Deltas carry only a block ``index``, so the decoder remembers each open block's type to know
what a delta means: ``input_json_delta`` fragments are tool-call arguments for a ``tool_use``
block, JSON *text* for our structured-output tool, and a server-side tool's input for a
``server_tool_use`` block; server-side blocks are kept as the whole answer keeps them
(``metadata.extra["server_tool_blocks"]``, see :mod:`.server_blocks`), on ``done``'s extra. A tool
that takes no arguments streams as a ``tool_use`` block whose only fragment is ``""``; at its
``content_block_stop`` such a block gets ``"{}"``, so a streamed call folds to exactly the
arguments the whole message has (``input: {}``), and a client that ``json.loads`` them can. A body
that ends before ``message_stop`` was cut off, and ``close()`` says so; nothing after it counts
(one ``done``). SSE framing and JSON parsing are the shared
:class:`~cloverleaf.streams.sse_json.JSONEventDecoder`'s.

Structured output through the tool: Claude may write a sentence before it calls the structured
tool (when ``tool_choice`` cannot be forced), and the whole-message parser drops that text. So,
when the request asks for structured output, text that does not begin like a JSON answer
(``{``, ``[`` or a fence) is held back, with its citations: the structured tool's start drops it
(and any text after); the start of a user tool's call, or the end of the message, releases it
(text before a call of the caller's own tool, or a prose answer). Text
that begins like JSON is the answer itself (native structured output) and streams as it comes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..._errors import MalformedResponseError
from ..._types import FinishReason, StreamEvent
from ...streams.sse_json import JSONEventDecoder
from .citations import citation_from, citations_from
from .messages import STRUCTURED_TOOL, is_structured_tool_call, tool_name_map
from .parse import finish_reason, refusal_extra, usage_from
from .server_blocks import ServerBlocks
from .tool_names import read_back

if TYPE_CHECKING:
    from ..._errors import MalformedResponseError as _Malformed
    from ..._errors import ProviderError
    from ..._types import ChatRequest


class _Host(Protocol):
    """What the decoder needs of its adapter (a protocol keeps the import one way)."""

    def malformed(self, what: str, resp: Any = None, model: str | None = None) -> _Malformed: ...

    def stream_error(self, payload: dict[str, Any], model: str | None) -> ProviderError: ...

# What an open content block's deltas mean.
_TEXT, _REASONING, _TOOL, _JSON_TEXT, _IGNORED = "text", "reasoning", "tool", "json_text", "ignored"


class AnthropicStreamDecoder(JSONEventDecoder):
    __slots__ = ("_adapter", "_req", "_blocks", "_input_seen", "_id", "_model", "_raw_finish",
                 "_stop_sequence", "_tool_calls", "_done", "_text_gate", "_context_management", "_said",
                 "_server", "_parts", "_names")

    def __init__(self, adapter: _Host, req: ChatRequest) -> None:
        super().__init__()
        self._adapter = adapter
        self._req = req
        self._blocks: dict[int, str] = {}
        #: tool and structured-output blocks that have received argument text
        self._input_seen: set[int] = set()
        self._id: str | None = None
        self._model: str | None = None
        self._raw_finish: str | None = None
        self._stop_sequence: str | None = None
        #: the context edits the API applied (``message_delta.context_management``)
        self._context_management: dict[str, Any] | None = None
        self._tool_calls = 0
        self._done = False
        #: the text blocks' text so far: a refusal's words, when the stream ends with one
        self._said: list[str] = []
        #: text and citation events pass through it: see the module docstring
        self._text_gate = _TextGate(is_structured_tool_call(req, STRUCTURED_TOOL))
        #: the server tool blocks (made at the first), and how many parts the answer has so far
        self._server: ServerBlocks | None = None
        self._parts = 0
        #: the request's tool names sent in another form, to read the answer's back
        self._names = tool_name_map(req)

    # -- JSONEventDecoder hooks -------------------------------------------------------------
    def _end(self, out: list[StreamEvent]) -> None:
        if not self._done:
            raise self._malformed("the stream ended before message_stop (connection cut off?)")

    def _malformed(self, what: str, data: str | None = None) -> MalformedResponseError:
        return self._adapter.malformed(what, model=self._req.model)

    # -- one SSE event -----------------------------------------------------------------
    def _payload(self, event: str | None, payload: Any, out: list[StreamEvent]) -> None:
        if not isinstance(payload, dict):
            raise self._malformed(f"an event's data is not an object: {str(payload)[:200]!r}")
        kind = payload.get("type") or event
        if self._done and kind != "error":
            return  # exactly one done: nothing after message_stop counts
        if kind == "content_block_delta":
            self._delta(payload, out)
        elif kind == "content_block_start":
            self._block_start(payload, out)
        elif kind == "content_block_stop":
            self._block_stop(payload.get("index", -1), out)
        elif kind == "message_start":
            message = payload.get("message") or {}
            self._id = message.get("id")
            self._model = message.get("model")
            if message.get("usage"):
                out.append(StreamEvent("usage", usage=usage_from(message["usage"])))
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self._raw_finish = delta.get("stop_reason") or self._raw_finish
            if isinstance(delta.get("stop_sequence"), str):
                self._stop_sequence = delta["stop_sequence"]
            if isinstance(payload.get("context_management"), dict):
                self._context_management = payload["context_management"]
            if payload.get("usage"):
                out.append(StreamEvent("usage", usage=usage_from(payload["usage"])))
        elif kind == "message_stop":
            self._done = True
            out.extend(self._text_gate.release())
            out.append(StreamEvent("done", finish_reason=self._finish(), raw_finish_reason=self._raw_finish,
                                   model=self._model or self._req.model, id=self._id,
                                   extra=self._done_extra()))
        elif kind == "error":
            raise self._adapter.stream_error(payload, self._req.model)
        # ping and event types added to the API later are ignored

    def _done_extra(self) -> dict[str, Any] | None:
        extra: dict[str, Any] = {}
        if self._stop_sequence:
            extra["stop_sequence"] = self._stop_sequence
        if self._context_management is not None:
            extra["context_management"] = self._context_management
        extra.update(refusal_extra(self._raw_finish, "".join(self._said)))
        if self._server is not None:
            extra.update(self._server.extra())
        return extra or None

    def _block_start(self, payload: dict[str, Any], out: list[StreamEvent]) -> None:
        index = payload.get("index", -1)
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind in ("text", "thinking", "redacted_thinking", "tool_use"):
            self._parts += 1   # each of these is a part of the answer (where a server block goes back)
        if kind == "text":
            self._blocks[index] = _TEXT
            for c in citations_from(block.get("citations")) or ():
                self._text_gate.add(StreamEvent("citation", index=index, citation=c), out)
            if block.get("text"):
                self._said.append(block["text"])
                self._text_gate.add(StreamEvent("text", text=block["text"], index=index), out)
        elif kind == "thinking":
            self._blocks[index] = _REASONING
            if block.get("thinking") or block.get("signature"):
                out.append(StreamEvent("reasoning", text=block.get("thinking") or None,
                                       signature=block.get("signature") or None))
        elif kind == "redacted_thinking":
            self._blocks[index] = _REASONING
            out.append(StreamEvent("reasoning", redacted=block.get("data")))
        elif kind == "tool_use" and is_structured_tool_call(self._req, block.get("name")):
            self._blocks[index] = _JSON_TEXT
            self._text_gate.answer_called()
        elif kind == "tool_use":
            self._blocks[index] = _TOOL
            self._tool_calls += 1
            out.extend(self._text_gate.release())  # text before a call of the user's tool stays before it
            name = block.get("name")
            if isinstance(name, str) and self._names:   # a name sent in the API's form: see .tool_names
                name = read_back(self._names, name)
            out.append(StreamEvent("tool_call_delta", index=index, id=block.get("id"), name=name))
        else:
            self._blocks[index] = _IGNORED
            if self._server is None:
                self._server = ServerBlocks()
            self._server.start(index, block, self._parts)

    def _block_stop(self, index: int, out: list[StreamEvent]) -> None:
        """A tool block that got no argument text was called with no input: ``{}``, as the
        whole message says, never ``""`` (which is not JSON)."""
        block = self._blocks.pop(index, None)
        if block == _IGNORED and self._server is not None:
            self._server.stop(index)
        if index in self._input_seen:
            return
        if block == _JSON_TEXT:
            out.append(StreamEvent("text", text="{}"))
        elif block == _TOOL:
            out.append(StreamEvent("tool_call_delta", index=index, arguments="{}"))

    def _delta(self, payload: dict[str, Any], out: list[StreamEvent]) -> None:
        index = payload.get("index", -1)
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        block = self._blocks.get(index)
        if kind == "text_delta" and block == _TEXT:
            if delta.get("text"):
                self._said.append(delta["text"])
                self._text_gate.add(StreamEvent("text", text=delta["text"], index=index), out)
        elif kind == "citations_delta" and block == _TEXT:
            citation = citation_from(delta.get("citation"))
            if citation is not None:
                self._text_gate.add(StreamEvent("citation", index=index, citation=citation), out)
        elif kind == "thinking_delta" and block == _REASONING:
            if delta.get("thinking"):
                out.append(StreamEvent("reasoning", text=delta["thinking"]))
        elif kind == "signature_delta" and block == _REASONING:
            if delta.get("signature"):
                out.append(StreamEvent("reasoning", signature=delta["signature"]))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            if block == _TOOL:
                self._input_seen.add(index)
                out.append(StreamEvent("tool_call_delta", index=index, arguments=delta["partial_json"]))
            elif block == _JSON_TEXT:
                self._input_seen.add(index)
                out.append(StreamEvent("text", text=delta["partial_json"]))
            elif block == _IGNORED and self._server is not None:
                self._server.input(index, delta["partial_json"])   # a server tool's input

    def _finish(self) -> FinishReason | None:
        finish = finish_reason(self._raw_finish)
        if finish == "tool_calls" and not self._tool_calls:
            return "stop"  # the only call was the structured-output tool, streamed as text
        return finish


class _TextGate:
    """Where the text blocks' events go when structured output may come through the tool: out at
    once (no structured output asked for, or the text began like a JSON answer), held (prose that
    may be a sentence before the tool call), or nowhere (the structured tool was called)."""

    __slots__ = ("_state", "_held")

    def __init__(self, structured: bool) -> None:
        self._state = "undecided" if structured else "live"
        self._held: list[StreamEvent] = []

    def add(self, ev: StreamEvent, out: list[StreamEvent]) -> None:
        if self._state == "live":
            out.append(ev)
        elif self._state != "dropped":
            self._held.append(ev)
            if self._state == "undecided":
                self._decide(out)

    def _decide(self, out: list[StreamEvent]) -> None:
        start = "".join(ev.text or "" for ev in self._held if ev.type == "text").lstrip()
        if not start:
            return
        if start[0] in "{[`":
            self._state = "live"
            out.extend(self._held)
            self._held.clear()
        else:
            self._state = "held"

    def answer_called(self) -> None:
        """The structured tool started: its input is the answer, the text around it is not."""
        self._state = "dropped"
        self._held.clear()

    def release(self) -> list[StreamEvent]:
        """What was held, in order: a user tool is being called or the message ended, and no
        structured tool came before (after the structured tool nothing is held)."""
        held, self._held = self._held, []
        return held
