"""An Anthropic SDK client's Claude conversation routed to another provider by the model it
names: its parallel tool results carrying screenshots reach OpenAI's Chat Completions in the
order that API takes (every tool message right after the calls, the images after them), checked
by a mock upstream that answers the real API's 400 otherwise (:mod:`tests.providers.api_rules`)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..providers.api_rules import RuleCheckingUpstream, serving
from .conftest import Live, settings, start_live, stop_live

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


@pytest.fixture(scope="module")
def rules() -> Iterator[RuleCheckingUpstream]:
    yield from serving()


@pytest.fixture(scope="module")
def live(rules: RuleCheckingUpstream) -> Iterator[Live]:
    providers = {"openai": ProviderSettings("openai", base_url=f"{rules.url}/v1", api_key="sk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def test_claudes_parallel_screenshots_continue_on_openai(live: Live, rules: RuleCheckingUpstream) -> None:
    screenshot: Any = [{"type": "text", "text": "the screen"},
                       {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]
    messages: Any = [
        {"role": "user", "content": "Look at both windows."},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two looks.", "signature": "EqQBsig"},
            {"type": "tool_use", "id": "toolu_01A", "name": "screenshot", "input": {"window": 1}},
            {"type": "tool_use", "id": "toolu_01B", "name": "screenshot", "input": {"window": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": screenshot},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "window 2 is closed"}]},
    ]
    tools: Any = [{"name": "screenshot", "input_schema": {"type": "object", "properties": {"window": {"type": "integer"}}}}]
    answer = live.anthropic().messages.create(model="openai/gpt-4o", max_tokens=100, messages=messages, tools=tools)
    assert answer.content[0].type == "text" and answer.content[0].text == "Done."
    assert rules.refused == []
    sent = rules.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user"]
    assert "reasoning" not in sent[1] and sent[4]["content"][1]["type"] == "image_url"
