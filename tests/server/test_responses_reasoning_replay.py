"""Reasoning items replayed on the next turn go only to the provider that can verify them.

A conversation that moves between providers — by ``previous_response_id``, or with the history
sent back by the client (``store: false``, as the Agents SDK does) — keeps working: the other
provider's reasoning is dropped, never sent as a signature of the gateway's making. Driven by
the official SDK against a stand-in that checks ids and signatures as OpenAI and Anthropic do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Live
from .verifying_upstream import VerifyingUpstream, gateway_on

OPENAI, ANTHROPIC = "openai-responses/o3", "anthropic/claude-sonnet-4-5"
THINK: Any = {"effort": "low"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Live, VerifyingUpstream]]:
    upstream = VerifyingUpstream()
    try:
        with gateway_on(upstream) as live:
            yield live, upstream
    finally:
        upstream.close()


def _replayed_reasoning(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The reasoning a provider was sent back: OpenAI reasoning items, Anthropic thinking blocks."""
    if "input" in body:
        return [i for i in body["input"] if i.get("type") == "reasoning"]
    return [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
            if b["type"] in ("thinking", "redacted_thinking")]


def test_unsigned_reasoning_continues_on_any_provider(served: tuple[Live, VerifyingUpstream]) -> None:
    """Reasoning with no signature (the fake provider; DeepSeek, vLLM or Ollama through Chat
    Completions) is packed like any other, so its item id never comes back as a signature."""
    live, upstream = served
    client = live.openai()
    first = client.responses.create(model="fake/chat", input="think about it", reasoning=THINK)
    item = first.output[0]
    assert item.type == "reasoning"
    for model, api in ((OPENAI, "openai"), (ANTHROPIC, "anthropic")):
        r = client.responses.create(model=model, input="and now?", previous_response_id=first.id, reasoning=THINK)
        assert r.status == "completed", model
        sent = upstream.bodies[api][-1]
        assert _replayed_reasoning(sent) == [] and item.id not in json.dumps(sent)
    history: Any = [{"role": "user", "content": "think about it"}, *[o.model_dump() for o in first.output],
                    {"role": "user", "content": "and now?"}]
    for model, api in ((OPENAI, "openai"), (ANTHROPIC, "anthropic")):
        r = client.responses.create(model=model, input=history, store=False, reasoning=THINK)
        assert r.output_text == "echo: and now?", model
        assert _replayed_reasoning(upstream.bodies[api][-1]) == []
    assert (item.encrypted_content or "").startswith("clv1:")  # the gateway's own, never OpenAI's


def test_openai_reasoning_goes_back_to_openai_only(served: tuple[Live, VerifyingUpstream]) -> None:
    """Reasoning relayed from OpenAI's Responses API (its own items, unpacked) is sent back to it
    with its id and encryption, and dropped for Anthropic, which cannot verify it."""
    live, upstream = served
    client = live.openai()
    first = client.responses.create(model=OPENAI, input="think", reasoning=THINK)
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.encrypted_content
    again = client.responses.create(model=OPENAI, input="more", previous_response_id=first.id, reasoning=THINK)
    assert again.status == "completed"
    assert [i["id"] for i in _replayed_reasoning(upstream.bodies["openai"][-1])] == [reasoning.id]
    r = client.responses.create(model=ANTHROPIC, input="more", previous_response_id=first.id, reasoning=THINK)
    assert r.output_text == "echo: more" and _replayed_reasoning(upstream.bodies["anthropic"][-1]) == []
    history: Any = [{"role": "user", "content": "think"}, *[o.model_dump() for o in first.output],
                    {"role": "user", "content": "more"}]
    r = client.responses.create(model=ANTHROPIC, input=history, store=False, reasoning=THINK)
    assert r.output_text == "echo: more" and _replayed_reasoning(upstream.bodies["anthropic"][-1]) == []


def test_openai_reasoning_rendered_by_the_gateway_is_dropped_for_anthropic(
        served: tuple[Live, VerifyingUpstream]) -> None:
    """OpenAI's reasoning in the gateway's own rendering (a model with a fallback of another
    kind), sent back by a client that keeps its own history: the copy does not say which
    provider made it, but an ``rs_`` id is OpenAI's, and Anthropic does not get it."""
    live, upstream = served
    client = live.openai()
    first = client.responses.create(model="mixed", input="think", reasoning=THINK, store=False)
    history: Any = [{"role": "user", "content": "think"}, *[o.model_dump() for o in first.output],
                    {"role": "user", "content": "more"}]
    r = client.responses.create(model=ANTHROPIC, input=history, store=False, reasoning=THINK)
    assert r.output_text == "echo: more" and _replayed_reasoning(upstream.bodies["anthropic"][-1]) == []
