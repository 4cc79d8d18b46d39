"""Gemini responses as our events: one code path for streamed and whole responses.

Each ``streamGenerateContent?alt=sse`` chunk is a complete ``GenerateContentResponse``
holding only the new parts, so a whole ``generateContent`` response is simply a stream of
one chunk. :class:`ResponseReader` turns chunks into :class:`StreamEvent` values;
``parse_chat`` feeds it one chunk and assembles the events with the shared
``StreamAccumulator``, which is why a streamed and a non-streamed answer come out the same.

SSE framing and the one JSON parse per chunk are the shared
:class:`~cloverleaf.streams.sse_json.JSONEventDecoder`'s. Gemini has no terminal event: a
stream simply ends after the chunk that carries ``finishReason`` together with the final
``usageMetadata`` (every chunk holds the running totals). That chunk is the end, as
``message_stop`` and ``[DONE]`` are elsewhere: ``done`` (and the usage) is emitted there, and
nothing after it counts, so an upstream that drops the connection right after it has still given
the whole answer. A ``finishReason`` without usage (a proxy that sends the reason early) ends
nothing: the reader goes on, and ``close()`` emits ``done`` at the end of the body. A stream that
ends without any ``finishReason`` was cut off and raises :class:`MalformedResponseError`.

Usage: ``promptTokenCount`` already includes cached-content tokens. Gemini reports the
visible output (``candidatesTokenCount``) and the thinking (``thoughtsTokenCount``)
separately and bills both as output, so ``output_tokens`` is their sum and
``reasoning_tokens`` the thinking part. ``toolUsePromptTokenCount`` (search results a
built-in tool put into the prompt) is billed as input and added to ``input_tokens``; with
these sums ``Usage.total_tokens`` equals Gemini's ``totalTokenCount``.

What the answer carries beside text and calls (grounding, safety ratings, code execution, a
generated image) is read by :mod:`.answer_extras`: parts as events, the rest on ``done``'s extra.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from ..._errors import ContentFilterError, MalformedResponseError
from ..._http import HttpResponse
from ..._types import FinishReason, StreamEvent, Usage
from ...streams.sse_json import JSONEventDecoder
from .answer_extras import AnswerExtras

if TYPE_CHECKING:
    from ..._errors import ProviderError


class _Host(Protocol):
    """What the reader needs of its adapter (a protocol keeps the import one way: the adapter
    imports this module, never the reverse)."""

    name: str

    def malformed(self, what: str, resp: HttpResponse | None = None,
                  model: str | None = None) -> MalformedResponseError: ...

    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError: ...

FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",  # Vertex AI Model Armor
    # Vertex AI: "stopped because the response was flagged for unsupported language"
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}


#: events that are the answer itself, as opposed to thoughts, usage or metadata
_ANSWER_EVENTS = frozenset({"text", "tool_call_delta", "attachment"})


def finish_reason(raw: str | None) -> FinishReason | None:
    if raw is None:
        return None
    return FINISH_REASONS.get(raw, "other")


def usage_from(meta: dict[str, Any] | None) -> Usage:
    """Our :class:`Usage` from ``usageMetadata``; without one, usage is unknown, not zero.

    ``promptTokenCount`` and its ``promptTokensDetails`` count the whole prompt, the part served
    from the context cache included; ``cacheTokensDetails`` splits that cached part by modality.
    Its audio is kept apart (``cached_audio_tokens``): Google bills cached audio at its own cached
    rate, and counting it only in the prompt's audio put it on fresh text tokens instead. The
    answer's images (``candidatesTokensDetails`` IMAGE) are kept apart too
    (``image_output_tokens``): the image models bill them at many times the text and thinking rate."""
    if not isinstance(meta, dict):
        return Usage(reported=False)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    cache_details = meta.get("cacheTokensDetails")
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        # an answer seen with the per-modality split but no total (python-genai #795) still had a cache hit
        cached_tokens=int(meta.get("cachedContentTokenCount") or 0) or modality_tokens(cache_details),
        reasoning_tokens=thoughts,
        audio_input_tokens=modality_tokens(meta.get("promptTokensDetails"), "AUDIO"),
        cached_audio_tokens=modality_tokens(cache_details, "AUDIO"),
        image_output_tokens=modality_tokens(meta.get("candidatesTokensDetails"), "IMAGE"),
        service_tier=served_tier(meta),
    )


#: Vertex AI's ``trafficType`` of a tier that bills apart from standard pay-as-you-go.
_TRAFFIC_TIERS = {"ON_DEMAND_FLEX": "flex", "ON_DEMAND_PRIORITY": "priority"}


def served_tier(meta: dict[str, Any]) -> str | None:
    """The processing tier that served the call when it is not standard: the Gemini API's
    ``usageMetadata.serviceTier`` (``flex``: half the standard rates; ``priority``: 75 to 100 %
    more, and a call over its priority limit is served at standard), Vertex AI's ``trafficType``
    (``ON_DEMAND_FLEX``). Priced by :meth:`ModelPrice.cost <cloverleaf._pricing.ModelPrice.cost>`:
    a tier the row lists no rates for is unpriced, never billed at the standard rates."""
    tier = meta.get("serviceTier")
    if isinstance(tier, str) and tier.lower() not in ("", "standard", "default", "service_tier_unspecified"):
        return tier.lower()
    traffic = meta.get("trafficType")
    return _TRAFFIC_TIERS.get(traffic) if isinstance(traffic, str) else None


def modality_tokens(details: Any, modality: str | None = None) -> int:
    """The tokens of one modality (of every one, with None) in a ``*TokensDetails`` list
    (``[{"modality": "AUDIO", "tokenCount": 96000}, ...]``): Gemini bills audio input at its own rate."""
    if not isinstance(details, list):
        return 0
    return sum(int(d.get("tokenCount") or 0) for d in details
               if isinstance(d, dict) and (modality is None or d.get("modality") == modality))


def first_candidate(candidates: list[Any]) -> dict[str, Any] | None:
    """The candidate our answer is made of: ``index`` 0 (an absent ``index`` is 0, as in the API's
    proto JSON). With ``generationConfig.candidateCount`` above 1 a streamed chunk may hold only
    another candidate's parts; reading whichever came first spliced two answers into one."""
    for candidate in candidates:
        if isinstance(candidate, dict) and not candidate.get("index"):
            return candidate
    return None


