"""Deterministic content for the fake provider: sentences, schema-valid JSON, PNGs, vectors.

Everything here is a pure function of its input (a seed derived from the request), so the
same call always gets the same answer, across processes and Python versions (no ``hash()``,
which is salted per process). Schema instances satisfy the common JSON Schema keywords
(type, enum, const, anyOf/oneOf/allOf, $ref with $defs/definitions, required, properties,
items, min/max of numbers, strings and arrays, a few formats) so structured-output and
tool-call code can be exercised end to end offline; ``pattern`` is not honoured.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import uuid
import zlib
from typing import Any

_WORDS = (
    "amber", "harbor", "lantern", "meadow", "quartz", "river", "summit", "velvet", "willow", "cobalt",
    "ember", "falcon", "garnet", "hollow", "island", "juniper", "kestrel", "lumen", "maple", "nimbus",
    "orchid", "pebble", "quiver", "saffron", "tundra", "umber", "violet", "zephyr", "cedar", "delta",
)
_SUBJECTS = ("The fake model", "This deterministic reply", "A quiet test double", "The offline assistant")
_VERBS = ("notes", "reports", "suggests", "observes", "confirms")


def digest(*parts: Any) -> bytes:
    """A stable 32-byte digest of the parts (their ``repr``-free string forms)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.digest()


def seed_of(*parts: Any) -> int:
    return int.from_bytes(digest(*parts)[:8], "big")


def count_tokens(text: str) -> int:
    """About one token per four characters, at least one: deterministic, never zero."""
    return max(1, math.ceil(len(text) / 4))


def sentence(seed_text: str) -> str:
    """A deterministic, readable sentence derived from the input."""
    d = digest(seed_text)
    words = [_WORDS[b % len(_WORDS)] for b in d[2:6]]
    return (f"{_SUBJECTS[d[0] % len(_SUBJECTS)]} {_VERBS[d[1] % len(_VERBS)]} "
            f"{words[0]} {words[1]} and {words[2]} {words[3]} (ref {d.hex()[:8]}).")


# --------------------------------------------------------------------------- JSON Schema


class SchemaError(ValueError):
    pass


def schema_instance(schema: dict[str, Any] | bool, seed: int = 0) -> Any:
    """A value that validates against ``schema`` (deterministic for a given seed)."""
    root = schema if isinstance(schema, dict) else {}
    try:
        return _Generator(root, random.Random(seed)).value(schema, "value", 0)
    except (AttributeError, KeyError, IndexError, TypeError, ArithmeticError) as exc:
        # a keyword of the wrong shape ("properties": [...], "minimum": 1e999): not a JSON Schema
        raise SchemaError(f"invalid JSON Schema ({type(exc).__name__}: {exc})") from None


