"""Documents for providers that have no document type: the same words, as plain parts.

A :class:`~cloverleaf.Document` (title, context, content, citations) is native to Anthropic's
Messages API and to Bedrock Converse; their adapters say so (``Adapter.native_documents``) and
encode it themselves. Every other provider gets, in its place, what the model would have read:
one text part holding the title and the context as labelled lines followed by the document's
text, then its PDF or images as attachments. The lines of a document given as several text
parts stay lines: OpenAI-style encoders join a turn's text parts with nothing between them,
and "First." and "Second." must not reach the model as "First.Second.". For the same reason
the document's text is set off by a blank line from the turn's text around it: "Answer from
this:" and "Document: Refund policy" must not reach the model as one run-on line. Only the
citations are lost (those providers cannot cite), never the document's text.

No provider takes a document block in its system prompt: a Document in a system message is
read as its plain parts everywhere (:func:`system_documents_as_text`), its text becoming
system text; an attachment it holds is what the engine's system-message check judges.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._types import Attachment, ChatRequest, Document, Message, Part, Role, Text, ToolResult


def holds_documents(req: ChatRequest) -> bool:
    return any(isinstance(p, Document) for m in req.messages for p in m.parts)


def without_documents(req: ChatRequest) -> ChatRequest:
    """``req`` with each Document replaced by its plain parts, set off from the text around it
    (``req`` itself when it has none)."""
    if not holds_documents(req):
        return req
    messages = [Message(m.role, parts=_set_off(m.parts), name=m.name, extra=m.extra) for m in req.messages]
    return dataclasses.replace(req, messages=messages)


def system_documents_as_text(req: ChatRequest) -> ChatRequest:
    """``req`` with each Document of a system message replaced by its plain parts, for the
    providers whose documents are native everywhere but in the system prompt (Anthropic,
    Bedrock): their system encoders keep text parts apart, so nothing is glued there."""
    if not any(isinstance(p, Document) for m in req.messages if m.role is Role.SYSTEM for p in m.parts):
        return req
    messages = [Message(m.role, parts=[q for p in m.parts for q in plain_parts(p)], name=m.name, extra=m.extra)
                if m.role is Role.SYSTEM else m for m in req.messages]
    return dataclasses.replace(req, messages=messages)


def _set_off(parts: list[Part]) -> list[Part]:
    """``parts`` with Documents as plain parts, a blank line between a document's text and any
    text before or after it in the turn (encoders join text parts with nothing between, and
    some join them across an image)."""
    out: list[Part] = []
    from_document: list[bool] = []
    for part in parts:
        plain = plain_parts(part)
        out.extend(plain)
        from_document.extend([isinstance(part, Document)] * len(plain))
    texts = [i for i, p in enumerate(out) if isinstance(p, Text) and p.text]
    for before, after in zip(texts, texts[1:]):
        if not (from_document[before] or from_document[after]):
            continue
        first, second = out[before], out[after]
        assert isinstance(first, Text) and isinstance(second, Text)
        gap = _gap(first.text, second.text)
        if not gap:
            continue
        if from_document[after]:
            out[after] = dataclasses.replace(second, text=gap + second.text)
        else:
            out[before] = dataclasses.replace(first, text=first.text + gap)
    return out


def _gap(first: str, second: str) -> str:
    """The newlines that make a blank line between ``first`` and ``second`` (none already there)."""
    have = len(first) - len(first.rstrip("\n")) + len(second) - len(second.lstrip("\n"))
    return "\n" * max(0, 2 - have)


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
