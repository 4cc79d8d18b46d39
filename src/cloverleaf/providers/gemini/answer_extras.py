"""What a Gemini answer says beside its text and calls, kept rather than dropped.

A user who turned on a built-in tool or a safety setting pays for, and needs, what comes back
with it; each is kept in ``metadata.extra`` as Gemini sent it (its own camelCase fields), the
same whole and streamed (the stream's ``done`` event carries them):

- ``grounding_metadata``: Google Search grounding (``webSearchQueries``, ``groundingChunks``,
  ``groundingSupports``, ``searchEntryPoint``). Each support of a web source also becomes a
  :class:`Citation` (``web_search_result_location``, ``url`` and ``title`` of the source; the
  answer's span it supports, ``segment``, and the chunk's index in ``extra``) on the text part,
  as Claude's web search citations are.
- ``url_context_metadata``: which URLs the URL-context tool read, and whether it could.
- ``safety_ratings``: the candidate's ratings per harm category (which one ``blocked`` a
  ``SAFETY`` stop); ``prompt_feedback``: the prompt's own ratings.
- ``citation_metadata``: the sources Gemini says a recited passage comes from.
- ``code_execution``: the code-execution tool's ``executableCode`` and ``codeExecutionResult``
  parts, in order. They are also text of the answer, set off as fenced blocks (the code, then
  ``output``) where they came: a reader of ``.text`` (or of a server's answer, in any of its
  APIs) sees what was run and what it printed between the sentences around it, never the two
  sentences glued together.

An ``inlineData`` part of the answer (an image Gemini generated, ``responseModalities`` with
``IMAGE``) is an :class:`Attachment` part with the bytes (``fileData``: with the URL).
Streamed, metadata is kept from the last chunk that had it (Gemini repeats it in full).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..._types import Attachment, AttachmentKind, Citation, StreamEvent

#: candidate fields kept in ``metadata.extra``, under these names
_CANDIDATE_FIELDS = {
    "groundingMetadata": "grounding_metadata",
    "urlContextMetadata": "url_context_metadata",
    "safetyRatings": "safety_ratings",
    "citationMetadata": "citation_metadata",
}


class AnswerExtras:
    """Collects one answer's extras from its chunks (or its one whole response)."""

    __slots__ = ("_kept", "_code")

    def __init__(self) -> None:
        self._kept: dict[str, Any] = {}
        self._code: list[dict[str, Any]] = []

    def response(self, data: dict[str, Any]) -> None:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback:
            self._kept["prompt_feedback"] = feedback

    def candidate(self, candidate: dict[str, Any]) -> None:
        for field, key in _CANDIDATE_FIELDS.items():
            value = candidate.get(field)
            if value:
                self._kept[key] = value

    def output_part(self, part: dict[str, Any]) -> list[StreamEvent]:
        """The events of a part that is neither text, thought nor call (none for any other)."""
        if part.get("thought"):
            return []   # an interim image of the model's thinking is not the answer
        code = part.get("executableCode")
        if isinstance(code, dict):
            self._code.append({"executableCode": code})
            language = str(code.get("language") or "").lower().replace("language_unspecified", "")
            return [StreamEvent("text", text=_fenced(language, str(code.get("code") or "")))]
        result = part.get("codeExecutionResult")
        if isinstance(result, dict):
            self._code.append({"codeExecutionResult": result})
            outcome = result.get("outcome")
            said = str(result.get("output") or "").rstrip("\n")
            label = "output" if outcome in (None, "OUTCOME_OK") else f"output ({outcome})"
            return [StreamEvent("text", text=_fenced(label, said))]
        attachment = _attachment(part)
        return [StreamEvent("attachment", attachment=attachment)] if attachment is not None else []

    def citations(self) -> list[StreamEvent]:
        """A ``citation`` event per (support, web source) of the grounding metadata."""
        grounding = self._kept.get("grounding_metadata")
        if not isinstance(grounding, dict):
            return []
        chunks = grounding.get("groundingChunks") or []
        events: list[StreamEvent] = []
        for support in grounding.get("groundingSupports") or ():
            if not isinstance(support, dict):
                continue
            scores = support.get("confidenceScores") or []
            for n, index in enumerate(support.get("groundingChunkIndices") or ()):
                web = chunks[index].get("web") if isinstance(index, int) and 0 <= index < len(chunks) \
                    and isinstance(chunks[index], dict) else None
                if not isinstance(web, dict):
                    continue   # a retrieved document (Vertex AI Search, RAG): in grounding_metadata only
                extra: dict[str, Any] = {"segment": support.get("segment") or {}, "grounding_chunk_index": index}
                if n < len(scores):
                    extra["confidence_score"] = scores[n]
                events.append(StreamEvent("citation", citation=Citation(
                    "web_search_result_location", url=web.get("uri"), title=web.get("title"), extra=extra)))
        return events

    def done_extra(self) -> dict[str, Any]:
        extra = dict(self._kept)
        if self._code:
            extra["code_execution"] = list(self._code)
        return extra


def _fenced(label: str, body: str) -> str:
    """A fenced block on lines of its own, whatever text comes before and after it."""
    return f"\n```{label}\n{body}\n```\n"


def _attachment(part: dict[str, Any]) -> Attachment | None:
    inline, linked = part.get("inlineData"), part.get("fileData")
    if isinstance(inline, dict) and isinstance(inline.get("data"), str):
        mime = str(inline.get("mimeType") or "application/octet-stream")
        try:
            data = base64.b64decode(inline["data"], validate=False)
        except (binascii.Error, ValueError):
            return None
        return Attachment(type=_kind(mime), media_type=mime, data=data)
    if isinstance(linked, dict) and isinstance(linked.get("fileUri"), str):
        mime = str(linked.get("mimeType") or "application/octet-stream")
        return Attachment(type=_kind(mime), media_type=mime, url=linked["fileUri"], fetch="provider")
    return None


def _kind(mime: str) -> AttachmentKind | None:
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "audio"
    return "pdf" if mime == "application/pdf" else None