class _Generator:
    #: past this depth only what the schema requires is generated
    MAX_DEPTH = 8
    #: past this depth the schema is refused: it can only be recursion that never ends
    #: (``{"$ref": "#"}`` with itself required), which a real API refuses as well
    HARD_DEPTH = 200
    #: the most items, properties or characters one value may be made to have: a schema
    #: demanding more (``minItems: 1e12``) is refused, not generated
    MAX_SIZE = 10_000

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for token in [t for t in ref[1:].split("/") if t]:
            token = token.replace("~1", "/").replace("~0", "~")
            try:
                node = node[token]
            except (KeyError, TypeError):
                raise SchemaError(f"$ref {ref!r} does not resolve") from None
        return node if isinstance(node, dict) else {}

    def value(self, schema: dict[str, Any] | bool, key: str, depth: int) -> Any:
        if depth > self.HARD_DEPTH:
            raise SchemaError(f"schema recursion deeper than {self.HARD_DEPTH} levels (a $ref cycle that is "
                              "always required?)")
        if schema is True or schema == {} or not isinstance(schema, dict):
            return self.string({}, key)
        if "$ref" in schema:
            merged = {**self.resolve(schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.value(merged, key, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][self.rng.randrange(len(schema["enum"]))]
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                merged = merge(merged, self.resolve(sub["$ref"]) if "$ref" in sub else sub)
            return self.value(merged, key, depth + 1)
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                options = schema[combinator]
                if depth >= self.MAX_DEPTH:  # prefer a branch that ends the recursion
                    options = sorted(options, key=lambda o: 0 if o.get("type") == "null" else 1)
                base = {k: v for k, v in schema.items() if k != combinator}
                # oneOf: the first branch keeps overlapping branches from matching twice in practice
                return self.value(merge(base, options[0]), key, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = "null" if depth >= self.MAX_DEPTH and "null" in kind else next((t for t in kind if t != "null"),
                                                                                   "null")
        if kind is None:
            kind = ("object" if "properties" in schema else "array" if "items" in schema else
                    "number" if "minimum" in schema or "maximum" in schema else "string")
        make = getattr(self, kind, None)
        if make is None:
            raise SchemaError(f"unknown JSON Schema type {kind!r}")
        return make(schema, key) if kind in ("string", "number", "integer", "boolean", "null") \
            else make(schema, key, depth)

    def object(self, schema: dict[str, Any], key: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = required if depth >= self.MAX_DEPTH else list(props) + [r for r in required if r not in props]
        out = {name: self.value(props.get(name, {}), name, depth + 1) for name in names}
        extra = schema.get("additionalProperties")
        while len(out) < _size(schema, "minProperties", 0, self.MAX_SIZE):
            out[f"{key}_{len(out)}"] = self.value(extra if isinstance(extra, dict) else {}, key, depth + 1)
        return out

    def array(self, schema: dict[str, Any], key: str, depth: int) -> list[Any]:
        low = _size(schema, "minItems", 0, self.MAX_SIZE)
        high = _size(schema, "maxItems", max(low, 2), None)
        count = low if depth >= self.MAX_DEPTH else min(high, max(low, 2))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        out = [self.value(prefix[i] if i < len(prefix) else items, key, depth + 1) for i in range(count)]
        if schema.get("uniqueItems"):
            unique: list[Any] = []
            for item in out:
                if item not in unique:
                    unique.append(item)
            out = unique
        return out

    def string(self, schema: dict[str, Any], key: str) -> str:
        fmt = schema.get("format")
        n = self.rng.randrange(1 << 30)
        if fmt == "date-time":
            return f"2024-0{1 + n % 9}-1{n % 9}T12:{10 + n % 50}:00Z"
        if fmt == "date":
            return f"2024-0{1 + n % 9}-1{n % 9}"
        if fmt == "time":
            return f"12:{10 + n % 50}:00"
        if fmt == "email":
            return f"{_WORDS[n % len(_WORDS)]}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{_WORDS[n % len(_WORDS)]}"
        if fmt == "uuid":
            return str(uuid.UUID(int=n << 80 | n))
        if fmt in ("ipv4",):
            return f"192.0.2.{n % 255}"
        text = f"{key} {_WORDS[n % len(_WORDS)]}"
        low, high = _size(schema, "minLength", 0, self.MAX_SIZE), schema.get("maxLength")
        while len(text) < low:
            text += " " + _WORDS[(n := n // 7 + 1) % len(_WORDS)]
        if high is not None:
            text = text[: int(high)]
        return text

    def number(self, schema: dict[str, Any], key: str) -> float | int:
        low, high = _bounds(schema, integer=False)
        value = low + (high - low) * (self.rng.randrange(1000) / 1000)
        step = schema.get("multipleOf")
        if step:
            value = math.ceil(low / step) * step
            return int(value) if float(value).is_integer() else value
        return min(max(round(value, 3), low), high)

    def integer(self, schema: dict[str, Any], key: str) -> int:
        low, high = _bounds(schema, integer=True)
        value = self.rng.randint(int(math.ceil(low)), int(math.floor(high)))
        step = schema.get("multipleOf")
        if step:
            value = int(math.ceil(low / step) * step)
        return value

    def boolean(self, schema: dict[str, Any], key: str) -> bool:
        return bool(self.rng.randrange(2))

    def null(self, schema: dict[str, Any], key: str) -> None:
        return None


def _size(schema: dict[str, Any], name: str, default: int, cap: int | None) -> int:
    """A count keyword (``minItems``...): a non-negative integer, at most ``cap``."""
    value = schema.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise SchemaError(f"{name} must be a non-negative integer")
    if cap is not None and value > cap:
        raise SchemaError(f"{name} {value} is more than the fake provider generates ({cap})")
    return int(min(value, 2**31))


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[float, float]:
    low: float | None = schema.get("minimum")
    high: float | None = schema.get("maximum")
    epsilon = 1 if integer else 1e-6
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        low = schema["exclusiveMinimum"] + epsilon
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        high = schema["exclusiveMaximum"] - epsilon
    if low is None:
        low = 0.0 if high is None else high - 100
    if high is None:
        high = low + 100
    return float(low), float(high)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Shallow schema merge for allOf/anyOf branches: properties and required are combined."""
    out = {**base, **extra}
    if "properties" in base or "properties" in extra:
        out["properties"] = {**(base.get("properties") or {}), **(extra.get("properties") or {})}
    if "required" in base or "required" in extra:
        out["required"] = list(dict.fromkeys([*(base.get("required") or []), *(extra.get("required") or [])]))
    return out


# --------------------------------------------------------------------------- images and vectors


def png(seed_text: str, width: int = 16, height: int = 16) -> bytes:
    """A small valid RGB PNG: a two-colour diagonal pattern chosen by the text's digest."""
    d = digest(seed_text)
    a, b = d[0:3], d[3:6]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += a if (x + y) % 4 < 2 else b
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        _chunk(b"IDAT", zlib.compress(bytes(rows), 9)),
        _chunk(b"IEND", b""),
    ])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def image_size(size: str | None, limit: int = 64) -> tuple[int, int]:
    """``"1024x1024"`` scaled into a small PNG (at most ``limit`` pixels a side)."""
    try:
        w, h = (int(v) for v in (size or "").lower().split("x"))
    except ValueError:
        return 16, 16
    scale = max(w, h) / limit if max(w, h) > limit else 1
    return max(1, round(w / scale)), max(1, round(h / scale))


def vector(text: str, dims: int) -> list[float]:
    """A unit vector from the text (word/character hashing: similar texts are close)."""
    from ..local.embeddings import hashed_vector

    return hashed_vector(text, dims)
