"""Bedrock Converse citations as :class:`~cloverleaf.Citation` values.

Converse reports a citation (whole, in a ``citationsContent`` block, or streamed, as a
``citation`` delta) in its own shape::

    {"title": "My Document", "source": "...", "sourceContent": [{"text": "the cited span"}],
     "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 20}}}

``location`` is a union: ``documentChar``, ``documentPage``, ``documentChunk`` (the spans of
a text document, a PDF and a document given as chunks: Anthropic's ``char_location``,
``page_location`` and ``content_block_location``, which Claude on Bedrock produces),
``searchResultLocation`` and ``web``. Each becomes the neutral type under Anthropic's kind
name, so an answer from Claude reads the same through Bedrock and through Anthropic's API, and
the gateway relays it to an Anthropic client in the shape that client's SDK parses. What the
neutral type does not name (a web location's ``domain``, a search result's index and source, a
location kind added later) stays in ``Citation.extra``.
"""

from __future__ import annotations

from typing import Any

from ..._types import Citation

#: Converse location member -> the Anthropic kind it stands for
_KINDS = {
    "documentChar": "char_location",
    "documentPage": "page_location",
    "documentChunk": "content_block_location",
    "searchResultLocation": "search_result_location",
    "web": "web_search_result_location",
}


def citation_from(data: Any) -> Citation | None:
    """The Citation a Converse citation object stands for; None for what is not one."""
    if not isinstance(data, dict):
        return None
    cited = "".join(c["text"] for c in data.get("sourceContent") or ()
                    if isinstance(c, dict) and isinstance(c.get("text"), str))
    title = data.get("title") if isinstance(data.get("title"), str) else None
    raw_location = data.get("location")
    location: dict[str, Any] = raw_location if isinstance(raw_location, dict) else {}
    member, span = next(iter(location.items()), (None, None))
    span = span if isinstance(span, dict) else {}
    kind = _KINDS.get(member or "", member or "unknown_location")
    extra: dict[str, Any] = {}
    if isinstance(data.get("source"), str):
        extra["source"] = data["source"]
    if kind == "web_search_result_location":
        if isinstance(span.get("domain"), str):
            extra["domain"] = span["domain"]
        return Citation(type=kind, cited_text=cited, url=_str(span.get("url")) or "", title=title,
                        extra=extra or None)
    if kind == "search_result_location":
        if _int(span.get("searchResultIndex")) is not None:
            extra["search_result_index"] = span["searchResultIndex"]
        return Citation(type=kind, cited_text=cited, title=title, start=_int(span.get("start")),
                        end=_int(span.get("end")), extra=extra or None)
    if kind not in _KINDS.values():  # a location kind added to the API later: kept as it came
        extra["location"] = location
        return Citation(type=kind, cited_text=cited, title=title, extra=extra)
    return Citation(type=kind, cited_text=cited, document_index=_int(span.get("documentIndex")) or 0,
                    document_title=title, start=_int(span.get("start")), end=_int(span.get("end")),
                    extra=extra or None)


def citations_from(data: Any) -> list[Citation] | None:
    """A ``citationsContent`` block's ``citations`` array as Citations; None when it has none."""
    if not isinstance(data, list):
        return None
    found = [c for c in (citation_from(item) for item in data) if c is not None]
    return found or None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
