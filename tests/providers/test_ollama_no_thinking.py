"""Reasoning asked of an Ollama model without thinking: Ollama refuses ``think`` for such a model
with a 400 (``"llama3.1" does not support thinking``, its ``ChatHandler``), so a client that always
asks for thinking could not use ``llama3.1`` at all. The call now goes once more without
``think``, the model is remembered per server (no refused request after the first), and the answer
is the model's plain one. Any other 400 still reaches the caller, sent once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import InvalidRequestError
from tests.sdk.upstream import Reply, Upstream

NDJSON = {"content-type": "application/x-ndjson"}


def no_thinking(model: str = "llama3.1") -> Reply:
    """Ollama's refusal, as its server writes it (``fmt.Sprintf("%q does not support thinking")``)."""
    return Reply(status=400, headers={"content-type": "application/json; charset=utf-8"},
                 body=json.dumps({"error": f'"{model}" does not support thinking'}).encode())


def answer(model: str = "llama3.1", text: str = "Hello there.") -> Reply:
    return Reply(headers={"content-type": "application/json; charset=utf-8"}, body=json.dumps({
        "model": model, "created_at": "2025-10-17T23:15:01.120044Z",
        "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop",
        "total_duration": 120000000, "load_duration": 1000000, "prompt_eval_count": 12, "eval_count": 4}).encode())


def streamed_answer(model: str = "llama3.1") -> Reply:
    lines = [{"model": model, "created_at": "2025-10-17T23:15:01.1Z", "message": {"role": "assistant", "content": "Hello"},
              "done": False},
             {"model": model, "created_at": "2025-10-17T23:15:01.2Z", "message": {"role": "assistant", "content": " there."},
              "done": False},
             {"model": model, "created_at": "2025-10-17T23:15:01.3Z", "message": {"role": "assistant", "content": ""},
              "done": True, "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 4}]
    return Reply(headers=NDJSON, chunks=[(json.dumps(line) + "\n").encode() for line in lines])


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def settings(*upstreams: Upstream) -> Settings:
    providers = {f"ollama{i or ''}": ProviderSettings(f"ollama{i or ''}", kind="ollama", base_url=up.url)
                 for i, up in enumerate(upstreams)}
    return Settings.load(env={}, providers=providers, max_retries=0)


def bodies(upstream: Upstream) -> list[dict[str, Any]]:
    return [json.loads(seen.body) for seen in upstream.seen]


def test_a_model_without_thinking_answers_and_is_remembered(upstream: Upstream) -> None:
    upstream.queue(no_thinking(), answer(), answer(text="Again."))
    with Client(settings(upstream)) as client:
        first = client.chat("ollama/llama3.1", "Hi", reasoning="low")
        second = client.chat("ollama/llama3.1", "Hi again", reasoning="high")
    assert (first.text, second.text) == ("Hello there.", "Again.")
    assert first.reasoning is None and second.reasoning is None
    sent = bodies(upstream)
    assert [("think" in body) for body in sent] == [True, False, False]   # refused once, then never sent
    assert sent[0]["think"] is True and sent[1]["messages"] == sent[0]["messages"]


def test_streamed_and_async_calls_are_sent_again_without_think(upstream: Upstream) -> None:
    upstream.queue(no_thinking(), streamed_answer(), no_thinking("qwen2.5"), answer("qwen2.5"))
    with Client(settings(upstream)) as client:
        with client.stream("ollama/llama3.1", "Hi", reasoning=True) as stream:
            events = list(stream)
    response = events[-1].response
    assert response is not None and response.text == "Hello there." and response.reasoning is None
    assert not [ev for ev in events if ev.type == "reasoning"]

    async def ask() -> str:
        async with AsyncClient(settings(upstream)) as client:
            return (await client.chat("ollama/qwen2.5", "Hi", reasoning="medium")).text

    import asyncio

    assert asyncio.run(ask()) == "Hello there."
    assert [("think" in body) for body in bodies(upstream)] == [True, False, True, False]


def test_the_memory_is_per_server_and_model(upstream: Upstream) -> None:
    other = Upstream()
    try:
        upstream.queue(no_thinking(), answer(), answer("qwen3"))
        other.queue(answer())   # another server, whose llama3.1 may be another model
        with Client(settings(upstream, other)) as client:
            client.chat("ollama/llama3.1", "Hi", reasoning="low")
            client.chat("ollama/qwen3", "Hi", reasoning="low")
            client.chat("ollama1/llama3.1", "Hi", reasoning="low")
        assert [("think" in body) for body in bodies(upstream)] == [True, False, True]
        assert "think" in bodies(other)[0]
    finally:
        other.close()


@pytest.mark.parametrize("refusal", [
    {"error": '"llama3.1" does not support tools'},
    {"error": "think value \"extreme\" is not supported for this model"},
])
def test_any_other_400_reaches_the_caller_sent_once(upstream: Upstream, refusal: dict[str, str]) -> None:
    upstream.queue(Reply(status=400, body=json.dumps(refusal).encode()))
    with Client(settings(upstream)) as client, pytest.raises(InvalidRequestError) as caught:
        client.chat("ollama/llama3.1", "Hi", reasoning="low")
    assert refusal["error"] in str(caught.value)
    assert len(upstream.seen) == 1


def test_without_reasoning_nothing_is_sent_again(upstream: Upstream) -> None:
    """No ``think`` was sent, so the refusal (from an Ollama-compatible server) is the caller's."""
    upstream.queue(no_thinking())
    with Client(settings(upstream)) as client, pytest.raises(InvalidRequestError):
        client.chat("ollama/llama3.1", "Hi")
    assert len(upstream.seen) == 1


def test_reasoning_zero_turns_thinking_off(upstream: Upstream) -> None:
    """``reasoning=0`` ("0 turns thinking off where the model allows") was sent as ``think: true``:
    a thinking model thought anyway, and one without thinking was refused. It is ``think: false``,
    which both take."""
    upstream.queue(answer("qwen3"))
    with Client(settings(upstream)) as client:
        assert client.chat("ollama/qwen3", "Hi", reasoning=0).text == "Hello there."
    assert bodies(upstream)[0]["think"] is False
