"""Anthropic's citation objects <-> :class:`~cloverleaf.Citation`, both ways.

A leaf of the package (the adapter, the stream decoder and the server's Messages API use it;
it imports only the neutral types). One object per location kind, each naming its span in its
own words; the neutral type calls every span ``start``/``end``::

    char_location               document_index, document_title, start_char_index, end_char_index
    page_location               document_index, document_title, start_page_number, end_page_number
    content_block_location      document_index, document_title, start_block_index, end_block_index
    web_search_result_location  url, title, encrypted_index

Anything else in the object (``file_id``, ``encrypted_index``, the fields of a kind added to the
API later) is kept in ``Citation.extra`` and written back as it came, so a gateway relays a
citation byte for byte what the official SDK parses.
"""

from __future__ import annotations

from typing import Any

from ..._types import Citation

#: location kind -> the names of its span's start and end
SPANS: dict[str, tuple[str, str]] = {
    "char_location": ("start_char_index", "end_char_index"),
    "page_location": ("start_page_number", "end_page_number"),
    "content_block_location": ("start_block_index", "end_block_index"),
    "search_result_location": ("start_block_index", "end_block_index"),
}
_DOCUMENT_KINDS = frozenset({"char_location", "page_location", "content_block_location"})
_NAMED = frozenset({"type", "cited_text", "document_index", "document_title", "url", "title"})


def citation_from(data: Any) -> Citation | None:
    """The Citation an Anthropic citation object stands for (None for what is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None
    kind = data["type"]
    start_key, end_key = SPANS.get(kind, ("", ""))
    extra = {k: v for k, v in data.items() if k not in _NAMED and k not in (start_key, end_key)}
    return Citation(
        type=kind,
        cited_text=str(data.get("cited_text") or ""),
        document_index=_int(data.get("document_index")),
        document_title=data.get("document_title") if isinstance(data.get("document_title"), str) else None,
        start=_int(data.get(start_key)),
        end=_int(data.get(end_key)),
        url=data.get("url") if isinstance(data.get("url"), str) else None,
        title=data.get("title") if isinstance(data.get("title"), str) else None,
        extra=extra or None,
    )


def citations_from(data: Any) -> list[Citation] | None:
    """A text block's ``citations`` array as Citations; None when it has none."""
    if not isinstance(data, list):
        return None
    found = [c for c in (citation_from(item) for item in data) if c is not None]
    return found or None


def citation_json(c: Citation) -> dict[str, Any]:
    """The Anthropic citation object for ``c``: the fields its kind has, in the API's words."""
    out: dict[str, Any] = {"type": c.type, "cited_text": c.cited_text}
    if c.type in _DOCUMENT_KINDS or c.document_index is not None:
        out["document_index"] = c.document_index or 0
        out["document_title"] = c.document_title
    if c.url is not None or c.type == "web_search_result_location":
        out["url"] = c.url or ""
    if c.title is not None or c.type in ("web_search_result_location", "search_result_location"):
        out["title"] = c.title
    span = SPANS.get(c.type)
    if span is not None:
        out[span[0]] = c.start or 0
        out[span[1]] = c.end or 0
    out.update(c.extra or {})
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