def arguments_json(args: Any) -> str:
    return json.dumps(args if args is not None else {}, separators=(",", ":"), ensure_ascii=False)


class ResponseReader:
    """Turns ``GenerateContentResponse`` chunks into events; remembers what ``done`` needs."""

    __slots__ = ("_adapter", "_model", "_calls", "_finish", "_usage", "_response_id", "_seen_model",
                 "finish_message", "_extras", "_answered")

    def __init__(self, adapter: _Host, model: str) -> None:
        self._adapter = adapter
        self._model = model
        self._calls = 0
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._response_id: str | None = None
        self._seen_model: str | None = None
        self.finish_message: str | None = None
        #: what the answer says beside its parts (grounding, safety ratings, code run): done's extra
        self._extras = AnswerExtras()
        #: some text, call or attachment of the answer has come (thoughts do not count)
        self._answered = False

    def chunk(self, data: Any) -> list[StreamEvent]:
        if not isinstance(data, dict):
            raise self._adapter.malformed(f"expected a JSON object, got {type(data).__name__}", model=self._model)
        if "error" in data:
            body = json.dumps(data).encode()
            status = data["error"].get("code") if isinstance(data["error"], dict) else None
            raise self._adapter.parse_error(HttpResponse(int(status or 500), {}, body), self._model)
        if data.get("responseId"):
            self._response_id = data["responseId"]
        if data.get("modelVersion"):
            self._seen_model = str(data["modelVersion"]).removeprefix("models/")
        if isinstance(data.get("usageMetadata"), dict):
            self._usage = data["usageMetadata"]
        self._extras.response(data)
        candidates = data.get("candidates") or []
        if not candidates:
            self.check_prompt_blocked(data)
            return []
        candidate = first_candidate(candidates)
        if candidate is None:
            return []   # only other candidates (candidateCount > 1) in this chunk: not our answer
        self._extras.candidate(candidate)
        if candidate.get("finishReason"):
            self._finish = candidate["finishReason"]
        if candidate.get("finishMessage"):
            self.finish_message = candidate["finishMessage"]
        parts = (candidate.get("content") or {}).get("parts") or []
        events: list[StreamEvent] = []
        for part in parts:
            events.extend(self._part_events(part))
        self._answered = self._answered or any(e.type in _ANSWER_EVENTS for e in events)
        return events

    @property
    def finished(self) -> bool:
        """A ``finishReason`` has come (the stream's last chunk, when its usage came with it)."""
        return self._finish is not None

    def _part_events(self, part: dict[str, Any]) -> list[StreamEvent]:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            call = part["functionCall"] or {}
            index = self._calls
            self._calls += 1
            return [StreamEvent(
                "tool_call_delta",
                index=index,
                id=call.get("id") or self._call_id(index),
                name=call.get("name") or "",
                arguments=arguments_json(call.get("args")),
                extra={"thoughtSignature": signature} if signature else None,
            )]
        text = part.get("text")
        if part.get("thought"):
            return [StreamEvent("reasoning", text=text or None, signature=signature)] if text or signature else []
        events: list[StreamEvent] = []
        if signature:
            # the signature of a text (or empty) part: kept as signature-only reasoning, put back on send
            events.append(StreamEvent("reasoning", signature=signature))
        if text:
            events.append(StreamEvent("text", text=text))
        # the code Gemini ran and what it printed (text set off as fenced blocks), an image it made
        events.extend(self._extras.output_part(part))
        return events

    def _call_id(self, index: int) -> str:
        """Gemini before v3 sends no call ids; ours are stable for any split of the stream."""
        return f"call_{self._response_id}_{index}" if self._response_id else f"call_{index}"

    def check_prompt_blocked(self, data: dict[str, Any]) -> None:
        """Raise ContentFilterError when Gemini refused the prompt itself (no candidates)."""
        feedback = data.get("promptFeedback") or {}
        reason = feedback.get("blockReason")
        if reason:
            detail = feedback.get("blockReasonMessage")
            blocked = [str(r["category"]) for r in feedback.get("safetyRatings") or ()
                       if isinstance(r, dict) and r.get("blocked") and r.get("category")]
            raise ContentFilterError(
                f"Gemini blocked the prompt ({reason}" + (f": {', '.join(blocked)}" if blocked else "") + ")"
                + (f": {detail}" if detail else "")
                + "; rephrase the request or adjust safetySettings",
                provider=self._adapter.name, model=self._model, status=200, body=json.dumps(data)[:4000],
                code=reason,
            )

    def finish(self, *, require_finish: bool) -> list[StreamEvent]:
        if self._finish is None and require_finish:
            raise MalformedResponseError(
                "the Gemini stream ended before any finishReason (connection cut off?)",
                provider=self._adapter.name, model=self._model,
            )
        # the grounding sources, as citations of the text they support (it came before them)
        events: list[StreamEvent] = self._extras.citations()
        if self._usage is not None:
            events.append(StreamEvent("usage", usage=usage_from(self._usage)))
        extra = self._extras.done_extra()
        if self.finish_message:   # why Gemini stopped, in words (a blocked or malformed answer)
            extra["finish_message"] = self.finish_message
        reason = finish_reason(self._finish)
        if reason == "other" and not self._answered:
            # OTHER, NO_IMAGE, FINISH_REASON_UNSPECIFIED... with nothing said: a failed answer (raised
            # as GenerationFailedError with Gemini's reason and words), never an empty "stop" answer
            reason = "error"
        events.append(StreamEvent(
            "done",
            finish_reason=reason,
            raw_finish_reason=self._finish,
            model=self._seen_model or self._model,
            id=self._response_id,
            extra=extra or None,   # on metadata.extra, streamed or not
        ))
        return events


