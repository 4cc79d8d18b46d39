"""Schemas for Anthropic's constrained decoding: a map or a recursive schema, which closing every
object would make impossible to fill, takes the forced tool (or a tool without ``strict``) and
keeps its meaning; a malformed schema from a client reaches the API as given (its 400), never
our 500."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from cloverleaf._structured import to_response_format
from cloverleaf._types import ChatRequest, Message, ResponseFormat, Tool
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.anthropic.messages import STRUCTURED_TOOL
from cloverleaf.providers.anthropic.schemas import fits_native, native_output_schema
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec

NATIVE_MODEL = "claude-sonnet-4-5"


class Scores(BaseModel):
    student: str
    scores: dict[str, int]


class Node(BaseModel):
    name: str
    children: list[Node] = []


@pytest.fixture(scope="module")
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(get_spec("anthropic"))


def body(adapter: AnthropicAdapter, req: ChatRequest, **extra: Any) -> dict[str, Any]:
    cfg = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test", extra=extra)
    return adapter.build_chat(req, cfg).json()  # type: ignore[no-any-return]


def structured(adapter: AnthropicAdapter, fmt: Any, **extra: Any) -> dict[str, Any]:
    req = ChatRequest(NATIVE_MODEL, [Message.user("x")], response_format=to_response_format(fmt))
    return body(adapter, req, **extra)


def test_a_map_field_takes_the_forced_tool_with_its_schema_as_given(adapter: AnthropicAdapter) -> None:
    got = structured(adapter, Scores)
    assert "output_config" not in got
    tool = got["tools"][0]
    assert tool["name"] == STRUCTURED_TOOL and got["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
    assert tool["input_schema"]["properties"]["scores"] == {
        "additionalProperties": {"type": "integer"}, "title": "Scores", "type": "object"}


def test_a_map_wins_over_the_native_setting(adapter: AnthropicAdapter) -> None:
    """The ``structured_output = "native"`` setting says the model can; this schema cannot."""
    assert "output_config" not in structured(adapter, Scores, structured_output="native")


def test_a_schema_without_maps_stays_native_and_closed(adapter: AnthropicAdapter) -> None:
    class City(BaseModel):
        name: str
        tags: list[str]

    schema = structured(adapter, City)["output_config"]["format"]["schema"]
    assert schema["additionalProperties"] is False and schema["properties"]["tags"] == {
        "items": {"type": "string"}, "title": "Tags", "type": "array"}


def test_a_recursive_model_takes_the_forced_tool_with_an_object_root(adapter: AnthropicAdapter) -> None:
    got = structured(adapter, Node)
    assert "output_config" not in got
    schema = got["tools"][0]["input_schema"]
    assert schema["type"] == "object" and schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in schema["$defs"]


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"env": {"type": "object", "additionalProperties": {"type": "string"}}}},
    {"type": "object", "properties": {"env": {"type": "object", "additionalProperties": True}}},
    {"type": "object", "properties": {"env": {"type": "object"}}},
    {"type": "object", "properties": {"env": {"type": "object", "patternProperties": {"^x": {}}}}},
    {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "$defs": {"N": {
        "type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/N"}, {"type": "null"}]}}}}},
])
def test_a_strict_tool_that_cannot_be_closed_is_sent_without_strict_as_given(
        adapter: AnthropicAdapter, schema: dict[str, Any]) -> None:
    tool = Tool("set_env", "Set variables", schema, strict=True)
    got = body(adapter, ChatRequest(NATIVE_MODEL, [Message.user("x")], tools=[tool]))["tools"][0]
    assert got == {"name": "set_env", "description": "Set variables", "input_schema": schema}


def test_only_objects_that_declare_properties_are_closed() -> None:
    out = native_output_schema({"type": "object", "properties": {"a": {"type": "object"}, "b": {
        "type": "object", "properties": {}}}})
    assert out["additionalProperties"] is False and out["properties"]["b"]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["a"]


def test_shared_definitions_are_not_recursion() -> None:
    addr = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert fits_native({"type": "object", "properties": {"home": {"$ref": "#/$defs/A"}, "work": {"$ref": "#/$defs/A"}},
                        "$defs": {"A": addr}})


MALFORMED = [
    {"type": "object", "properties": ["a", "b"]},
    {"type": "object", "properties": "a"},
    {"type": "object", "properties": None},
    {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": ["A"]},
    {"type": "object", "properties": {"a": {"$ref": "#/definitions/A"}}, "definitions": "A"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}, "$defs": {}},
    {"type": "object", "properties": {"a": {"anyOf": {"type": "string"}}}},
    {"type": "object", "properties": {"a": {"oneOf": None}}},
    {"type": "object", "properties": {"a": {"allOf": 3}}},
    {"type": "object", "properties": {"a": {"$ref": "#", "description": "the whole"}}},
]


@pytest.mark.parametrize("schema", MALFORMED)
def test_a_malformed_schema_reaches_the_api_unchanged(adapter: AnthropicAdapter, schema: dict[str, Any]) -> None:
    """The API's 400 names what is wrong; a crash here was the server's 500."""
    fmt = ResponseFormat(type="json_schema", schema=schema, name="x", strict=True)
    got = body(adapter, ChatRequest(NATIVE_MODEL, [Message.user("x")], response_format=fmt))
    sent = got["output_config"]["format"]["schema"] if "output_config" in got else got["tools"][0]["input_schema"]
    assert {k: v for k, v in sent.items() if k != "additionalProperties"} == schema
    tool = Tool("f", None, schema, strict=True)
    sent = body(adapter, ChatRequest(NATIVE_MODEL, [Message.user("x")], tools=[tool]))["tools"][0]["input_schema"]
    assert {k: v for k, v in sent.items() if k != "additionalProperties"} == schema
