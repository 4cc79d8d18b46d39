"""Claude Code (thinking always on) through ``/v1/messages`` to an Ollama model without thinking:
Ollama refuses ``think`` for it with a 400, which reached the client; now the answer comes, with no
thinking block (what a model without thinking gives), streamed or not, driven by the official
Anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from tests.providers.test_ollama_no_thinking import answer, no_thinking, streamed_answer

from ..sdk.upstream import Upstream
from .conftest import Live, settings, start_live, stop_live

THINKING: Any = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    server = start_live(settings(providers={"ollama": ProviderSettings("ollama", kind="ollama", base_url=upstream.url)}))
    yield server
    stop_live(server)


@pytest.mark.parametrize("model", ["llama3.1", "llama3.2"])   # a model each: the first call is the refused one
def test_thinking_asked_of_a_model_without_it_gets_the_plain_answer(live: Live, upstream: Upstream,
                                                                    model: str) -> None:
    client = live.anthropic()
    ask: Any = [{"role": "user", "content": "Hi"}]
    before = len(upstream.seen)
    if model == "llama3.1":
        upstream.queue(no_thinking(model), answer(model))
        message = client.messages.create(model=f"ollama/{model}", max_tokens=4096, messages=ask,
                                         thinking=THINKING)
        blocks = [(b.type, getattr(b, "text", None)) for b in message.content]
    else:
        upstream.queue(no_thinking(model), streamed_answer(model))
        with client.messages.stream(model=f"ollama/{model}", max_tokens=4096, messages=ask,
                                    thinking=THINKING) as stream:
            final = stream.get_final_message()
        blocks = [(b.type, getattr(b, "text", None)) for b in final.content]
    assert blocks == [("text", "Hello there.")]
    sent = [json.loads(seen.body) for seen in upstream.seen[before:]]
    assert ["think" in body for body in sent] == [True, False]
