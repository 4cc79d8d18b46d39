"""JSON Schemas for Anthropic's constrained decoding (native structured output, strict tools).

Constrained decoding takes a subset of JSON Schema: every object closed
(``additionalProperties: false``, nothing else), no recursive definitions, no numeric or
length constraints. Two kinds of schema cannot be made to fit without changing what they
mean, so :func:`fits_native` sends them the other way (a forced tool, or a tool without
``strict``, which take any JSON Schema as given):

- a *map*: an object whose keys are data (``dict[str, int]`` is
  ``{"type": "object", "additionalProperties": {"type": "integer"}}``), or any object that
  declares no properties. Closing it leaves ``{}`` as the only valid value: the model could
  never fill it, and the data would be lost without an error;
- a recursive schema (a tree: ``children: list["Node"]``), which the API refuses.

Everything else is sent through :func:`native_output_schema`. Schemas may come from a
server's client, so every walk here passes a keyword of the wrong shape (``"properties":
[...]``) through unchanged for the API to refuse with its own 400.
"""

from __future__ import annotations

from typing import Any

from ..._json_schema import DEF_KEYS, local_target

#: JSON Schema keywords native structured outputs accept; others move into the description.
_KEPT = frozenset({"type", "properties", "required", "items", "enum", "const", "anyOf", "allOf", "$ref",
                   "$defs", "definitions", "description", "title", "additionalProperties"})
_STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4",
                             "ipv6", "uuid"})
#: keywords whose value is one subschema, a list of them, or a map of names to them
_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAPS = ("properties", "patternProperties", "dependentSchemas", *DEF_KEYS)


def fits_native(schema: Any) -> bool:
    """Can constrained decoding hold ``schema`` once :func:`native_output_schema` closes it?
    Not when it has a map or recursion (see the module docstring)."""
    return isinstance(schema, dict) and _Fit(schema).fits(schema, ())


class _Fit:
    """One walk from the root, following local ``$ref`` into the definitions they name."""

    __slots__ = ("root", "checked")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.checked: set[str] = set()   # references already walked without finding a problem

    def fits(self, node: Any, expanding: tuple[str, ...]) -> bool:
        if isinstance(node, list):
            return all(self.fits(item, expanding) for item in node)
        if not isinstance(node, dict):
            return True
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in self.checked:
            if ref in expanding:
                return False   # a definition that contains itself
            target = local_target(self.root, ref)
            if isinstance(target, dict) and target is not self.root:
                if not self.fits(target, (*expanding, ref)):
                    return False
                self.checked.add(ref)
            elif target is self.root:
                return False   # "#": the whole schema inside itself
        if _is_map(node):
            return False
        for key in _ONE:
            if not self.fits(node.get(key), expanding):
                return False
        for key in _LISTS:
            if not self.fits(node.get(key), expanding):
                return False
        for key in _MAPS:
            subs = node.get(key)
            if key not in DEF_KEYS and isinstance(subs, dict) and not self.fits(list(subs.values()), expanding):
                return False
        return True


def _is_map(node: dict[str, Any]) -> bool:
    """An object whose keys are data: open to any key, or to keys by pattern."""
    if node.get("type") != "object" and "properties" not in node:
        return False
    extra = node.get("additionalProperties")
    return not isinstance(node.get("properties"), dict) or "patternProperties" in node or (
        extra is not None and extra is not False)


def native_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in the subset native structured outputs accept: every object that
    declares its properties closed (``additionalProperties: false``), ``oneOf`` as ``anyOf``,
    and constraints the API cannot enforce (``minimum``, ``pattern``, ...) kept as a hint in the
    description. A keyword of the wrong shape is copied as it is."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    hints: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", *DEF_KEYS) and isinstance(value, dict):
            out[key] = {name: native_output_schema(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = native_output_schema(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            if isinstance(value, list):
                out["allOf" if key == "allOf" else "anyOf"] = [native_output_schema(s) for s in value]
            else:
                out[key] = value
        elif key == "format" and value in _STRING_FORMATS:
            out[key] = value
        elif key == "minItems" and value in (0, 1):
            out[key] = value
        elif key in _KEPT:
            out[key] = value
        else:
            hints[key] = value
    if isinstance(out.get("properties"), dict):
        out["additionalProperties"] = False
    if hints:
        hint = "{" + ", ".join(f"{k}: {v}" for k, v in hints.items()) + "}"
        out["description"] = f"{out['description']}\n\n{hint}" if isinstance(out.get("description"), str) else hint
    return out
