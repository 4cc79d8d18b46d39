"""Documents for providers that have no document type: the same words, as plain parts.

A :class:`~cloverleaf.Document` (title, context, content, citations) is native to Anthropic's
Messages API and to Bedrock Converse; their adapters say so (``Adapter.native_documents``) and
encode it themselves. Every other provider gets, in its place, what the model would have read:
one text part holding the title and the context as labelled lines followed by the document's
text, then its PDF or images as attachments. The lines of a document given as several text
parts stay lines: OpenAI-style encoders join a turn's text parts with nothing between them,
and "First." and "Second." must not reach the model as "First.Second.". Only the citations
are lost (those providers cannot cite), never the document's text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._types import Attachment, ChatRequest, Document, Message, Part, Text, ToolResult


def holds_documents(req: ChatRequest) -> bool:
    return any(isinstance(p, Document) for m in req.messages for p in m.parts)


def without_documents(req: ChatRequest) -> ChatRequest:
    """``req`` with each Document replaced by its plain parts (``req`` itself when it has none)."""
    if not holds_documents(req):
        return req
    messages = [Message(m.role, parts=[q for p in m.parts for q in plain_parts(p)], name=m.name)
                for m in req.messages]
    return dataclasses.replace(req, messages=messages)


def plain_parts(part: Part) -> list[Part]:
    """The parts a Document reads as (any other part: itself)."""
    if not isinstance(part, Document):
        return [part]
    lines = [line for line in (f"Document: {part.title}" if part.title else None,
                               f"Context: {part.context}" if part.context else None) if line]
    out: list[Part] = []
    content: list[Any] = [part.content] if isinstance(part.content, str | Attachment) else list(part.content)
    for item in content:
        if isinstance(item, str | Text):
            lines.append(item if isinstance(item, str) else item.text)
            continue
        if lines:
            out.append(Text("\n".join(lines)))
            lines = []
        if isinstance(item, Attachment) and item.filename is None and part.title:
            item = dataclasses.replace(item, filename=part.title)   # OpenAI's file parts show a name
        out.append(item)
    if lines:
        out.append(Text("\n".join(lines)))
    if part.cache_control and out and isinstance(out[-1], Text | Attachment):
        out[-1] = dataclasses.replace(out[-1], cache_control=part.cache_control)
    return out


def nested_attachments(part: Part) -> list[tuple[Any, Any, Attachment]]:
    """Where a part's nested attachments live, as (holder, key, attachment): a ToolResult's
    list, a Document's list, or the Document itself when its content is one attachment."""
    if isinstance(part, ToolResult) and isinstance(part.content, list):
        return [(part.content, j, p) for j, p in enumerate(part.content) if isinstance(p, Attachment)]
    if isinstance(part, Document):
        if isinstance(part.content, Attachment):
            return [(part, "content", part.content)]
        if isinstance(part.content, list):
            return [(part.content, j, p) for j, p in enumerate(part.content) if isinstance(p, Attachment)]
    return []


def put(holder: Any, key: Any, value: Attachment) -> None:
    """Store a resolved attachment where :func:`nested_attachments` found it."""
    if isinstance(holder, list):
        holder[key] = value
    else:
        setattr(holder, key, value)
