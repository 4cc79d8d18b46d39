"""A malformed JSON Schema from a client (``properties`` a list, ``$defs`` a string, ...) in a
response format or a strict tool, through each of the server's APIs, to each kind of provider:
never a 5xx. The schema goes upstream as given, whose 400 says what is wrong with it (the mock
upstream here answers 200, so the test sees the request pass the gateway)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

MALFORMED: dict[str, Any] = {
    "properties a list": {"type": "object", "properties": ["a", "b"]},
    "properties null": {"type": "object", "properties": None},
    "items a list": {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
    "$defs a list": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": ["A"]},
    "definitions a string": {"type": "object", "properties": {"a": {"$ref": "#/definitions/A"}}, "definitions": "A"},
    "$ref to nothing": {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing", "description": "d"}}},
    "anyOf an object": {"type": "object", "properties": {"a": {"anyOf": {"type": "string"}}}},
    "oneOf null": {"type": "object", "properties": {"a": {"oneOf": None}}},
}

ANTHROPIC = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
             "content": [{"type": "text", "text": '{"a": 1}'}], "stop_reason": "end_turn",
             "usage": {"input_tokens": 3, "output_tokens": 2}}
GEMINI = {"candidates": [{"content": {"role": "model", "parts": [{"text": '{"a": 1}'}]}, "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}
OPENAI = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{
    "index": 0, "message": {"role": "assistant", "content": '{"a": 1}'}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
#: model -> the reply its upstream gives
MODELS = {"anth/claude-sonnet-4-5": ANTHROPIC, "anth/claude-3-5-haiku-latest": ANTHROPIC,
          "gem/gemini-2.5-flash": GEMINI, "oai/gpt-4o": OPENAI}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {
        "anth": ProviderSettings("anth", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock"),
        "gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
        "oai": ProviderSettings("oai", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock"),
    }
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def requests(model: str, schema: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each API's way to send ``schema``: as the response format, and as a strict tool's parameters."""
    chat = [{"role": "user", "content": "hi"}]
    return {
        "chat response_format": ("/v1/chat/completions", {"model": model, "messages": chat, "response_format": {
            "type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}}),
        "chat strict tool": ("/v1/chat/completions", {"model": model, "messages": chat, "tools": [
            {"type": "function", "function": {"name": "f", "parameters": schema, "strict": True}}]}),
        "messages output_config": ("/v1/messages", {"model": model, "max_tokens": 50, "messages": chat,
                                                    "output_config": {"format": {"type": "json_schema",
                                                                                 "schema": schema}}}),
        "messages strict tool": ("/v1/messages", {"model": model, "max_tokens": 50, "messages": chat,
                                                  "tools": [{"name": "f", "input_schema": schema, "strict": True}]}),
        "responses text.format": ("/v1/responses", {"model": model, "input": "hi", "text": {"format": {
            "type": "json_schema", "name": "x", "schema": schema, "strict": True}}}),
        "responses strict tool": ("/v1/responses", {"model": model, "input": "hi", "tools": [
            {"type": "function", "name": "f", "parameters": schema, "strict": True}]}),
    }


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("label", sorted(MALFORMED))
def test_a_malformed_schema_is_never_a_5xx(live: Live, upstream: Upstream, model: str, label: str) -> None:
    failures = []
    with live.http() as http:
        for where, (path, request) in requests(model, MALFORMED[label]).items():
            upstream.replies.clear()
            upstream.queue(Reply(body=json.dumps(MODELS[model]).encode()))
            r = http.post(path, json=request)
            if r.status_code >= 500:
                failures.append(f"{where}: {r.status_code} {r.text[:200]}")
    assert failures == []
