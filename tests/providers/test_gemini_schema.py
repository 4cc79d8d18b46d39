"""JSON Schema clean-up for Gemini's parametersJsonSchema / responseJsonSchema."""

from __future__ import annotations

import copy

import jsonschema

from cloverleaf.providers.gemini.schema import to_gemini_schema


def test_plain_schema_passes_unchanged_but_schema_keyword():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "title": "T",
              "additionalProperties": False, "properties": {"a": {"type": "string", "minLength": 1}},
              "required": ["a"]}
    original = copy.deepcopy(schema)
    out = to_gemini_schema(schema)
    assert schema == original  # input untouched
    assert "$schema" not in out
    assert out == {k: v for k, v in original.items() if k != "$schema"}


def test_refs_with_siblings_are_inlined():
    # pydantic writes {"$ref": ..., "description": ...}; Gemini allows no siblings next to $ref
    schema = {
        "$defs": {"Address": {"type": "object", "properties": {"street": {"type": "string"}}, "required": ["street"]}},
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/Address", "description": "where they live"},
                       "work": {"$ref": "#/$defs/Address"}},
    }
    out = to_gemini_schema(schema)
    assert "$defs" not in out
    assert out["properties"]["home"] == {"type": "object", "properties": {"street": {"type": "string"}},
                                         "required": ["street"], "description": "where they live"}
    assert out["properties"]["work"]["required"] == ["street"]


def test_recursive_refs_stay_refs_with_their_definition():
    schema = {"$defs": {"Node": {"type": "object", "properties": {
        "value": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
        "$ref": "#/$defs/Node"}
    out = to_gemini_schema(schema)
    assert out["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert out["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    tree = {"value": "A", "children": [{"value": "B", "children": []}]}
    jsonschema.validate(tree, out)  # still a valid schema describing the same documents
    jsonschema.validate(tree, schema)


def test_definitions_and_const():
    schema = {"definitions": {"Kind": {"const": "cat"}}, "type": "object",
              "properties": {"kind": {"$ref": "#/definitions/Kind"}, "n": {"const": 3}, "flag": {"const": True}}}
    out = to_gemini_schema(schema)
    assert out["properties"]["kind"] == {"enum": ["cat"], "type": "string"}
    assert out["properties"]["n"] == {"enum": [3], "type": "integer"}
    assert out["properties"]["flag"] == {"enum": [True], "type": "boolean"}
    assert "definitions" not in out


def test_mutual_recursion_keeps_only_the_cycle():
    schema = {"$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                        "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}},
              "$ref": "#/$defs/A"}
    out = to_gemini_schema(schema)
    assert out["properties"]["b"]["properties"]["a"] == {"$ref": "#/$defs/A"}
    assert set(out["$defs"]) == {"A"}
    jsonschema.validate({"b": {"a": {"b": {}}}}, out)


def test_definitions_of_the_wrong_shape_are_passed_over():
    """A client's malformed ``$defs`` (a list, a string) was a 500; Gemini now says what is wrong."""
    for defs in (["A"], "A", None, 3):
        schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": defs}
        assert to_gemini_schema(schema) == {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}
