"""A lone UTF-16 surrogate escape in a provider's JSON (``"a\\ud800b"``, which JSON allows): a
whole answer came back with U+FFFD, but a stream died on it — Chat Completions and Messages
streams ended with ``internal_error``, the Responses stream was cut with no terminal event —
and a stored Response holding it broke every later ``previous_response_id`` call. The text is
read as U+FFFD where the upstream's JSON is decoded, for streams and whole answers alike."""

from __future__ import annotations

import json

import anthropic
import pytest

from ..sdk.upstream import Reply, Upstream
from .conftest import Live
from .two_upstreams import answer, sent

LONE = r"a\ud800b"   # the escape as the provider writes it in its JSON
SSE = {"content-type": "text/event-stream"}


def _sse(*events: str) -> Reply:
    return Reply(headers=SSE, chunks=[e.encode() for e in events])


def _chat_stream() -> Reply:
    head = '"id":"c1","object":"chat.completion.chunk","created":1,"model":"m"'
    return _sse(f'data: {{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"{LONE}"}},'
                '"finish_reason":null}]}\n\n',
                f'data: {{{head},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}],'
                '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n',
                "data: [DONE]\n\n")


def _whole_chat() -> Reply:
    body = ('{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":'
            f'{{"role":"assistant","content":"{LONE}"}},"finish_reason":"stop"}}],'
            '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')
    return Reply(body=body.encode())


@pytest.fixture(autouse=True)
def _fresh(upstream: Upstream) -> None:
    upstream.replies.clear()


def test_a_chat_completions_stream_carries_u_fffd(two_upstreams_live: Live, upstream: Upstream) -> None:
    upstream.queue(_chat_stream())
    stream = two_upstreams_live.openai().chat.completions.create(
        model="oai/m", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a\ufffdb"
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_a_messages_stream_carries_u_fffd(two_upstreams_live: Live, upstream: Upstream) -> None:
    msg = '{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,' \
          '"usage":{"input_tokens":1,"output_tokens":0}}'
    upstream.queue(_sse(
        f'event: message_start\ndata: {{"type":"message_start","message":{msg}}}\n\n',
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        '"content_block":{"type":"text","text":""}}\n\n',
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        f'"delta":{{"type":"text_delta","text":"{LONE}"}}}}\n\n',
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        '"usage":{"output_tokens":1}}\n\n',
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'))
    client: anthropic.Anthropic = two_upstreams_live.anthropic()
    with client.messages.stream(model="anth/m", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "a\ufffdb" and final.stop_reason == "end_turn"


def test_a_responses_stream_carries_u_fffd_and_completes(two_upstreams_live: Live, upstream: Upstream) -> None:
    upstream.queue(_chat_stream())
    events = list(two_upstreams_live.openai().responses.create(model="oai/m", input="hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a\ufffdb"
    assert events[-1].type == "response.completed"


def test_a_stored_response_holding_it_can_be_continued(two_upstreams_live: Live, upstream: Upstream) -> None:
    upstream.queue(_whole_chat(), answer({"id": "c3", "object": "chat.completion", "created": 1, "model": "m",
                                          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                       "finish_reason": "stop"}],
                                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
    client = two_upstreams_live.openai()
    first = client.responses.create(model="oai/m", input="hi")
    assert first.output_text == "a\ufffdb"
    second = client.responses.create(model="oai/m", input="again", previous_response_id=first.id)
    assert second.output_text == "ok"
    history = json.dumps(sent(upstream)["messages"], ensure_ascii=False)
    assert "a\ufffdb" in history
