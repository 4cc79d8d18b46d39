"""Validate server output against OpenAI's published OpenAPI document.

The document (``tests/fixtures/specs/openai-openapi/openapi.yaml``, see ORIGIN.md there) is
OpenAPI 3.1, but some schemas still carry the 3.0 keyword ``nullable: true`` (for example a
stream chunk's ``finish_reason``, null on every chunk but the last). JSON Schema 2020-12
ignores that keyword, so it is rewritten here into its meaning, ``anyOf: [schema, null]``,
before validating; nothing else is changed.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "specs" / "openai-openapi" / "openapi.yaml"
_URI = "urn:openai-openapi"


def _nullable_to_anyof(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_anyof(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_anyof(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


@lru_cache(maxsize=1)
def _registry() -> Registry:
    doc = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    doc = _nullable_to_anyof(doc)
    return Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))


@cache
def validator(component: str) -> Draft202012Validator:
    schema = {"$ref": f"{_URI}#/components/schemas/{component}"}
    return Draft202012Validator(schema, registry=_registry())


def validate(component: str, instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` (with the best-matching failure) if invalid."""
    errors = sorted(validator(component).iter_errors(instance), key=lambda e: e.path)
    if errors:
        from jsonschema.exceptions import best_match

        raise best_match(errors)
