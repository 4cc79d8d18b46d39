"""An OpenAI refusal reaches the server's clients as OpenAI sends it: ``message.refusal`` (content
null) with the upstream's finish reason, and ``delta.refusal`` chunks when streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

REFUSAL = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{
    "index": 0, "finish_reason": "stop", "logprobs": None,
    "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}}


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    return ("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n").encode()


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[Live, Upstream]]:
    upstream = Upstream()
    live = start_live(settings(providers={"up": ProviderSettings("up", kind="openai", base_url=f"{upstream.url}/v1")}))
    yield live, upstream
    stop_live(live)
    upstream.close()


def test_refusal_is_message_refusal_with_the_upstream_finish_reason(relay: tuple[Live, Upstream]) -> None:
    live, upstream = relay
    upstream.queue(Reply(body=json.dumps(REFUSAL).encode()))
    out = live.openai().chat.completions.create(model="up/gpt-4o", messages=[{"role": "user", "content": "x"}])
    choice = out.choices[0]
    assert choice.message.refusal == "I can't help with that." and choice.message.content is None
    assert choice.finish_reason == "stop"


def test_streamed_refusal_is_refusal_deltas(relay: tuple[Live, Upstream]) -> None:
    live, upstream = relay
    upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=[
        _chunk({"role": "assistant", "content": None, "refusal": ""}), _chunk({"refusal": "I can't help"}),
        _chunk({"refusal": " with that."}), _chunk({}, "stop"), b"data: [DONE]\n\n"]))
    stream = live.openai().chat.completions.create(model="up/gpt-4o", messages=[{"role": "user", "content": "x"}],
                                                   stream=True)
    chunks = list(stream)
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert refusal == "I can't help with that." and content == "" and finishes == ["stop"]
