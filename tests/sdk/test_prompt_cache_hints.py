"""Prompt-cache hints given to the SDK reach the provider: ``cache_control`` on a tool, written
as Anthropic or OpenAI tools write it, and for the whole request (``cache_control=``), against a real HTTP upstream on loopback standing in for
Anthropic's API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf import Client, ConfigError
from cloverleaf._tools import to_tool
from cloverleaf._types import Tool

from .upstream import Reply, Upstream

MARK = {"type": "ephemeral"}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 1}}
PARAMS = {"type": "object", "properties": {"q": {"type": "string"}}}


def anthropic_chat(upstream: Upstream, **options: Any) -> dict[str, Any]:
    """Ask ``anthropic/claude-sonnet-4-5`` (served by ``upstream``) and return the body it received."""
    upstream.queue(Reply(body=json.dumps(MESSAGE).encode()))
    with Client(env={"ANTHROPIC_API_KEY": "sk-ant-test"}, max_retries=0) as client:
        client.chat("anthropic/claude-sonnet-4-5", "hi", base_url=upstream.url, **options)
    return json.loads(upstream.seen[-1].body)  # type: ignore[no-any-return]


@pytest.mark.parametrize("written", [
    {"name": "fetch", "input_schema": PARAMS, "cache_control": MARK},                               # Anthropic's
    {"type": "function", "function": {"name": "fetch", "parameters": PARAMS}, "cache_control": MARK},  # LiteLLM's
    {"type": "function", "function": {"name": "fetch", "parameters": PARAMS, "cache_control": MARK}},
    "Tool",
], ids=["anthropic-dict", "openai-dict-outer", "openai-dict-inner", "Tool"])
def test_a_tools_cache_control_reaches_anthropic(upstream: Upstream, written: Any) -> None:
    if written == "Tool":
        written = Tool("fetch", parameters=PARAMS, cache_control=MARK)
    body = anthropic_chat(upstream, tools=[{"name": "search", "input_schema": PARAMS}, written])
    assert [t.get("cache_control") for t in body["tools"]] == [None, MARK]


def test_a_cache_control_that_is_not_a_dict_is_refused_naming_the_tool() -> None:
    with pytest.raises(ConfigError, match="'fetch'.*cache_control"):
        to_tool({"name": "fetch", "input_schema": PARAMS, "cache_control": "ephemeral"})


def test_the_requests_cache_control_reaches_anthropic(upstream: Upstream) -> None:
    """Automatic prompt caching: ``cache_control=`` is the request's top-level field on Anthropic."""
    assert anthropic_chat(upstream, cache_control={"type": "ephemeral", "ttl": "1h"})["cache_control"] == {
        "type": "ephemeral", "ttl": "1h"}
    assert "cache_control" not in anthropic_chat(upstream)


def test_a_requests_cache_control_that_is_not_a_dict_is_refused() -> None:
    with Client(env={"CLOVERLEAF_BACKEND": "fake"}) as client, pytest.raises(ConfigError, match="cache_control"):
        client.chat("fake/echo", "hi", cache_control="ephemeral")  # type: ignore[typeddict-item]


def test_providers_without_explicit_caching_ignore_it() -> None:
    with Client(env={"CLOVERLEAF_BACKEND": "fake"}) as client:
        assert client.chat("fake/echo", "hi", cache_control=MARK).content == "hi"
