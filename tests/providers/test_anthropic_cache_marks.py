"""Anthropic prompt-cache marks the adapter sends: ``cache_control`` on a tool (caching a long
tool list) and at the request's top level (automatic prompt caching), as the caller wrote them."""

from __future__ import annotations

from typing import Any

from cloverleaf._types import ChatRequest, Message, Tool
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
