"""Our conversation as Converse ``system`` and ``messages``: roles, content blocks, documents.

Why this is more than a field rename: Converse has its own rules for a conversation.

- System messages are not turns: their text parts become the top-level ``system`` blocks (a
  part of only whitespace says nothing, and is refused), with a ``cachePoint`` after a part that
  carries ``cache_control``.
- Only ``user`` and ``assistant`` turns exist and they must alternate, so consecutive turns of
  one role are merged (tool results travel as ``toolResult`` blocks in a ``user`` turn). "A
  conversation must start with a user message": a chat the assistant opened (a chat UI's
  greeting, which OpenAI, Anthropic and Gemini take) gets a neutral user turn first
  (:data:`OPENING_USER_TEXT`).
- Reasoning parts in the history are sent back only when signed (or redacted) and produced by
  Bedrock, or by Claude anywhere for a Claude model (the thinking blocks a ``/v1/messages``
  client sends back: ``_common.replayable_reasoning``): Claude verifies them, unsigned reasoning
  cannot be replayed faithfully, and another vendor's signature (a Gemini ``thoughtSignature``,
  OpenAI encrypted reasoning after a gateway fallback) would fail the whole request.
- A history begun on another provider is sent in Converse's form: tool-call ids it refuses
  (Kimi's ``functions.get_weather:0``, ids over 64 characters) are mapped alike for a call and
  its result, and Claude's prefill ending in whitespace is trimmed (:mod:`.request_rules`).
- Attachments are inline bytes or ``s3://`` URIs; a :class:`~cloverleaf.Document` is a Converse
  ``document`` block with its context and citations switch for Claude, its plain parts for
  another model (:func:`_document`). Document names are fitted to what Converse allows and
  kept unique within the request (:func:`_document_name`).

A leaf of the package's request side: the adapter imports it; it needs of its adapter only what
:class:`_Host` names.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Protocol

from ..._documents import plain_parts
from ..._types import Attachment, ChatRequest, Document, Part, Reasoning, Role, Text, ToolCall, ToolResult
from .._common import WEB_IMAGES, checked_image, empty_text_turn, replayable_reasoning
from .cache_points import cache_point, with_cache_point
from .request_rules import REFUSES_BLANK, converse_tool_ids, trim_prefill

if TYPE_CHECKING:
    from ..._errors import InvalidRequestError, UnsupportedCapability


class _Host(Protocol):
    """What the encoder needs of its adapter (a protocol keeps the import one way)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError: ...

    def unsupported(self, operation: str) -> UnsupportedCapability: ...


#: The user turn put before a conversation that opens with the assistant, which Converse refuses.
OPENING_USER_TEXT = "."
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")
_DOC_NAME_MAX = 200


