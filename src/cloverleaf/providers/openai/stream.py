"""Decode a Chat Completions SSE stream into StreamEvents, incrementally, with no I/O.

Built on the shared :class:`~cloverleaf.streams.sse_json.JSONEventDecoder` (SSE framing,
comments such as OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives, any chunk split, one
JSON parse per event), this module only knows what a ``chat.completion.chunk`` means:

- ``delta.content`` -> ``text`` (Mistral's list form splits into text and ``thinking``);
  ``delta.reasoning_content`` (DeepSeek, vLLM) / ``delta.reasoning`` (OpenRouter, Groq,
  Cerebras) -> ``reasoning``; OpenRouter's ``reasoning_details`` add signatures and
  encrypted blocks.
- ``delta.tool_calls[]`` -> ``tool_call_delta`` keyed by the call's ``index`` (parallel
  calls interleave; servers that omit ``index`` start a new call whenever an ``id`` appears).
  An ``id`` other than the one already seen at its ``index`` is a new call too, at the next
  free index: SGLang and some vLLM builds send every parallel call whole at ``index`` 0, each
  with its own id, which would otherwise be merged into one call with broken arguments.
  Servers that send the id only on a call's first fragment, or repeat it on every one, are
  read as before. A legacy ``delta.function_call`` is the call at index 0, and a custom tool's
  call (``custom.input`` text) streams as the arguments ``{"input": ...}`` (:mod:`.call_shapes`).
  A call begun without an id (Gemini's endpoint sends none) gets one made from
  the answer's id and the call's index, as the whole answer's parser makes it
  (:mod:`cloverleaf.streams.call_ids`), on its first fragment.
- ``usage`` may come in the final choice-less chunk (OpenAI, Azure), in the finish chunk
  (Groq, Mistral; Groq puts it only under ``x_groq.usage`` when ``stream_options`` is not
  sent) or after it (OpenRouter); every one becomes a ``usage`` event.
- The finish reason is remembered (OpenRouter repeats it) and ONE ``done`` is emitted at
  ``data: [DONE]``, after the trailing usage chunk.

End of input without ``[DONE]``: if a finish reason has arrived the stream is complete in
substance (some compatible servers never send ``[DONE]``), so ``close()`` emits the
``done``; if none has, the stream was cut off and ``close()`` raises
MalformedResponseError. An ``error`` object in a chunk or an ``event: error`` frame
(Groq, OpenRouter) raises the mapped ProviderError from ``feed()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..._errors import MalformedResponseError, ProviderError
from ..._types import FinishReason, StreamEvent, Usage
from ...streams.accumulate import arguments_text
from ...streams.call_ids import answer_salt, made_up_call_id
from ...streams.sse_json import JSONEventDecoder
from . import reasoning_details
from .answer_extras import StreamedAudio, annotation_citations
from .call_shapes import CUSTOM, CustomInputs, is_custom

if TYPE_CHECKING:
    from ..._types import ChatRequest


class _Host(Protocol):
    """What the decoder needs from its adapter (the Azure subclass changes these)."""

    name: str

    def stream_error(self, payload: Any, model: str | None) -> ProviderError: ...

    def check_finish(self, raw_finish: str | None, model: str | None,
                     choice: dict[str, Any] | None = None) -> None: ...

    def chunk_extra(self, chunk: dict[str, Any]) -> dict[str, Any] | None: ...


_FINISH: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter", "end_turn": "stop", "max_tokens": "length", "eos": "stop",
    "model_length": "length", "error": "error",
    # DeepSeek cut the answer short for want of capacity: raised as GenerationInterruptedError
    "insufficient_system_resource": "error",
}


def normalise_finish(raw: str | None) -> FinishReason | None:
    if raw is None:
        return None
    return _FINISH.get(raw, "other")


def usage_from(data: dict[str, Any] | None, service_tier: Any = None) -> Usage | None:
    """Usage from an OpenAI-style ``usage`` object (None when absent), with the ``service_tier``
    the answer names beside it (flex and priority bill at their own rates).

    ``completion_tokens`` includes the reasoning tokens on OpenAI and almost everywhere else;
    xAI counts them apart (its ``total_tokens`` is prompt + completion + reasoning), and our
    ``output_tokens`` must include them, so when the total says so they are added.
    """
    if not isinstance(data, dict):
        return None
    prompt = int(data.get("prompt_tokens") or data.get("input_tokens") or 0)
    completion = int(data.get("completion_tokens") or data.get("output_tokens") or 0)
    pdet = data.get("prompt_tokens_details") or data.get("input_tokens_details") or {}
    cdet = data.get("completion_tokens_details") or data.get("output_tokens_details") or {}
    reasoning = int(cdet.get("reasoning_tokens") or 0)
    if reasoning and data.get("total_tokens") == prompt + completion + reasoning:
        completion += reasoning
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_tokens=int(pdet.get("cached_tokens") or data.get("prompt_cache_hit_tokens") or 0),
        cache_write_tokens=int(pdet.get("cache_write_tokens") or pdet.get("cache_creation_tokens") or 0),
        reasoning_tokens=reasoning,
        cost=_reported_cost(data.get("cost")),
        audio_input_tokens=int(pdet.get("audio_tokens") or 0),
        audio_output_tokens=int(cdet.get("audio_tokens") or 0),
        service_tier=service_tier if isinstance(service_tier, str) and service_tier else None,
    )


def _reported_cost(value: Any) -> float | None:
    """OpenRouter's ``usage.cost`` (credits = USD), asked for with ``usage: {include: true}``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        cost = float(value)
    except ValueError:
        return None
    return cost if cost >= 0 and cost == cost else None


