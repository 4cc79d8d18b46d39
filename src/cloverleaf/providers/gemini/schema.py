"""JSON Schema as Gemini's ``parametersJsonSchema`` / ``responseJsonSchema`` accept it.

Gemini has two schema fields. The old ``parameters``/``responseSchema`` take an OpenAPI 3.0
subset (upper-case types, no ``$ref``, no ``additionalProperties``, no ``title``) and would
need a lossy translation. The v1beta JSON Schema fields take real JSON Schema, and the
recorded traffic shows them accepting ``$defs``/``$ref`` (recursive too),
``additionalProperties``, ``title``, ``oneOf``, ``default``, ``minLength``, ``pattern``,
``prefixItems`` and ``uniqueItems`` on gemini-2.0/2.5/3 models. So we send those fields and
change only what the API documents as unsupported:

- ``$schema`` is dropped;
- ``const`` becomes a one-value ``enum`` (``const`` is not in the supported list; an
  ignored ``const`` would silently lose the constraint);
- a ``$ref`` may carry no sibling keywords ("If $ref is set on a sub-schema, no other
  properties, except for those starting as a $, may be set"), so every non-recursive
  ``$ref`` is inlined (its siblings merged in) and only the definitions that recurse stay
  in ``$defs``, referenced by a bare ``$ref``.
"""

from __future__ import annotations

from typing import Any

_DEF_KEYS = ("$defs", "definitions")


def to_gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that Gemini's JSON Schema fields accept (the input is not changed)."""
    defs: dict[str, Any] = {}
    for key in _DEF_KEYS:
        found = schema.get(key)
        for name, value in found.items() if isinstance(found, dict) else ():
            defs[f"#/{key}/{name}"] = value
    inliner = _Inliner(defs)
    # definitions are only reached through references (unused ones are dropped, as are definitions
    # of the wrong shape, "$defs": [...], which nothing can reference)
    out: dict[str, Any] = inliner.walk({k: v for k, v in schema.items() if k not in _DEF_KEYS}, ())
    if inliner.recursive:
        out = dict(out)  # the root may be one of the expanded definitions itself
        # keep only the definitions that refer to themselves, already inlined except for the cycle
        out["$defs"] = {ref.rsplit("/", 1)[-1]: inliner.expanded[ref] for ref in sorted(inliner.recursive)}
    return out


class _Inliner:
    __slots__ = ("defs", "recursive", "expanded")

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        #: refs met again while being expanded: they stay as ``$ref`` and keep a ``$defs`` entry
        self.recursive: set[str] = set()
        self.expanded: dict[str, Any] = {}

    def walk(self, node: Any, expanding: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self.walk(item, expanding) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in self.defs:
            if ref in expanding:
                self.recursive.add(ref)
                return {"$ref": _canonical(ref)}
            target = self.walk(self.defs[ref], (*expanding, ref))
            self.expanded.setdefault(ref, target)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if not siblings:
                return target
            merged = dict(target)
            merged.update(self.walk(siblings, expanding))
            return merged
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$schema":
                continue
            if key == "const":
                out["enum"] = [value]
                if "type" not in node and _json_type(value):
                    out["type"] = _json_type(value)
                continue
            if key in ("properties", "patternProperties"):
                out[key] = {name: self.walk(sub, expanding) for name, sub in value.items()} if isinstance(
                    value, dict) else value
            elif key in ("enum", "required", "default", "examples", "example"):
                out[key] = value  # data, not schemas
            else:
                out[key] = self.walk(value, expanding)
        return out


def _canonical(ref: str) -> str:
    """``#/definitions/X`` refs are rewritten to ``#/$defs/X``, where we keep them."""
    return "#/$defs/" + ref.rsplit("/", 1)[-1]


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None
