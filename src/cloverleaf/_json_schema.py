"""Small JSON Schema facts several encoders need, on schemas that may be malformed.

A schema here may come from a client of the server, so nothing in it is trusted: a keyword of
the wrong shape (``"properties": [...]``, ``"$defs": "x"``) is passed over, never indexed, and
the provider that receives the schema says what is wrong with it (a 4xx, not our 500).
"""

from __future__ import annotations

from typing import Any

#: Where local definitions live (``#/$defs/Name``, ``#/definitions/Name``).
DEF_KEYS = ("$defs", "definitions")


def local_target(root: Any, ref: Any) -> Any:
    """The schema a local JSON pointer (``#/$defs/Node``) names inside ``root``; None for any
    other reference, a missing one, or a path through something that is not an object."""
    if not isinstance(ref, str):
        return None
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    found: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(found, dict) or part not in found:
            return None
        found = found[part]
    return found


def object_root(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a root that is the object itself. pydantic writes a recursive model as
    ``{"$defs": {"Node": ...}, "$ref": "#/$defs/Node"}``, a root with no ``"type": "object"``,
    which OpenAI (``function.parameters``) and Anthropic (``input_schema``) refuse. The root
    ``$ref`` is replaced by the definition it names (its own keys merged over it, as pydantic
    never writes but a caller may); ``$defs`` stay, for the references inside. pydantic 2.6
    (the lowest this package allows) wrote the root as ``{"allOf": [{"$ref": ...}]}``: a lone
    ``allOf`` reference is unwrapped alike. Any other schema (or a reference that names
    nothing) is returned unchanged."""
    ref, drop = schema.get("$ref"), "$ref"
    if ref is None and isinstance(all_of := schema.get("allOf"), list) and len(all_of) == 1 \
            and isinstance(all_of[0], dict) and set(all_of[0]) == {"$ref"}:
        ref, drop = all_of[0]["$ref"], "allOf"
    target = local_target(schema, ref)
    if not isinstance(target, dict) or target is schema or "$ref" in target:
        return schema
    return {**target, **{k: v for k, v in schema.items() if k != drop}}
