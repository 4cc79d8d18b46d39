"""A call's messages as the GenAI semantic conventions write them into a span
(``gen_ai.input.messages`` and ``gen_ai.output.messages``, with ``capture_content = true``).

Each message is ``{"role": ..., "parts": [...]}`` and each part keeps what it is, per the
conventions' message schema: text is a ``text`` part, a tool call the model made a
``tool_call`` part (id, name, arguments), a tool's result a ``tool_call_response`` part (the
call's id and the result), reasoning a ``reasoning`` part. An agent's trace is mostly tool
calls and results: joined into one text per message they came out as empty text parts, and
the trace showed a conversation with the tool traffic missing.

An image, PDF or audio clip is a ``blob`` part that names its ``modality`` (the attachment's
kind: ``image``, ``audio``, ``pdf``) and ``mime_type`` but never carries its bytes (megabytes
in every span, and a collector is no place for the user's files) nor its URL (a signed URL is
a credential).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .._errors import AttachmentError
from .._types import Attachment, Document, Reasoning, Text, ToolCall, ToolResult
from ..attachments.sniff import from_name, kind_of, normalize, sniff
from ..attachments.sources import classify


def input_messages(request: Any) -> str | None:
    """``gen_ai.input.messages`` for a request: its messages, or an embedding request's inputs."""
    messages = getattr(request, "messages", None)
    if messages is None:
        inputs = getattr(request, "inputs", None)
        return json.dumps(inputs, ensure_ascii=False) if inputs is not None else None
    out = [{"role": m.role.value, "parts": [p for part in m.parts for p in _parts(part)]} for m in messages]
    return json.dumps(out, ensure_ascii=False, default=str)


def output_messages(response: Any) -> str | None:
    """``gen_ai.output.messages`` for an answer: its text, then the tool calls it asked for."""
    content = getattr(response, "content", None)
    if content is None:
        return None
    parts: list[dict[str, Any]] = [{"type": "text", "content": content}] if content else []
    for call in getattr(response, "tool_calls", None) or ():
        parts.append(_tool_call(call))
    return json.dumps([{"role": "assistant", "parts": parts,
                        "finish_reason": getattr(response, "finish_reason", None)}], ensure_ascii=False, default=str)


def _parts(part: Any) -> list[dict[str, Any]]:
    """One message part as the conventions' parts (a document may hold several)."""
    if isinstance(part, Text):
        return [{"type": "text", "content": part.text}]
    if isinstance(part, ToolCall):
        return [_tool_call(part)]
    if isinstance(part, ToolResult):
        response: Any = part.content
        if not isinstance(response, str):   # text and attachments: each as its own part
            response = [p for item in response for p in _parts(item)]
        return [{"type": "tool_call_response", "id": part.tool_call_id, "response": response}]
    if isinstance(part, Attachment):
        return [_blob(part)]
    if isinstance(part, Reasoning):
        return [{"type": "reasoning", "content": part.text}]
    if isinstance(part, Document):
        content = part.content
        if isinstance(content, str):
            return [{"type": "text", "content": content}]
        if isinstance(content, Attachment):
            return [_blob(content)]
        return [p for item in content for p in _parts(item)]
    return [{"type": type(part).__name__.lower()}]   # a part type this module does not know yet


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}


def _blob(attachment: Attachment) -> dict[str, Any]:
    """An attachment named by its kind and type, never its bytes or URL (see the module docstring)."""
    mime = _media_type(attachment)
    modality = attachment.type or kind_of(mime) or (mime.partition("/")[0] if mime else "unknown")
    part: dict[str, Any] = {"type": "blob", "modality": modality}
    if mime:
        part["mime_type"] = mime
    return part


def _media_type(attachment: Attachment) -> str | None:
    """The attachment's media type as declared, else as its first bytes or its name show: the
    request a span is built from holds the attachments as the caller gave them (a path, bytes,
    a data URL), before the gateway loaded them."""
    if attachment.media_type:
        return normalize(attachment.media_type)
    data = attachment.data if attachment.data is not None else attachment.source
    if isinstance(data, bytes):
        return sniff(data[:1024])
    raw = attachment.url or attachment.source
    if raw is None:
        return None
    try:
        source = classify(raw)
    except AttachmentError:   # refused when it is loaded
        return None
    text = str(source.value)
    if source.kind == "data-url":
        head, _, text = text[5:].partition(",")
        declared = head.split(";", 1)[0].strip()
        if declared:
            return normalize(declared)
    elif source.kind != "base64":
        return from_name(text)
    try:
        return sniff(base64.b64decode(text[:64].strip()[:60], validate=False))
    except (binascii.Error, ValueError):
        return None
