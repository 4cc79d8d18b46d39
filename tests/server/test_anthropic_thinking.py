"""Claude Code's thinking controls through the gateway: ``thinking: {"type": "adaptive"}`` and
``output_config.effort`` reach an Anthropic upstream as the client sent them (they were replaced
by a fixed thinking budget, and ``xhigh``/``max`` folded to ``high``), while a provider without
them gets the nearest portable effort. Driven by the official Anthropic SDK against a mock
upstream that records the body it received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.server import anthropic_wire as aw

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

HI: Any = [{"role": "user", "content": "hi"}]
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "o3", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"anth": ProviderSettings("anth", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def sent(upstream: Upstream) -> dict[str, Any]:
    return json.loads(upstream.seen[-1].body)  # type: ignore[no-any-return]


def answer(body: dict[str, Any]) -> Reply:
    return Reply(headers={"content-type": "application/json"}, body=json.dumps(body).encode())


@pytest.mark.parametrize("effort", ["high", "xhigh", "max"])
def test_adaptive_thinking_and_effort_reach_anthropic_as_sent(live: Live, upstream: Upstream, effort: str) -> None:
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-opus-4-8", max_tokens=16000, messages=HI,
                                     thinking={"type": "adaptive"}, output_config={"effort": effort})  # type: ignore[typeddict-item]
    body = sent(upstream)
    assert (body.get("thinking"), body.get("output_config")) == ({"type": "adaptive"}, {"effort": effort})


def test_effort_alone_reaches_anthropic_without_thinking(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-opus-4-6", max_tokens=1000, messages=HI,
                                     output_config={"effort": "low"})
    body = sent(upstream)
    assert "thinking" not in body and body["output_config"] == {"effort": "low"}


def test_another_provider_gets_the_nearest_portable_effort(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(COMPLETION))
    live.anthropic().messages.create(model="oai/o3", max_tokens=1000, messages=HI,
                                     thinking={"type": "adaptive"}, output_config={"effort": "max"})  # type: ignore[typeddict-item]
    body = sent(upstream)
    assert body["reasoning_effort"] == "high"
    assert "output_config" not in body and "thinking" not in body


def test_the_request_keeps_the_clients_words() -> None:
    req = aw.parse_messages_request({"model": "m", "max_tokens": 10, "messages": HI,
                                     "thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}})
    assert req.reasoning is not None
    assert (req.reasoning.adaptive, req.reasoning.native_effort, req.reasoning.effort) == (True, "xhigh", "high")
    alone = aw.parse_messages_request({"model": "m", "max_tokens": 10, "messages": HI,
                                       "output_config": {"effort": "medium"}})
    assert alone.reasoning is not None
    assert (alone.reasoning.adaptive, alone.reasoning.native_effort, alone.reasoning.budget_tokens) == (
        False, "medium", None)
