"""OpenAI's ``strict`` JSON Schema rules, applied to a copy of the caller's schema.

Strict mode (structured output and ``strict`` function tools) accepts a subset of JSON Schema:

- every object closed (``additionalProperties: false``) and every property required. Objects
  are closed here; a schema with optional properties cannot be made strict without changing its
  meaning, so it is reported unfit and sent with ``strict: false`` (the client still validates
  the answer against the original schema);
- a ``$ref`` stands alone. pydantic writes a described nested model or enum field as
  ``{"$ref": "#/$defs/Addr", "description": "..."}``, which OpenAI answers with a 400
  ("$ref cannot have keywords {'description'}"). Such a reference is replaced by the schema it
  points to, with its own keys merged over it (the official ``openai`` SDK does the same). A
  reference back into a definition that is being inlined keeps only its ``$ref``: inlining it
  again would never end, and the sibling keys are annotations the model can do without.
"""

from __future__ import annotations

import copy
from typing import Any

from ..._json_schema import local_target

_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not")


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A copy with every lone-able ``$ref`` alone and every object closed, and whether strict mode
    can accept it (every property of every object required)."""
    out = copy.deepcopy(schema)
    out = _inline_described_refs(out, out, ())
    ok = _close_objects(out)
    return out, ok


def _inline_described_refs(node: Any, root: dict[str, Any], inlining: tuple[str, ...], names: bool = False) -> Any:
    """``node`` with each ``$ref`` that has sibling keys replaced by its target merged under
    those keys, recursively; ``inlining`` holds the references being expanded above ``node``.
    ``names``: ``node`` maps names to schemas (``properties``, ``$defs``...), so a field called
    ``default`` or ``$ref`` is a schema like any other, not a keyword."""
    if isinstance(node, list):
        return [_inline_described_refs(item, root, inlining) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: _inline_described_refs(value, root, inlining) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        target = local_target(root, ref)
        if ref in inlining:
            return {"$ref": ref}
        if isinstance(target, dict):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            merged = {**copy.deepcopy(target), **siblings}
            return _inline_described_refs(merged, root, (*inlining, ref))
    return {key: value if key in _LITERALS else _inline_described_refs(value, root, inlining, key in _NAME_MAPS)
            for key, value in node.items()}


#: keywords whose values are data, not schemas: never walked
_LITERALS = frozenset({"enum", "const", "default", "examples"})
#: keywords whose values map names to schemas: every value walked, whatever its name
_NAME_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})


def _close_objects(node: Any) -> bool:
    """Walk a JSON Schema (only its schema positions), closing objects in place. A keyword
    of the wrong shape (``"properties": [...]``) is left for the provider to refuse, and
    makes the schema unfit for strict mode."""
    if not isinstance(node, dict):
        return True
    ok = True
    if node.get("type") == "object" or "properties" in node:
        node.setdefault("additionalProperties", False)
        if node["additionalProperties"] is not False:
            ok = False
        props, required = node.get("properties") or {}, node.get("required") or []
        if not isinstance(props, dict) or not isinstance(required, list):
            return False
        if set(props) - {r for r in required if isinstance(r, str)}:
            ok = False
    for key in _SUBSCHEMA_MAPS:
        subs = node.get(key) or {}
        for sub in subs.values() if isinstance(subs, dict) else ():
            ok = _close_objects(sub) and ok
    for key in _SUBSCHEMA_LISTS:
        subs = node.get(key) or []
        for sub in subs if isinstance(subs, list) else ():
            ok = _close_objects(sub) and ok
    for key in _SUBSCHEMA_KEYS:
        if isinstance(node.get(key), dict):
            ok = _close_objects(node[key]) and ok
    return ok