def content_pieces(content: Any) -> list[tuple[str, str]]:
    """``("text" | "reasoning", text)`` pieces of a message/delta ``content`` (string or Mistral list)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [("text", content)] if content else []
    out: list[tuple[str, str]] = []
    if isinstance(content, list):
        for item in content:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "text" and item.get("text"):
                out.append(("text", item["text"]))
            elif kind == "thinking":
                for sub in content_pieces(item.get("thinking")):
                    out.append(("reasoning", sub[1]))
    return out


def reasoning_text(message: dict[str, Any]) -> str | None:
    """Reasoning text from ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter, Groq)."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def reasoning_extras(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """(signature, encrypted data) from OpenRouter ``reasoning_details``."""
    signature = redacted = None
    for detail in message.get("reasoning_details") or ():
        if not isinstance(detail, dict):
            continue
        if detail.get("signature"):
            signature = detail["signature"]
        if detail.get("type") == "reasoning.encrypted" and detail.get("data"):
            redacted = detail["data"]
    return signature, redacted


#: ``extra`` of a text event that is part of a refusal (shared, never modified).
_REFUSAL: dict[str, Any] = {"refusal": True}
#: The keys of a delta that is only text (OpenAI's first one also has ``role`` and a null ``refusal``).
_TEXT_ONLY = frozenset(("content", "role", "refusal"))


class OpenAIStreamDecoder(JSONEventDecoder):
    """One stream's state. ``feed`` any bytes; ``close`` at end of input."""

    __slots__ = ("_host", "_model", "_id", "_raw_finish", "_done", "_seen_chunk", "_next_index",
                 "_last_index", "_extra", "_fallback_model", "_call_ids", "_moved", "_audio", "_said",
                 "_opened", "_salt", "_history", "_customs")

    def __init__(self, host: _Host, req: ChatRequest) -> None:
        super().__init__()
        self._host = host
        self._model: str | None = None
        self._id: str | None = None
        self._raw_finish: str | None = None
        self._done = False
        self._seen_chunk = False
        self._next_index = 0  # for servers that send tool calls without ``index``
        self._last_index: int | None = None
        #: our index -> the id its call came with; upstream index -> ours, for a reused index
        #: (both made at the first tool call: a text stream never builds them)
        self._call_ids: dict[int, str] | None = None
        self._moved: dict[int, int] | None = None
        #: the calls begun so far (our indexes), and what makes their made-up ids this answer's
        self._opened: set[int] | None = None
        self._salt: str | None = None
        self._history = req.messages   # (marked only when a call comes without an id)
        self._extra: dict[str, Any] = {}
        self._fallback_model = req.model
        #: a spoken answer's pieces (made at the first one), and whether ``content`` text came
        self._audio: StreamedAudio | None = None
        self._said = False
        #: the custom tools' calls streamed (made at the first one)
        self._customs: CustomInputs | None = None

    # -- JSONEventDecoder hooks -----------------------------------------------------------
    def _payload(self, event: str | None, chunk: Any, out: list[StreamEvent]) -> None:
        if self._done:
            return
        if event == "error" or (isinstance(chunk, dict) and chunk.get("error")):
            raise self._host.stream_error(chunk, self._model or self._fallback_model)
        if isinstance(chunk, dict):
            self._chunk(chunk, out)

    def _sentinel(self, out: list[StreamEvent]) -> None:
        if not self._done:
            self._close_customs(out)
            out.append(self._done_event())

    def _end(self, out: list[StreamEvent]) -> None:
        if self._done:
            return
        if self._raw_finish is None:
            what = "the stream ended before the model finished" if self._seen_chunk else "the stream was empty"
            raise self._malformed(f"{what} (no finish_reason, no [DONE])")
        self._close_customs(out)
        out.append(self._done_event())

    def _close_customs(self, out: list[StreamEvent]) -> None:
        """Close the ``{"input": "...`` arguments of each custom call streamed."""
        if self._customs is not None:
            for index, text in self._customs.closers():
                out.append(StreamEvent("tool_call_delta", index=index, arguments=text))

    def _malformed(self, what: str, data: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(f"could not parse the provider's response: {what}", provider=self._host.name,
                                      model=self._model or self._fallback_model, body=data)

    # -- internals ------------------------------------------------------------------------
    def _chunk(self, chunk: dict[str, Any], out: list[StreamEvent]) -> None:
        self._seen_chunk = True
        if model := chunk.get("model"):
            self._model = model
        if answer_id := chunk.get("id"):
            self._id = answer_id
        extra = self._host.chunk_extra(chunk)
        if extra:
            self._extra.update(extra)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if choice.get("error"):
                # OpenRouter: the upstream failed mid-answer (finish_reason "error"); what came is partial
                raise self._host.stream_error({"error": choice["error"]}, self._model or self._fallback_model)
            self._delta(choice.get("delta") or {}, out)
            raw = choice.get("finish_reason")
            if raw:
                self._host.check_finish(raw, self._model or self._fallback_model, choice)
                self._raw_finish = raw
        counts = chunk.get("usage")   # (absent or null on every chunk but one or two)
        usage = None if counts is None else usage_from(counts, chunk.get("service_tier"))
        if usage is None and "x_groq" in chunk:  # Groq without stream_options reports it only there
            groq = chunk["x_groq"]
            usage = usage_from(groq.get("usage")) if isinstance(groq, dict) else None
        if usage is not None:
            out.append(StreamEvent("usage", usage=usage))

    def _delta(self, delta: dict[str, Any], out: list[StreamEvent]) -> None:
        content = delta.get("content")
        if content.__class__ is str and delta.keys() <= _TEXT_ONLY and not delta.get("refusal"):
            # the usual delta, a piece of text (or the first chunk's role and empty text): what
            # the general path below makes of it, without its dozen lookups (a quarter of this
            # decoder's work per streamed chunk)
            if content:
                self._said = True
                out.append(StreamEvent("text", text=content))
            return
        text = reasoning_text(delta)
        signature, redacted = reasoning_extras(delta)
        details = reasoning_details.received(delta)  # fragments: the accumulator keeps them all
        if text or signature or redacted or details:
            out.append(StreamEvent("reasoning", text=text, signature=signature, redacted=redacted, extra=details))
        if content.__class__ is str:  # without building a pieces list
            if content:
                self._said = True
                out.append(StreamEvent("text", text=content))
        elif content is not None:
            for kind, piece in content_pieces(content):
                self._said = self._said or kind == "text"
                out.append(StreamEvent("text" if kind == "text" else "reasoning", text=piece))
        if "audio" in delta or "annotations" in delta:
            self._sources_and_audio(delta, out)
        if delta.get("refusal"):  # text, marked so a server can relay it as a refusal delta
            out.append(StreamEvent("text", text=delta["refusal"], extra=_REFUSAL))
            self._extra["refusal"] = self._extra.get("refusal", "") + delta["refusal"]
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):   # a legacy ``functions`` answer: one call, without an id
            out.append(self._tool_delta({"index": 0, "function": legacy}))

    def _sources_and_audio(self, delta: dict[str, Any], out: list[StreamEvent]) -> None:
        """A spoken answer's pieces (its transcript is the text when no ``content`` came), and the
        annotations' sources, as citations of the text before them (see :mod:`.answer_extras`)."""
        if delta.get("audio"):
            if self._audio is None:
                self._audio = StreamedAudio()
            transcript = self._audio.add(delta["audio"])
            if self._audio.audio:
                self._extra["audio"] = self._audio.audio
            if transcript and not self._said:
                out.append(StreamEvent("text", text=transcript))
        for citation in annotation_citations(delta.get("annotations")):
            out.append(StreamEvent("citation", citation=citation))

    def _tool_delta(self, call: dict[str, Any]) -> StreamEvent:
        index = call.get("index")
        call_id = call.get("id") or None
        if not isinstance(index, int):
            if call_id or self._last_index is None:
                index = self._next_index
            else:
                index = self._last_index
        else:
            index = self._call_index(index, call_id)
        self._last_index = index
        self._next_index = max(self._next_index, index + 1)
        if self._opened is None:
            self._opened = set()
        if index not in self._opened:
            self._opened.add(index)
            if call_id is None:   # a call begun without an id: ours, on its first fragment, for all to relay
                self._salt = self._salt or answer_salt(self._id, self._history)
                call_id = made_up_call_id(self._salt, index)
        if is_custom(call):   # a custom tool's input is text: escaped into {"input": ...} (see .call_shapes)
            custom = call.get("custom") or {}
            first = self._customs is None or index not in self._customs.open
            if self._customs is None:
                self._customs = CustomInputs()
            return StreamEvent("tool_call_delta", index=index, id=call_id, name=custom.get("name") or None,
                               arguments=self._customs.fragment(index, custom.get("input")) or None,
                               extra=dict(CUSTOM) if first else None)
        fn = call.get("function") or {}
        return StreamEvent(
            "tool_call_delta",
            index=index,
            id=call_id,
            name=fn.get("name") or None,
            arguments=arguments_text(fn.get("arguments")) or None,   # a few servers send the object
        )

    def _call_index(self, upstream: int, call_id: str | None) -> int:
        """Our index for a fragment the server sent at ``upstream``: the same, unless a call with
        another id came at that index before (then the next free index, which its later
        fragments without an id follow)."""
        index = self._moved.get(upstream, upstream) if self._moved else upstream
        if call_id is None:
            return index
        ids = self._call_ids
        if ids is None:
            ids = self._call_ids = {}
        seen = ids.get(index)
        if seen is None:
            ids[index] = call_id
        elif seen != call_id:   # a second call at a used index: a new call, not more of the old one
            index = self._next_index
            ids[index] = call_id
            if self._moved is None:
                self._moved = {}
            self._moved[upstream] = index
        return index

    def _done_event(self) -> StreamEvent:
        self._done = True
        finish = "content_filter" if "refusal" in self._extra else normalise_finish(self._raw_finish)
        return StreamEvent(
            "done",
            finish_reason=finish,
            raw_finish_reason=self._raw_finish,
            model=self._model or self._fallback_model,
            id=self._id,
            extra=dict(self._extra) or None,
        )
