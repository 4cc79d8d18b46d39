"""Check a parsed structured answer against the JSON Schema dict it was asked for.

A pydantic model validates its own answers; a plain JSON Schema dict had nothing, so an
answer of ``null``, an object missing a required field, or a list where an object was asked
for became ``.parsed`` as it was — and failed later, far from its cause (a workflow's next
step, or a resume that kept the bad answer as done).

Why not the ``jsonschema`` package: it would be a new runtime dependency of the SDK's base
install for one check, and it refuses what it cannot compile (an unknown ``format``, a
draft mix-up) where this check must never refuse a good answer. What structured outputs use
is a small subset (the one providers accept in strict mode), checked here:

``type`` (one or a list; ``nullable: true`` as OpenAPI writes it), ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties`` (false or a schema),
``patternProperties`` keys are left open, ``items`` and ``prefixItems``, ``minItems``/
``maxItems``, ``minLength``/``maxLength``, ``minimum``/``maximum`` and their exclusive
forms, ``anyOf``, ``oneOf`` (as ``anyOf``: two branches this subset cannot tell apart must
not refuse an answer that matches one), ``allOf``, and local ``$ref`` (``#/$defs/...``).

Any other keyword (``format``, ``pattern`` — whose dialect is ECMA-262, not Python's —
``multipleOf``, ``if``/``then``, a remote ``$ref``...) is accepted unchecked: a wrong refusal
costs a paid answer, a missed check only what the caller had before. Problems name where
(``items.0.name``) and what, never the answer's values: the message reaches logs and spans.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Generator, Iterator
from typing import Any, TypeGuard

from ._json_schema import local_target

#: JSON Schema's type names, each with the Python values a parsed JSON document gives for it.
_TYPE_CHECKS = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    # 1.0 is an integer in JSON Schema (it is a mathematical value, not a notation)
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and math.isfinite(v) and v.is_integer()),
}


def schema_problems(value: Any, schema: Any, root: Any = None, *, shown: int = 5) -> list[str]:
    """Why ``value`` does not match ``schema`` (empty when it does), at most ``shown`` problems
    and a last line counting the rest. ``root`` is where local ``$ref`` pointers start (the
    schema itself when not given)."""
    try:
        found = list(_Checker(schema if root is None else root).problems(value, schema, ""))
    except RecursionError:                           # an answer nested past Python's stack: unchecked
        return []
    if len(found) > shown:
        return [*found[:shown], f"(and {len(found) - shown} more)"]
    return found


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPE_CHECKS[name](value):
            return name
    return type(value).__name__


def _at(path: str) -> str:
    return path or "(the whole value)"


def _child(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


class _Checker:
    def __init__(self, root: Any) -> None:
        self.root = root
        #: (pointer, id of the value) pairs being checked: a $ref cycle that consumes nothing
        #: (``{"$ref": "#"}`` naming itself) stops there, accepted
        self._following: set[tuple[str, int]] = set()

    def problems(self, value: Any, schema: Any, path: str) -> Generator[str, None, None]:
        if schema is False:
            yield f"{_at(path)}: the schema allows no value here"
            return
        if not isinstance(schema, dict):         # true, or a malformed schema: nothing to check
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield from self._referenced(value, ref, path)
        if not self._type_ok(value, schema):
            yield f"{_at(path)}: expected {self._expected(schema)}, got {_type_name(value)}"
            return                                  # the other keywords would only repeat it
        if "const" in schema and not _same(value, schema["const"]):
            yield f"{_at(path)}: is not the schema's const value"
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_same(value, option) for option in enum):
            yield f"{_at(path)}: is not one of the schema's enum values"
        yield from self._combined(value, schema, path)
        if isinstance(value, dict):
            yield from self._object(value, schema, path)
        elif isinstance(value, list):
            yield from self._array(value, schema, path)
        elif isinstance(value, str):
            yield from _string(value, schema, path)
        elif _TYPE_CHECKS["number"](value):
            yield from _number(value, schema, path)

    def _referenced(self, value: Any, ref: str, path: str) -> Iterator[str]:
        target = local_target(self.root, ref)
        key = (ref, id(value))
        if target is None or key in self._following:   # remote, missing, or a cycle: unchecked
            return
        self._following.add(key)
        try:
            yield from self.problems(value, target, path)
        finally:
            self._following.discard(key)

    @staticmethod
    def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else None
        if kinds is None:
            return True
        known = [k for k in kinds if isinstance(k, str) and k in _TYPE_CHECKS]
        if len(known) < len(kinds):              # a type name this check does not know: unchecked
            return True
        if value is None and schema.get("nullable") is True:
            return True
        return any(_TYPE_CHECKS[k](value) for k in known)

    @staticmethod
    def _expected(schema: dict[str, Any]) -> str:
        kind = schema["type"]
        kinds = list(kind) if isinstance(kind, list) else [kind]
        if schema.get("nullable") is True and "null" not in kinds:
            kinds.append("null")
        return " or ".join(kinds)

    def _combined(self, value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
        for keyword in ("anyOf", "oneOf"):
            options = schema.get(keyword)
            if isinstance(options, list) and options:
                if not any(self._matches(value, option, path) for option in options):
                    yield f"{_at(path)}: matches none of the {keyword} choices"
        options = schema.get("allOf")
        if isinstance(options, list):
            for option in options:
                yield from self.problems(value, option, path)

    def _matches(self, value: Any, schema: Any, path: str) -> bool:
        """Whether ``value`` passes ``schema`` (stopping at the first problem; the generator is
        closed at once, so a ``$ref`` it was following is released)."""
        found = self.problems(value, schema, path)
        try:
            return next(found, None) is None
        finally:
            found.close()

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        if isinstance(required, list):
            for name in required:
                if isinstance(name, str) and name not in value:
                    yield f"{_child(path, name)}: is required but missing"
        extra = schema.get("additionalProperties")
        open_by_pattern = isinstance(schema.get("patternProperties"), dict)
        for name, item in value.items():
            if name in props:
                yield from self.problems(item, props[name], _child(path, name))
            elif open_by_pattern:
                continue                               # patternProperties: not checked, so never refused
            elif extra is False:
                yield f"{_child(path, name)}: is not a property the schema allows (additionalProperties is false)"
            elif isinstance(extra, dict):
                yield from self.problems(item, extra, _child(path, name))

    def _array(self, value: list[Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if _is_count(low) and len(value) < low:
            yield f"{_at(path)}: has {len(value)} items, fewer than minItems {low}"
        if _is_count(high) and len(value) > high:
            yield f"{_at(path)}: has {len(value)} items, more than maxItems {high}"
        prefix, items = schema.get("prefixItems"), schema.get("items")
        if isinstance(items, list):                  # the older tuple form: items as a list of schemas
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else items
            if sub is not None:
                yield from self.problems(item, sub, _child(path, index))


def _string(value: str, schema: dict[str, Any], path: str) -> Iterator[str]:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if _is_count(low) and len(value) < low:
        yield f"{_at(path)}: is {len(value)} characters, shorter than minLength {low}"
    if _is_count(high) and len(value) > high:
        yield f"{_at(path)}: is {len(value)} characters, longer than maxLength {high}"


#: A number's bound keywords: the comparison that must hold, and the word for when it does not.
_BOUNDS = (("minimum", operator.ge, "less than"), ("maximum", operator.le, "more than"),
           ("exclusiveMinimum", operator.gt, "at most"), ("exclusiveMaximum", operator.lt, "at least"))


def _number(value: float, schema: dict[str, Any], path: str) -> Iterator[str]:
    for keyword, holds, word in _BOUNDS:
        bound = schema.get(keyword)
        if isinstance(bound, int | float) and not isinstance(bound, bool) and not holds(value, bound):
            yield f"{_at(path)}: is {word} {keyword} {bound}"


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1 (Python's ``==`` says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) in (int, float, str, type(None)) and type(b) in (int, float, str, type(None))
