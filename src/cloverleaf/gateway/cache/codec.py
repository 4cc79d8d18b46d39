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
from collections.abc import Callable
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
#: The classes an entry can hold, whose fields are checked against their declared types.
CHECKED_TYPES: frozenset[type] = frozenset(_CLASSES.values())


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
    if created is not None and not fits(created, _check(float)):
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
        checks = field_checks(cls)
        kwargs = {field: _dec(value[field]) for field in checks if field in value}
        for field, given in kwargs.items():
            check = checks[field]
            if not (isinstance(given, check) if check.__class__ is tuple else check(given)):  # type: ignore[operator]
                raise MalformedEntry(f"a cached {name}'s {field} is not of its declared type")
        try:
            return cls(**kwargs)
        except TypeError as exc:   # a required field missing
            raise MalformedEntry(f"a cached {name} lacks a field") from exc
    return value


#: How a field's value is checked: the classes it may be (one ``isinstance``, the common case),
#: or a function for what one ``isinstance`` cannot decide (a list's items, a dict's values).
Check = tuple[type, ...] | Callable[[Any], bool]
_CHECKS: dict[type, dict[str, Check]] = {}
_NONE = type(None)


def field_checks(cls: type) -> dict[str, Check]:
    """A check per field the codec writes, from its declared type (made once per class; the
    fields left out keep their defaults, which fit)."""
    checks = _CHECKS.get(cls)
    if checks is None:
        declared = typing.get_type_hints(cls)
        checks = _CHECKS[cls] = {f.name: _check(declared[f.name]) for f in dataclasses.fields(cls)
                                 if f.init and (cls.__name__, f.name) not in _SKIP}
    return checks


def fits(value: Any, check: Check) -> bool:
    """Whether ``value`` passes ``check`` (one of :func:`field_checks`)."""
    return isinstance(value, check) if isinstance(check, tuple) else check(value)


def _anything(value: Any) -> bool:
    return True


def _check(hint: Any) -> Check:
    """How to check a value of the declared type ``hint``, for the forms our dataclasses use. A
    dataclass-typed value is checked by its class alone: its own fields were checked as it was
    decoded. A float field takes an int (JSON does not tell them apart), a Literal any value of
    its type (a newer build may add values)."""
    if hint is Any:
        return _anything
    if hint is None or hint is _NONE:
        return (_NONE,)
    if hint is float:
        return (float, int)
    if isinstance(hint, type):
        return (hint,)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return tuple({type(a) for a in args})
    if origin is Union or origin is types.UnionType:
        alternatives = [_check(a) for a in args]
        if all(isinstance(a, tuple) for a in alternatives):
            return tuple(k for a in alternatives for k in a)   # type: ignore[union-attr]
        if _anything in alternatives:
            return _anything
        return lambda value: any(fits(value, a) for a in alternatives)
    if origin is list:
        item = _check(args[0]) if args else _anything
        if item is _anything:
            return (list,)
        return lambda value: isinstance(value, list) and all(fits(v, item) for v in value)
    if origin is dict:
        entry = _check(args[1]) if len(args) == 2 else _anything
        if entry is _anything:
            return (dict,)
        return lambda value: isinstance(value, dict) and all(fits(v, entry) for v in value.values())
    return _anything   # a form the response types do not use: not checked
