import json
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cloverleaf._errors import ConfigError
from cloverleaf._structured import complete_partial_json, strict_schema, to_response_format
from cloverleaf._tools import to_tool, to_tool_choice, tool_loop
from cloverleaf._types import ChatResponse, Text, ToolCall, ToolChoice, ToolResult


class Item(BaseModel):
    name: str
    qty: int = 1


def test_pydantic_model_becomes_a_strict_schema():
    fmt = to_response_format(Item)
    assert fmt.type == "json_schema" and fmt.model is Item and fmt.name == "Item"
    assert fmt.schema["additionalProperties"] is False and fmt.schema["required"] == ["name", "qty"]


@pytest.mark.parametrize("value, kind", [
    ("json", "json_object"),
    ({"type": "json_object"}, "json_object"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}, "json_schema"),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, "json_schema"),
])
def test_response_format_shapes(value, kind):
    assert to_response_format(value).type == kind


def test_bad_response_format_is_explained():
    with pytest.raises(ConfigError, match="pydantic model"):
        to_response_format(42)


def test_strict_schema_closes_nested_objects_without_mutating():
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    out = strict_schema(schema)
    assert out["properties"]["a"]["additionalProperties"] is False and "additionalProperties" not in schema


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_partial_json_prefixes_never_fail_and_end_exact(value):
    text = json.dumps(value)
    for cut in range(0, len(text) + 1, max(1, len(text) // 12)):
        complete_partial_json(text[:cut])  # never raises
    assert complete_partial_json(text) == value


def test_partial_json_keeps_growing_string_values():
    assert complete_partial_json('{"title": "Hel') == {"title": "Hel"}
    assert complete_partial_json('{"a": 1, "b"') == {"a": 1}
    assert complete_partial_json('[1, 2, {"c": [tr') == [1, 2, {"c": []}]


def test_function_tool_schema_from_signature_and_docstring():
    def search(query: str, limit: int = 10, mode: Literal["fast", "deep"] = "fast") -> list[str]:
        """Search the index.

        :param query: What to look for.
        :param limit: Maximum hits.
        """
        return []

    t = to_tool(search)
    assert t.name == "search" and t.description == "Search the index."
    props = t.parameters["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for."}
    assert props["limit"]["type"] == "integer" and props["mode"]["enum"] == ["fast", "deep"]
    assert t.parameters["required"] == ["query"] and t.function is search


def test_tool_choice_forms():
    assert to_tool_choice("auto") == ToolChoice("auto")
    assert to_tool_choice("any") == ToolChoice("required")
    assert to_tool_choice("search") == ToolChoice("tool", "search")
    assert to_tool_choice({"type": "function", "function": {"name": "f"}}) == ToolChoice("tool", "f")


def test_tool_loop_stops_at_max_turns():
    call = ChatResponse([ToolCall("c1", "f", {})], "m", "p", finish_reason="tool_calls")
    loop = tool_loop([], max_tool_turns=2)
    next(loop)
    turns = 0
    with pytest.raises(StopIteration) as stop:
        while True:
            loop.send(call)
            loop.send([ToolResult("c1", "ok")])
            turns += 1
    assert turns == 2 and stop.value.value is call


def test_tool_loop_returns_the_final_answer():
    loop = tool_loop([], max_tool_turns=5)
    next(loop)
    loop.send(ChatResponse([ToolCall("c1", "f", {})], "m", "p"))
    history = loop.send([ToolResult("c1", "ok")])
    assert [m.role.value for m in history] == ["assistant", "tool"]
    final = ChatResponse([Text("done")], "m", "p")
    with pytest.raises(StopIteration) as stop:
        loop.send(final)
    assert stop.value.value is final
