"""Tools in ``extra_body`` (a provider's server tools: web search, code execution, grounding) are
sent beside the caller's own function tools on every adapter that builds a tools list; they used
to replace it, and the caller's functions silently vanished from the request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._types import ChatRequest, Message, Tool
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.registry import get_spec
from tests.providers._openai_replay import adapter, config

WEATHER = Tool("get_weather", "Current weather for a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
BEDROCK_CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="", api_key="k", extra={"region": "us-east-1"})


def body(row: str, model: str, extra_body: dict[str, Any]) -> dict[str, Any]:
    req = ChatRequest(model, [Message.user("weather in Paris, and the news?")], tools=[WEATHER], extra_body=extra_body)
    if row == "bedrock":
        built = BedrockAdapter(get_spec("bedrock")).build_chat(req, BEDROCK_CFG)
    else:
        built = adapter(row).build_chat(req, config(row))
    return json.loads(built.body or b"")


@pytest.mark.parametrize("row, model, server_tool", [
    ("anthropic", "claude-sonnet-4-5", {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}),
    ("openai", "gpt-4o", {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}),
    ("openai-responses", "gpt-5", {"type": "web_search"}),
    ("ollama", "llama3.2", {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}),
])
def test_extra_body_tools_are_added_to_the_callers_tools(row: str, model: str, server_tool: dict[str, Any]) -> None:
    tools = body(row, model, {"tools": [server_tool]})["tools"]
    names = [t.get("name") or t.get("function", {}).get("name") for t in tools]
    assert names[0] == "get_weather" and tools[1:] == [server_tool]


def test_an_extra_tool_named_like_a_callers_tool_takes_its_place() -> None:
    """A caller who put the whole list in extra_body (the old work-around) sends each tool once."""
    mine = {"name": "get_weather", "description": "mine", "input_schema": {"type": "object"}}
    tools = body("anthropic", "claude-sonnet-4-5", {"tools": [mine, {"type": "web_search_20250305",
                                                                     "name": "web_search"}]})["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "web_search"] and tools[0] == mine
    relayed = body("anthropic", "claude-sonnet-4-5", {"tools": [{"type": "web_search_20250305", "name": "web_search"},
                                                                mine]})["tools"]
    assert [t["name"] for t in relayed] == ["web_search", "get_weather"]   # a whole list keeps its order


def test_gemini_server_tools_sit_beside_the_function_declarations() -> None:
    extra = {"tools": [{"google_search": {}}, {"code_execution": {}},
                       {"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}]}
    tools = body("gemini", "gemini-2.5-flash", extra)["tools"]
    assert [d["name"] for d in tools[0]["functionDeclarations"]] == ["get_weather", "lookup"]
    assert tools[1:] == [{"google_search": {}}, {"code_execution": {}}]


def test_bedrock_extra_tool_config_keeps_the_callers_tools() -> None:
    grounding = {"systemTool": {"name": "nova_grounding"}}
    config_sent = body("bedrock", "us.amazon.nova-premier-v1:0", {"toolConfig": {"tools": [grounding]}})["toolConfig"]
    assert [t.get("toolSpec", {}).get("name") for t in config_sent["tools"]] == ["get_weather", None]
    assert config_sent["tools"][1] == grounding


def test_a_relayed_namespace_or_tool_search_replaces_the_functions_built_from_it() -> None:
    """The server relays a Responses client's own list to an OpenAI Responses upstream in
    ``extra_body``; the functions it built from that list (a namespace's members, the client
    tool search) must not go up a second time beside it."""
    from cloverleaf.providers.extra_tools import joined

    built = [{"type": "function", "name": "close_agent"}, {"type": "function", "name": "multi__spawn"},
             {"type": "function", "name": "tool_search"}, {"type": "function", "name": "mine"}]
    extra = [{"type": "namespace", "name": "multi", "tools": [{"type": "function", "name": "close_agent"},
                                                              {"type": "function", "name": "spawn"}]},
             {"type": "tool_search", "execution": "client"}]
    assert joined(built, extra) == [{"type": "function", "name": "mine"}, *extra]


def named_body(row: str, model: str, tool_name: str, extra_body: dict[str, Any]) -> dict[str, Any]:
    req = ChatRequest(model, [Message.user("search the news")], tools=[Tool(tool_name, "mine", {"type": "object"})],
                      extra_body=extra_body)
    if row == "bedrock":
        return json.loads(BedrockAdapter(get_spec("bedrock")).build_chat(req, BEDROCK_CFG).body or b"")
    return json.loads(adapter(row).build_chat(req, config(row)).body or b"")


PROVIDER_TOOLS = [
    ("anthropic", "claude-sonnet-4-5", "web_search", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ("openai", "gpt-4o", "web_search", {"tools": [{"type": "web_search", "name": "web_search"}]}),
    ("openai-responses", "gpt-5", "web_search", {"tools": [{"type": "web_search", "name": "web_search"}]}),
    ("ollama", "llama3.2", "web_search", {"tools": [{"type": "web_search", "name": "web_search"}]}),
    ("bedrock", "us.amazon.nova-premier-v1:0", "nova_grounding",
     {"toolConfig": {"tools": [{"systemTool": {"name": "nova_grounding"}}]}}),
]


@pytest.mark.parametrize("row, model, name, extra", PROVIDER_TOOLS)
def test_a_provider_tool_named_like_a_callers_function_is_a_400_naming_both(
        row: str, model: str, name: str, extra: dict[str, Any]) -> None:
    """A user function ``web_search`` beside Anthropic's server tool ``web_search`` was dropped
    from the request without a word; the caller now hears which two tools clash and what to do."""
    from cloverleaf._errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as caught:
        named_body(row, model, name, extra)
    message = str(caught.value)
    assert caught.value.status == 400
    assert f"two tools are named {name!r}" in message and "extra_body tool" in message and "rename" in message


@pytest.mark.parametrize("row, model, name, extra", [PROVIDER_TOOLS[0], PROVIDER_TOOLS[-1]])
def test_a_cleaned_name_never_takes_an_extra_tools_name(row: str, model: str, name: str, extra: dict[str, Any]) -> None:
    """``web.search`` is sent in the form the API takes; that form was ``web_search``, the server
    tool's name, and the server tool took the function's place."""
    dotted = name.replace("_", ".")
    sent = named_body(row, model, dotted, extra)
    tools = sent["tools"] if row != "bedrock" else sent["toolConfig"]["tools"]
    names = [t.get("name") or t.get("toolSpec", {}).get("name") or t.get("systemTool", {}).get("name") for t in tools]
    assert len(names) == 2 and names[1] == name and names[0].startswith(f"{name}_") and names[0] != name
