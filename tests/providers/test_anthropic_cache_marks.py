"""Anthropic prompt-cache marks the adapter sends: ``cache_control`` on a tool (caching a long
tool list), at the request's top level (automatic prompt caching) and on tool calls and tool
results in the history (an agent loop's rolling breakpoint), as the caller wrote them."""

from __future__ import annotations

from typing import Any

from cloverleaf._types import Attachment, ChatRequest, Message, Text, Tool, ToolCall, ToolResult
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
ADAPTER = AnthropicAdapter(get_spec("anthropic"))
CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")


def body(req: ChatRequest) -> dict[str, Any]:
    return ADAPTER.build_chat(req, CFG).json()  # type: ignore[no-any-return]


def test_top_level_cache_control_is_the_neutral_field() -> None:
    """Automatic prompt caching as a request field gives the recorded body that extra_body gave."""
    rec = cassette(REC + "test_anthropic_cache_real_api.yaml")[0].request_json
    req = ChatRequest("claude-sonnet-4-5", [Message.system("You are a helpful assistant."),
                                            Message.user(rec["messages"][0]["content"][0]["text"])],
                      max_tokens=4096, cache_control={"type": "ephemeral", "ttl": "5m"})
    assert body(req) == {k: v for k, v in rec.items() if k != "stream"}


def test_cache_control_on_a_tool_passes_through() -> None:
    """The standard way to cache a long tool list: a breakpoint on the last tool, sent as given."""
    mark = {"type": "ephemeral", "ttl": "1h"}
    tools = [Tool("search", "web search"), Tool("fetch", "fetch a page", cache_control=mark)]
    got = body(ChatRequest("claude-sonnet-4-5", [Message.user("find it")], tools=tools))
    assert [t.get("cache_control") for t in got["tools"]] == [None, mark]
    assert got["tools"][1] == {"name": "fetch", "description": "fetch a page",
                               "input_schema": {"type": "object", "properties": {}}, "cache_control": mark}


def test_cache_control_on_a_tool_call_and_a_tool_result_passes_through() -> None:
    """An agent loop's last block is a tool result: its breakpoint (and one on a tool call, or on
    a block inside the result) is sent where it was put, so the next turn reads the cache."""
    mark, hour = {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}
    image = Attachment(type="image", media_type="image/png", data=b"\x89PNG", cache_control=hour)
    req = ChatRequest("claude-sonnet-4-5", [
        Message.user("read it"),
        Message.assistant([ToolCall("toolu_1", "read", {"path": "a"}, cache_control=mark),
                           ToolCall("toolu_2", "read", {"path": "b"})]),
        Message.tool("toolu_1", "file a", cache_control=mark),
        Message("tool", [ToolResult("toolu_2", [Text("file b", cache_control=hour), image])]),
    ], tools=[Tool("read")])
    assistant, results = body(req)["messages"][1:]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a"}, "cache_control": mark},
        {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "b"}}]
    first, second = results["content"]
    assert first == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file a", "is_error": False,
                     "cache_control": mark}
    assert "cache_control" not in second
    assert [b.get("cache_control") for b in second["content"]] == [hour, hour]