class GeminiStreamDecoder(JSONEventDecoder):
    """SSE bytes (``data: {...}\\r\\n\\r\\n``) in, events out; split anywhere."""

    __slots__ = ("_reader", "_adapter", "_model", "_closed", "_done")

    def __init__(self, adapter: _Host, model: str) -> None:
        super().__init__()
        self._reader = ResponseReader(adapter, model)
        self._adapter = adapter
        self._model = model
        self._closed = False
        #: the last chunk (finishReason with the final usage) has come: the answer is whole
        self._done = False

    def close(self) -> list[StreamEvent]:
        if self._closed:
            return []
        self._closed = True
        return super().close()

    def _payload(self, event: str | None, payload: Any, out: list[StreamEvent]) -> None:
        if self._done:
            return  # exactly one done: nothing after the last chunk counts
        out.extend(self._reader.chunk(payload))
        if self._reader.finished and isinstance(payload.get("usageMetadata"), dict):
            self._done = True
            out.extend(self._reader.finish(require_finish=True))

    def _end(self, out: list[StreamEvent]) -> None:
        if not self._done:
            out.extend(self._reader.finish(require_finish=True))

    def _malformed(self, what: str, data: str | None = None) -> MalformedResponseError:
        return self._adapter.malformed(what, model=self._model)