def converse_messages(host: _Host, req: ChatRequest, *,
                      claude: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` for ``req``: the Converse ``system`` blocks and ``messages`` turns."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    for position, msg in enumerate(req.messages):
        refused = empty_text_turn(host, position, msg, refusal=REFUSES_BLANK) if msg.role is Role.USER else None
        if refused:
            raise refused
        if msg.role is Role.SYSTEM:
            for part in msg.parts:
                if not isinstance(part, Text):
                    continue
                if part.text.strip():   # a part of only whitespace says nothing, and is refused
                    system.append({"text": part.text})
                if part.cache_control and system and "cachePoint" not in system[-1]:
                    system.append(cache_point(part.cache_control))
            continue
        role = "assistant" if msg.role is Role.ASSISTANT else "user"
        blocks = [block for part in msg.parts for block in _blocks(host, part, names, req.model, claude=claude)]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:  # Converse needs alternating roles
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if messages and messages[0]["role"] == "assistant":
        # "A conversation must start with a user message": a chat opened by the assistant's
        # greeting, which OpenAI, Anthropic and Gemini take, gets a neutral user turn before it
        messages.insert(0, {"role": "user", "content": [{"text": OPENING_USER_TEXT}]})
    if claude:   # a prefill ending with whitespace is refused (.request_rules)
        trim_prefill(messages)
    converse_tool_ids(messages)
    return system, messages


def _blocks(host: _Host, part: Part, names: dict[str, int], model: str, *, claude: bool) -> list[dict[str, Any]]:
    if isinstance(part, Text):
        if not part.text.strip():  # Converse rejects blank text blocks
            return []
        return with_cache_point({"text": part.text}, part.cache_control)
    if isinstance(part, Attachment):
        return with_cache_point(_attachment(host, part, names, model), part.cache_control)
    if isinstance(part, Document):
        return _document(host, part, names, model, claude=claude)
    if isinstance(part, ToolCall):
        return with_cache_point({"toolUse": {"toolUseId": part.id, "name": part.name, "input": part.arguments}},
                                part.cache_control)
    if isinstance(part, ToolResult):
        if isinstance(part.content, str):
            content = [{"text": _tool_text(part.content)}]
        else:
            content = [{"text": _tool_text(p.text)} if isinstance(p, Text) else _attachment(host, p, names, model)
                       for p in part.content] or [{"text": _tool_text("")}]
        status = "error" if part.is_error else "success"
        return with_cache_point({"toolResult": {"toolUseId": part.tool_call_id, "content": content,
                                                "status": status}}, part.cache_control)
    if isinstance(part, Reasoning):
        if not replayable_reasoning(host, part.provider, claude=claude):
            return []  # another vendor's signature or encrypted reasoning: Converse would reject it
        if part.redacted:
            return [{"reasoningContent": {"redactedContent": part.redacted}}]
        if part.signature:
            return [{"reasoningContent": {"reasoningText": {"text": part.text, "signature": part.signature}}}]
        return []  # unsigned reasoning cannot be verified by the model; dropped
    raise host.invalid(f"cannot send a {type(part).__name__} part to Bedrock", model)


def _attachment(host: _Host, att: Attachment, names: dict[str, int], model: str) -> dict[str, Any]:
    if att.kind == "audio":
        raise host.unsupported("audio input")
    if att.data is not None:
        source: dict[str, Any] = {"bytes": att.base64()}
    elif att.url and att.url.startswith("s3://"):
        source = {"s3Location": {"uri": att.url}}
    else:
        raise host.unsupported(f"{att.kind} input by URL (Bedrock takes inline bytes or s3:// URIs)")
    if att.kind == "image":
        fmt = checked_image(att.media_type, WEB_IMAGES, provider=host.name, model=model)
        if fmt is None:
            raise host.invalid("an inline image needs a media_type (image/png, image/jpeg, image/gif, image/webp)",
                               model)
        return {"image": {"format": fmt, "source": source}}
    if att.kind == "pdf":
        return {"document": {"format": "pdf", "name": _document_name(att.filename, names), "source": source}}
    raise host.invalid(f"unknown attachment kind {att.kind!r}", model)


def _document(host: _Host, doc: Document, names: dict[str, int], model: str, *,
              claude: bool) -> list[dict[str, Any]]:
    """A Converse ``document`` block with the document's context and citations switch: its
    text (``source.text``, format txt), its PDF (as :func:`_attachment` sends one) or its text
    parts (``source.content``). The title becomes the block's name, in the characters Converse
    allows. Context, citations and text sources are Claude's: another model gets the document's
    plain parts (a PDF still as a document block), as does a list holding images (which a
    document's content cannot)."""
    content = doc.content
    if not claude or isinstance(content, list) and any(isinstance(p, Attachment) for p in content):
        return [b for p in plain_parts(doc) for b in _blocks(host, p, names, model, claude=claude)]
    if isinstance(content, Attachment):
        if content.kind != "pdf":
            raise host.invalid(f"a document's attachment must be a PDF, not {content.kind!r}", model)
        block = _attachment(host, dataclasses.replace(content, filename=doc.title or content.filename), names,
                            model)["document"]
    elif isinstance(content, str):
        block = {"format": "txt", "name": _document_name(doc.title, names), "source": {"text": content}}
    else:
        texts = [{"text": p.text} for p in content if isinstance(p, Text) and p.text]
        block = {"format": "txt", "name": _document_name(doc.title, names), "source": {"content": texts}}
    if doc.context:
        block["context"] = doc.context
    if doc.citations:
        block["citations"] = {"enabled": True}
    return with_cache_point({"document": block}, doc.cache_control)


def _tool_text(text: str) -> str:
    """A tool result's text: Converse refuses a blank text block, and the refused turn would stay
    in the conversation and fail every later call, so an empty result says so in words."""
    return text if text.strip() else "(no output)"


def _document_name(filename: str | None, names: dict[str, int]) -> str:
    """Bedrock document names allow letters, digits, single spaces, hyphens, parentheses and
    brackets, up to 200 characters, and must be unique within a request (a repeat is a 400).

    ``names`` holds every name given out in the request (and, per stem, the last number tried):
    a repeated stem is numbered, skipping numbers already taken, so ``report.pdf``,
    ``report.pdf``, ``report 2.pdf`` become ``report``, ``report 2``, ``report 2 2``."""
    stem = (filename or "").rsplit(".", 1)[0]
    base = " ".join(_DOC_NAME_BAD.sub(" ", stem).split()) or "Document"
    count = names.get(base, 0)
    while True:
        count += 1
        suffix = f" {count}" if base == "Document" or count > 1 else ""
        name = base[:_DOC_NAME_MAX - len(suffix)].rstrip() + suffix
        if name not in names:
            break
    names[base] = count
    names.setdefault(name, 0)
    return name


__all__ = ["OPENING_USER_TEXT", "converse_messages"]
