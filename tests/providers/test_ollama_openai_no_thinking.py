"""Reasoning asked of an Ollama model without thinking through Ollama's OpenAI-compatible
``/v1/chat/completions`` (a ``chat_completions`` row with ``base_url = http://host:11434/v1``, or
``ollama_api = "openai_chat"``): Ollama turns ``reasoning_effort`` into ``think`` and relays its
400 (``"llama3.1" does not support thinking``) in OpenAI's error shape (``middleware/openai.go``),
which reached the caller. The call now goes once more without ``reasoning_effort``, the model is
remembered per server, as on the native path; any other 400, from any server, is sent once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import InvalidRequestError
from tests.sdk.upstream import Reply, Upstream


def no_thinking(model: str = "llama3.1") -> Reply:
    """Ollama's refusal as its /v1 writes it (``openai.NewError(400, "\\"llama3.1\\" does not support thinking")``)."""
    return openai_error(f'"{model}" does not support thinking')


def openai_error(message: str) -> Reply:
    return Reply(status=400, headers={"content-type": "application/json"}, body=json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}).encode())


def answer(model: str = "llama3.1", text: str = "Hello there.") -> Reply:
    return Reply(body=json.dumps({
        "id": "chatcmpl-412", "object": "chat.completion", "created": 1760742901, "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}}).encode())


def streamed_answer(model: str = "llama3.1") -> Reply:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {"id": "chatcmpl-77", "object": "chat.completion.chunk", "created": 1760742901, "model": model,
                "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n".encode()

    return Reply(headers={"content-type": "text/event-stream"}, chunks=[
        chunk({"role": "assistant", "content": "Hello"}), chunk({"role": "assistant", "content": " there."}),
        chunk({"role": "assistant", "content": ""}, "stop"), b"data: [DONE]\n\n"])


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def settings(*upstreams: Upstream, kind: str = "chat_completions") -> Settings:
    """``homebox``, ``homebox1``...: Ollama's /v1 as a chat_completions row, or the ollama row's OpenAI path."""
    providers = {}
    for i, up in enumerate(upstreams):
        name = f"homebox{i or ''}"
        if kind == "ollama":
            providers[name] = ProviderSettings(name, kind="ollama", base_url=up.url, extra={"ollama_api": "openai_chat"})
        else:
            providers[name] = ProviderSettings(name, kind=kind, base_url=f"{up.url}/v1")
    return Settings.load(env={}, providers=providers, max_retries=0)


def bodies(upstream: Upstream) -> list[dict[str, Any]]:
    return [json.loads(seen.body) for seen in upstream.seen]


@pytest.mark.parametrize("kind", ["chat_completions", "ollama"])
def test_a_model_without_thinking_answers_and_is_remembered(upstream: Upstream, kind: str) -> None:
    upstream.queue(no_thinking(), answer(), answer(text="Again."))
    with Client(settings(upstream, kind=kind)) as client:
        first = client.chat("homebox/llama3.1", "Hi", reasoning="low")
        second = client.chat("homebox/llama3.1", "Hi again", reasoning="high")
    assert (first.text, second.text) == ("Hello there.", "Again.")
    sent = bodies(upstream)
    assert [seen.path for seen in upstream.seen] == ["/v1/chat/completions"] * 3
    assert [body.get("reasoning_effort") for body in sent] == ["low", None, None]   # refused once, then never sent
    assert sent[1]["messages"] == sent[0]["messages"]


def test_streamed_and_async_calls_are_sent_again_without_reasoning(upstream: Upstream) -> None:
    upstream.queue(no_thinking(), streamed_answer(), no_thinking("qwen2.5"), answer("qwen2.5"))
    with Client(settings(upstream)) as client:
        with client.stream("homebox/llama3.1", "Hi", reasoning="medium") as stream:
            events = list(stream)
    response = events[-1].response
    assert response is not None and response.text == "Hello there."

    async def ask() -> str:
        async with AsyncClient(settings(upstream)) as client:
            return (await client.chat("homebox/qwen2.5", "Hi", reasoning="medium")).text

    import asyncio

    assert asyncio.run(ask()) == "Hello there."
    assert ["reasoning_effort" in body for body in bodies(upstream)] == [True, False, True, False]


def test_the_memory_is_per_server_and_model(upstream: Upstream) -> None:
    other = Upstream()
    try:
        upstream.queue(no_thinking(), answer(), answer("qwen3"))
        other.queue(answer())   # another server, whose llama3.1 may be another model
        with Client(settings(upstream, other)) as client:
            client.chat("homebox/llama3.1", "Hi", reasoning="low")
            client.chat("homebox/qwen3", "Hi", reasoning="low")
            client.chat("homebox1/llama3.1", "Hi", reasoning="low")
        assert ["reasoning_effort" in body for body in bodies(upstream)] == [True, False, True]
        assert "reasoning_effort" in bodies(other)[0]
    finally:
        other.close()


@pytest.mark.parametrize("message", [
    '"llama3.1" does not support tools',
    '"qwen3" does not support thinking',    # the words, about another model than the one asked
    "invalid reasoning value: 'minimal' (must be \"high\", \"medium\", \"low\", or \"none\")",
    "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
])
@pytest.mark.parametrize("kind", ["chat_completions", "openai", "ollama"])
def test_any_other_400_reaches_the_caller_sent_once(upstream: Upstream, message: str, kind: str) -> None:
    upstream.queue(openai_error(message))
    with Client(settings(upstream, kind=kind)) as client, pytest.raises(InvalidRequestError) as caught:
        client.chat("homebox/llama3.1", "Hi", reasoning="low")
    assert message in str(caught.value)
    assert len(upstream.seen) == 1


def test_without_reasoning_nothing_is_sent_again(upstream: Upstream) -> None:
    """No reasoning was asked for, so the refusal (whatever sent it) is the caller's."""
    upstream.queue(no_thinking(), no_thinking())
    with Client(settings(upstream)) as client, pytest.raises(InvalidRequestError):
        client.chat("homebox/llama3.1", "Hi")
    assert len(upstream.seen) == 1
