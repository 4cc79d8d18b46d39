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


class _Weather:
    def __call__(self, city: str, unit: Literal["C", "F"] = "C") -> str:
        """Current weather for a city."""
        return f"sunny in {city} ({unit})"


def _convert(amount: float, rate: float) -> float:
    """Convert an amount."""
    return amount * rate


def test_callable_objects_and_partials_become_tools_and_a_lambda_is_refused_with_a_way_out():
    """A callable object or a functools.partial crashed with AttributeError (no __name__), and a
    lambda became a tool named '<lambda>', which OpenAI refuses (^[a-zA-Z0-9_-]{1,64}$)."""
    import functools

    from cloverleaf import Client

    weather = to_tool(_Weather())
    assert weather.name == "_Weather" and weather.description == "Current weather for a city."
    assert weather.parameters["properties"]["city"] == {"type": "string"} and weather.parameters["required"] == ["city"]
    assert weather.parameters["properties"]["unit"]["enum"] == ["C", "F"]
    convert = to_tool(functools.partial(_convert, rate=1.5))
    assert convert.name == "_convert" and convert.description == "Convert an amount."
    assert convert.parameters["properties"] == {"amount": {"type": "number"}}  # the bound rate is not the model's
    with Client(env={}) as c:
        c.fake.script.reply(tool_calls=[{"name": "_convert", "arguments": {"amount": 2}},
                                        {"name": "_Weather", "arguments": {"city": "Oslo"}}]).reply("done")
        c.chat("fake/chat", "hi", tools=[functools.partial(_convert, rate=1.5), _Weather()], run_tools=True)
        results = [m["content"] for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"]
        assert results == ["3.0", "sunny in Oslo (C)"]
        with pytest.raises(ConfigError, match="'<lambda>'.*define it with def.*__name__"):
            c.chat("fake/chat", "hi", tools=[lambda city: "sunny"])
    named = lambda city: "sunny"  # noqa: E731 - the case under test
    named.__name__ = "sunny_everywhere"
    assert to_tool(named).name == "sunny_everywhere"


def test_any_python_parameter_name_works_without_warnings():
    """pydantic field names clashed: model_config raised TypeError, json/schema/copy/dict/validate
    printed "shadows an attribute" warnings, and a required _id was silently left out."""
    import warnings

    from cloverleaf._tools import run_tool

    def odd(model_config: str, json: int, schema: str, copy: bool, dict: list[int], validate: str, _id: int,
            model_name: str = "m") -> str:
        """Odd names.

        Args:
            _id: The record id.
        """
        return repr((model_config, json, schema, copy, dict, validate, _id, model_name))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tool = to_tool(odd)
        params = tool.parameters
        assert list(params["properties"]) == ["model_config", "json", "schema", "copy", "dict", "validate", "_id",
                                              "model_name"]
        assert params["required"] == ["model_config", "json", "schema", "copy", "dict", "validate", "_id"]
        assert params["properties"]["_id"] == {"type": "integer", "description": "The record id."}
        args = {"model_config": "c", "json": 1, "schema": "s", "copy": True, "dict": [2], "validate": "v", "_id": 7}
        result = run_tool(ToolCall("c1", "odd", args), {"odd": tool})
    assert result.is_error is False and result.text == repr(("c", 1, "s", True, [2], "v", 7, "m"))


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


class TreeNode(BaseModel):
    """A tree of categories."""

    name: str
    children: list["TreeNode"] = []


def test_a_recursive_model_tool_has_an_object_root_and_keeps_its_definitions():
    """pydantic's root is ``{"$ref": "#/$defs/TreeNode"}``, which OpenAI and Anthropic refuse."""
    tool = to_tool(TreeNode)
    assert tool.description == "A tree of categories."
    params = tool.parameters
    assert params["type"] == "object" and "$ref" not in params and "title" not in params
    assert params["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    assert params["$defs"]["TreeNode"]["properties"]["name"] == {"title": "Name", "type": "string"}


def test_an_older_pydantics_all_of_root_is_an_object_root_too():
    """pydantic 2.6 (the lowest this package allows) writes the root as ``{"allOf": [{"$ref": ...}]}``."""
    from cloverleaf._json_schema import object_root

    node = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
    old = {"$defs": {"Node": node}, "allOf": [{"$ref": "#/$defs/Node"}], "description": "A tree."}
    root = object_root(old)
    assert root["type"] == "object" and "allOf" not in root and root["description"] == "A tree."
    assert root["$defs"] == {"Node": node}
    two = {"allOf": [{"$ref": "#/$defs/Node"}, {"required": ["x"]}], "$defs": {"Node": node}}
    assert object_root(two) is two                      # a real intersection is left alone


@pytest.mark.parametrize("model, reply, sent", [
    ("openai/gpt-4o", {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]},
     lambda body: body["tools"][0]["function"]["parameters"]),
    ("anthropic/claude-sonnet-4-5", {"id": "m", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                                     "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                                     "usage": {"input_tokens": 1, "output_tokens": 1}},
     lambda body: body["tools"][0]["input_schema"]),
])
def test_a_recursive_model_tool_reaches_the_provider_as_an_object(upstream, model, reply, sent):
    from cloverleaf import Client

    from .upstream import Reply

    upstream.queue(Reply(body=json.dumps(reply).encode()))
    base_url = upstream.url + ("/v1" if model.startswith("openai") else "")
    with Client(env={}, max_retries=0) as client:
        client.chat(model, "sort these", tools=[TreeNode], base_url=base_url, api_key="k")
    schema = sent(json.loads(upstream.seen[-1].body))
    assert schema["type"] == "object" and schema["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
