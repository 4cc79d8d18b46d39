"""Cached answers as JSON, not pickle: an entry read back from a shared Redis or a SQLite
file can only ever become one of the response dataclasses listed here, never code.

An entry is the final :class:`ChatResponse` and, when it came from a stream, the stream's
events in their original order (so a replay has the upstream's real chunk boundaries).

:func:`loads` gives back only an entry shaped as the dataclasses declare it (a ``str`` field
holds a string, ``usage`` a :class:`Usage`, ``parts`` a list of parts...): an entry that decodes
but is not (a damaged row, a foreign writer) raises :class:`MalformedEntry`, which the cache
treats as a miss, rather than failing later, while the answer is served. What the check allows
is loose where a newer build may differ: fields it does not know are ignored, and a
``Literal`` field takes any value of its type.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

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


class MalformedEntry(ValueError):
    """A cache entry that decodes but is not a well-formed answer."""


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
    """The entry ``blob`` holds; :class:`MalformedEntry` when it is not one (see the module)."""
    doc = json.loads(blob)
    if not isinstance(doc, dict):
        raise MalformedEntry("the entry is not an object")
    response, events, created = _dec(doc.get("response")), doc.get("events"), doc.get("created_at")
    if not isinstance(response, ChatResponse):
        raise MalformedEntry("the entry has no response")
    if events is not None and not isinstance(events, list):
        raise MalformedEntry("the entry's events are not a list")
    events = None if events is None else [_dec(e) for e in events]
    if events is not None and not all(isinstance(e, StreamEvent) for e in events):
        raise MalformedEntry("the entry's events are not stream events")
    if created is not None and not _fits(created, float):
        raise MalformedEntry("the entry's created_at is not a number")
    return CachedAnswer(response=response, created_at=float(created or 0.0), events=events)


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
        kwargs = {name: _dec(value[name]) for name in _hints(cls) if name in value}
        try:
            obj = cls(**kwargs)
        except TypeError as exc:   # a required field missing
            raise MalformedEntry(f"a cached {name} lacks a field") from exc
        for field, hint in _hints(cls).items():
            if not _fits(getattr(obj, field), hint):
                raise MalformedEntry(f"a cached {name}'s {field} is not {hint}")
        return obj
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The declared type of each field the codec writes (resolved once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        declared = typing.get_type_hints(cls)
        hints = _HINTS[cls] = {f.name: declared[f.name] for f in dataclasses.fields(cls)
                               if f.init and (cls.__name__, f.name) not in _SKIP}
    return hints


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the declared type ``hint`` (the forms our dataclasses use)."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        return any(_fits(value, a) for a in args)
    if origin is Literal:
        return any(isinstance(value, type(a)) for a in args)
    if origin is list:
        return isinstance(value, list) and (not args or all(_fits(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (len(args) < 2 or all(_fits(v, args[1]) for v in value.values()))
    return True   # a form the response types do not use: not checked
