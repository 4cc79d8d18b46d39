"""A JSON Schema dict as ``response_format`` is checked, as a pydantic model is: an answer that
breaks it is a StructuredOutputError (holding the response), never ``.parsed``.

The check (``cloverleaf._schema_validator``) covers the subset structured outputs use and
accepts what it does not know; ``jsonschema`` (a test dependency only) is the reference it is
held to: never refusing what jsonschema accepts, and agreeing with it on the subset."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf import Client, StructuredOutputError
from cloverleaf._schema_validator import schema_problems
from cloverleaf._structured import parse_output, to_response_format
from cloverleaf._types import ChatResponse, Text

PLAN = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["title", "n"], "additionalProperties": False}


def _parse(text: str, value: Any) -> Any:
    fmt = to_response_format(value)
    assert fmt is not None
    return parse_output(ChatResponse([Text(text)], "m", "p"), fmt)


@pytest.mark.parametrize("answer, where", [
    ("null", "(the whole value): expected object, got null"),
    ('{"title": "x"}', "n: is required but missing"),
    ("[1, 2]", "(the whole value): expected object, got array"),
    ('{"title": "x", "n": "3"}', "n: expected integer, got string"),
    ('{"title": "x", "n": 3, "extra": 1}', "extra: is not a property the schema allows"),
])
def test_an_answer_that_breaks_a_schema_dict_is_refused_through_the_client(answer: str, where: str) -> None:
    with Client(backend="fake") as c:
        c.fake.script.reply(text=answer)
        with pytest.raises(StructuredOutputError, match="does not match its JSON Schema") as caught:
            c.chat("fake/chat", "plan", response_format=PLAN)
    assert where in str(caught.value)
    assert caught.value.response is not None and caught.value.response.content == answer   # nothing lost


def test_a_matching_answer_is_parsed_and_every_schema_shape_is_checked() -> None:
    assert _parse('{"title": "x", "n": 3}', PLAN) == {"title": "x", "n": 3}
    openai_shape = {"type": "json_schema", "json_schema": {"name": "plan", "schema": PLAN, "strict": False}}
    with pytest.raises(StructuredOutputError, match="n: is required"):
        _parse('{"title": "x"}', openai_shape)
    # a top-level array travels wrapped; the array itself is checked, its $defs found at the root
    listed = {"type": "array", "items": {"$ref": "#/$defs/N"}, "$defs": {"N": {"type": "integer"}}}
    assert _parse('{"items": [1, 2]}', listed) == [1, 2]
    assert _parse("[1, 2]", listed) == [1, 2]                      # a bare array is accepted as before
    with pytest.raises(StructuredOutputError, match="1: expected integer, got string"):
        _parse('{"items": [1, "two"]}', listed)
    with pytest.raises(StructuredOutputError, match="expected array, got null"):
        _parse('{"other": [1]}', listed)                          # no array where the items go
    assert _parse('{"anything": [1]}', "json") == {"anything": [1]}   # json_object has no schema


def test_the_error_names_where_but_never_the_answers_values() -> None:
    secret = "sk-live-abcdef123456"
    with pytest.raises(StructuredOutputError) as caught:
        _parse(json.dumps({"title": 7, "n": secret}), PLAN)
    assert "title: expected string, got integer" in str(caught.value)
    assert secret not in str(caught.value) and secret in caught.value.response.content


def test_streaming_with_a_schema_dict_ends_with_the_same_error() -> None:
    with Client(backend="fake") as c:
        c.fake.script.reply(text='{"title": "x"}')
        stream = c.stream("fake/chat", "plan", response_format=PLAN)
        with pytest.raises(StructuredOutputError, match="n: is required but missing"):
            stream.until_done()


# -- the validator against jsonschema --------------------------------------------------------

SUBSET_SCHEMAS: list[dict[str, Any]] = [
    PLAN,
    {"type": ["string", "null"], "minLength": 2, "maxLength": 4},
    {"type": "number", "minimum": 0, "exclusiveMaximum": 10},
    {"type": "integer", "maximum": 5, "exclusiveMinimum": -3},
    {"enum": ["a", 1, None, True]},
    {"const": {"k": [1, 2]}},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": {"type": "null"}},
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]},
    {"allOf": [{"type": "object", "required": ["a"]}, {"properties": {"a": {"type": "integer"}}}]},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
    {"$defs": {"Node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                         "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
                        "required": ["v", "next"], "additionalProperties": False}},
     "$ref": "#/$defs/Node"},
    True,
    False,
]
#: keywords the validator accepts unchecked (or checks more loosely): it must never be stricter
LOOSER_SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "pattern": "^[a-z]+$", "format": "email"},
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    {"type": "object", "patternProperties": {"^x": {"type": "string"}}, "additionalProperties": False},
    {"type": "integer", "multipleOf": 3},
    {"if": {"type": "string"}, "then": {"minLength": 3}},
    {"$ref": "https://example.com/remote.json"},
    {"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(-20, 20, allow_nan=False) | st.text(max_size=5)
    | st.sampled_from(["a", "title", "n", "v", "next", "k"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(["a", "title", "n", "v", "next", "x1",
                                                                               "extra"]), kids, max_size=4),
    max_leaves=10,
)


def _jsonschema_accepts(value: Any, schema: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@settings(max_examples=300, deadline=None)
@given(value=json_values, index=st.integers(0, len(SUBSET_SCHEMAS) - 1))
def test_on_the_subset_it_agrees_with_jsonschema(value: Any, index: int) -> None:
    schema = SUBSET_SCHEMAS[index]
    assert (not schema_problems(value, schema)) == _jsonschema_accepts(value, schema)


@settings(max_examples=300, deadline=None)
@given(value=json_values, index=st.integers(0, len(LOOSER_SCHEMAS) - 1))
def test_it_never_refuses_what_jsonschema_accepts(value: Any, index: int) -> None:
    schema = LOOSER_SCHEMAS[index]
    if "remote" in json.dumps(schema) or schema.get("$defs", {}).get("A"):
        assert schema_problems(value, schema) == []          # unresolvable or endless: unchecked
        return
    if _jsonschema_accepts(value, schema):
        assert schema_problems(value, schema) == []


def test_nullable_unknown_types_and_long_lists_of_problems() -> None:
    assert schema_problems(None, {"type": "string", "nullable": True}) == []
    assert schema_problems(None, {"type": "string"}) == ["(the whole value): expected string, got null"]
    assert schema_problems(1, {"type": "decimal"}) == []                  # a type name it does not know
    assert schema_problems(1.0, {"type": "integer"}) == []                # 1.0 is an integer in JSON Schema
    many = {"type": "object", "required": [f"k{i}" for i in range(8)]}
    found = schema_problems({}, many)
    assert len(found) == 6 and found[-1] == "(and 3 more)"
