"""An OpenAI refusal reaches the server's clients as OpenAI sends it: ``message.refusal`` (content
null) with the upstream's finish reason, and ``delta.refusal`` chunks when streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

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


class City(BaseModel):
    name: str


def test_responses_give_a_refusal_as_a_refusal_part(relay: tuple[Live, Upstream]) -> None:
    """Not ``output_text``: the SDK's ``responses.parse`` would parse the refusal as the JSON and
    raise. OpenAI's status for a refusal is ``completed``."""
    live, upstream = relay
    upstream.queue(Reply(body=json.dumps(REFUSAL).encode()))
    out = live.openai().responses.parse(model="up/gpt-4o", input="x", text_format=City)
    assert out.status == "completed" and out.incomplete_details is None
    assert [c.model_dump() for c in out.output[0].content] == [{"type": "refusal", "refusal": "I can't help with that."}]
    assert out.output_parsed is None and out.output_text == ""


def test_a_streamed_refusal_is_refusal_events(relay: tuple[Live, Upstream]) -> None:
    live, upstream = relay
    upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=[
        _chunk({"role": "assistant", "content": None, "refusal": ""}), _chunk({"refusal": "I can't help"}),
        _chunk({"refusal": " with that."}), _chunk({}, "stop"), b"data: [DONE]\n\n"]))
    with live.openai().responses.stream(model="up/gpt-4o", input="x", text_format=City) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.output_text.delta" not in kinds and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.refusal.delta") == "I can't help with that."
    done = [e for e in events if e.type == "response.refusal.done"]
    assert len(done) == 1 and done[0].refusal == "I can't help with that." and done[0].content_index == 0
    parts = [e.part.model_dump() for e in events if e.type == "response.content_part.done"]
    assert parts == [{"type": "refusal", "refusal": "I can't help with that."}]
    assert final.status == "completed" and final.output_parsed is None
    assert [c.type for c in final.output[0].content] == ["refusal"]


def _claude_refusal(text: str) -> bytes:
    return json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                       "content": [{"type": "text", "text": text}] if text else [], "stop_reason": "refusal",
                       "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 4}}).encode()


@pytest.mark.parametrize("text", ["I can't help with that.", ""])
def test_a_claude_refusal_is_a_refusal_part_on_responses_too(text: str) -> None:
    """Claude says it refused only in ``stop_reason``, after its text: the whole answer is still a
    ``refusal`` part with status ``completed``, so ``responses.parse`` leaves ``output_parsed`` None."""
    upstream = Upstream()
    live = start_live(settings(providers={"claude": ProviderSettings("claude", kind="anthropic", base_url=upstream.url,
                                                                     api_key="sk-ant-test")}))
    try:
        upstream.queue(Reply(body=_claude_refusal(text)))
        out = live.openai().responses.parse(model="claude/claude-sonnet-4-5", input="x", text_format=City)
        assert out.status == "completed" and out.output_parsed is None
        (part,) = out.output[0].content
        assert part.type == "refusal" and part.refusal == (text or part.refusal) and part.refusal
    finally:
        stop_live(live)
        upstream.close()


def _claude_refusal_stream(text: str) -> list[bytes]:
    def sse(kind: str, body: dict[str, object]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n".encode()
    blocks = [sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
              sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}}),
              sse("content_block_stop", {"index": 0})] if text else []
    return [sse("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            *blocks,
            sse("message_delta", {"delta": {"stop_reason": "refusal", "stop_sequence": None},
                                  "usage": {"output_tokens": 4}}),
            sse("message_stop", {})]


@pytest.mark.parametrize("text", ["I can't help with that.", ""])
def test_a_streamed_claude_refusal_ends_as_a_refusal_part(text: str) -> None:
    """Claude's stream says it refused only in ``message_delta``, after its text went out as
    ``output_text.delta``: the part is still closed as a refusal (``refusal.done``, never the
    ``output_text.done`` the SDK would parse as the JSON) and the Response is ``completed`` with a
    ``refusal`` part, so ``responses.stream(text_format=...)`` neither raises nor parses it."""
    upstream = Upstream()
    live = start_live(settings(providers={"claude": ProviderSettings("claude", kind="anthropic", base_url=upstream.url,
                                                                     api_key="sk-ant-test")}))
    try:
        upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=_claude_refusal_stream(text)))
        with live.openai().responses.stream(model="claude/claude-sonnet-4-5", input="x", text_format=City) as stream:
            events = list(stream)
            final = stream.get_final_response()
        kinds = [e.type for e in events]
        assert "response.output_text.done" not in kinds and kinds[-1] == "response.completed"
        (done,) = [e for e in events if e.type == "response.refusal.done"]
        assert done.refusal == (text or done.refusal) and done.refusal
        assert final.status == "completed" and final.output_parsed is None
        (part,) = final.output[0].content
        assert part.type == "refusal" and part.refusal == done.refusal
    finally:
        stop_live(live)
        upstream.close()
