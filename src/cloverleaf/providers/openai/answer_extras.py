"""What a Chat Completions answer carries beside its text and calls: sources and spoken audio.

- ``message.annotations`` (``url_citation``: the web sources of a search model's answer,
  ``web_search_options``) become :class:`Citation` values of the answer's text, type
  ``web_search_result_location`` (as Claude's and Gemini's web sources are) with ``url`` and
  ``title``; where in the answer the source is cited (``start_index``/``end_index``, characters
  of the whole content) is kept in the citation's ``extra`` under those names. Streamed, the
  annotations of ``delta.annotations`` are ``citation`` events after the text they cite.
- ``message.audio`` (``modalities: ["text", "audio"]``: ``id``, base64 ``data``,
  ``transcript``, ``expires_at``) is kept whole in ``metadata.extra["audio"]``; a streamed
  answer's ``delta.audio`` pieces (data and transcript come in fragments) are joined into the
  same object. An audio answer has no ``content``: its transcript is the answer's text.
"""

from __future__ import annotations

from typing import Any

from ..._types import Citation


def annotation_citations(annotations: Any) -> list[Citation]:
    """The ``url_citation`` annotations as citations (other kinds are not sources)."""
    out: list[Citation] = []
    for annotation in annotations if isinstance(annotations, list) else ():
        if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
            continue
        cited = annotation.get("url_citation")
        cited = cited if isinstance(cited, dict) else annotation   # a few servers flatten it
        url = cited.get("url")
        if not isinstance(url, str):
            continue
        extra = {key: cited[key] for key in ("start_index", "end_index") if isinstance(cited.get(key), int)}
        out.append(Citation("web_search_result_location", url=url, title=cited.get("title"), extra=extra or None))
    return out


class StreamedAudio:
    """``delta.audio`` pieces joined into one ``message.audio`` object."""

    __slots__ = ("audio",)

    def __init__(self) -> None:
        self.audio: dict[str, Any] | None = None

    def add(self, piece: Any) -> str | None:
        """Take one ``delta.audio``; returns the transcript text it adds (None if none)."""
        if not isinstance(piece, dict):
            return None
        audio = self.audio if self.audio is not None else {}
        self.audio = audio
        for key, value in piece.items():
            if key in ("data", "transcript") and isinstance(value, str):
                audio[key] = audio.get(key, "") + value
            elif value is not None:
                audio[key] = value
        transcript = piece.get("transcript")
        return transcript if isinstance(transcript, str) and transcript else None
