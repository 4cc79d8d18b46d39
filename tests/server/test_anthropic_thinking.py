"""Claude Code's thinking controls through the gateway: ``thinking: {"type": "adaptive"}`` and
``output_config.effort`` reach an Anthropic upstream as the client sent them (they were replaced
by a fixed thinking budget, and ``xhigh``/``max`` folded to ``high``), while a provider without
them gets the nearest portable effort. Driven by the official Anthropic SDK against a mock
upstream that records the body it received."""

from __future__ import annotations

from typing import Any

import pytest

from cloverleaf.server import anthropic_wire as aw

from ..sdk.upstream import Upstream
from .conftest import Live
from .two_upstreams import answer, sent

HI: Any = [{"role": "user", "content": "hi"}]
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "o3", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}


@pytest.fixture(scope="module")
def live(two_upstreams_live: Live) -> Live:
    return two_upstreams_live




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
