"""Cached answers as JSON, not pickle: an entry read back from a shared Redis or a SQLite
file can only ever become one of the response dataclasses listed here, never code.

An entry is the final :class:`ChatResponse` and, when it came from a stream, the stream's
events in their original order (so a replay has the upstream's real chunk boundaries).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..._types import (
    Attachment,
    ChatResponse,
    Citation,
    Document,
    Reasoning,
    ResponseMetadata,
    StreamEvent,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)

_CLASSES: dict[str, type] = {c.__name__: c for c in (
    Attachment, ChatResponse, Citation, Document, Reasoning, ResponseMetadata, StreamEvent, Text, ToolCall, ToolResult,
    Usage)}
_SKIP = {("ChatResponse", "parsed"), ("ResponseMetadata", "attempts")}


@dataclass(slots=True)
class CachedAnswer:
    response: ChatResponse
    events: list[StreamEvent] | None = None
    created_at: float = 0.0
    #: Semantic hits: how close the stored prompt was (1.0 for an exact hit).
    similarity: float = 1.0


def dumps(answer: CachedAnswer) -> bytes:
    doc = {"response": _enc(answer.response), "created_at": answer.created_at,
           "events": None if answer.events is None else [_enc(e) for e in answer.events]}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def loads(blob: bytes | str) -> CachedAnswer:
    doc = json.loads(blob)
    events = doc.get("events")
    return CachedAnswer(response=_dec(doc["response"]), created_at=float(doc.get("created_at") or 0.0),
                        events=None if events is None else [_dec(e) for e in events])


def _enc(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in _CLASSES:
            raise TypeError(f"cannot cache a {name}")
        out: dict[str, Any] = {"__t": name}
        for f in dataclasses.fields(value):
            if (name, f.name) not in _SKIP:
                out[f.name] = _enc(getattr(value, f.name))
        return out
    if isinstance(value, bytes):
        return {"__b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_enc(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _enc(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)   # enums and the like: their value is what the wire carried


def _dec(value: Any) -> Any:
    if isinstance(value, list):
        return [_dec(v) for v in value]
    if isinstance(value, dict):
        if "__b" in value and len(value) == 1:
            return base64.b64decode(value["__b"])
        name = value.get("__t")
        if name is None:
            return {k: _dec(v) for k, v in value.items()}
        cls = _CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown cached type {name!r}")
        kwargs = {f.name: _dec(value[f.name]) for f in dataclasses.fields(cls) if f.name in value and f.init}
        obj = cls(**kwargs)
        return obj
    return value
