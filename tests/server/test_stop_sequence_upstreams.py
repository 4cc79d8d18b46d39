"""Which stop sequence ended an answer, as ``/v1/messages`` reports it for upstreams other than
Anthropic's own: a mock Bedrock Converse and a mock Gemini upstream behind a live server, read
with the official Anthropic SDK, streamed and not.

Bedrock tells which sequence matched a Claude answer only when asked for it
(``additionalModelResponseFieldPaths: ["/stop_sequence"]``), in ``additionalModelResponseFields``
next to ``stopReason: stop_sequence``; Gemini's ``finishReason: STOP`` means "a natural stop or one
of the stop sequences" and says nothing more, so neither the sequence nor ``stop_sequence`` as the
reason is made up for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.streams.eventstream import encode_frame

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"
ASK: dict[str, Any] = {"max_tokens": 50, "stop_sequences": ["STOP", "END"],
                       "messages": [{"role": "user", "content": "count"}]}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {
        "bed": ProviderSettings("bed", kind="bedrock", base_url=upstream.url,
                                extra={"region": "us-east-1"}),
        "gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
    }
    server = start_live(settings(providers=providers, env={"AWS_BEARER_TOKEN_BEDROCK": "bk-mock"}))
    yield server
    stop_live(server)


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(payload).encode())


def _converse(stop_fields: dict[str, Any]) -> Reply:
    body = {"output": {"message": {"role": "assistant", "content": [{"text": "1, 2, 3"}]}},
            "stopReason": "stop_sequence", "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
            **stop_fields}
    return Reply(body=json.dumps(body).encode())


def _converse_stream(stop_fields: dict[str, Any]) -> Reply:
    frames = [_frame("messageStart", {"role": "assistant"}),
              _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "1, 2, 3"}}),
              _frame("contentBlockStop", {"contentBlockIndex": 0}),
              _frame("messageStop", {"stopReason": "stop_sequence", **stop_fields}),
              _frame("metadata", {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                                  "metrics": {"latencyMs": 1}})]
    return Reply(headers={"content-type": "application/vnd.amazon.eventstream"}, chunks=frames)


def _answers(live: Live, model: str) -> list[Any]:
    client = live.anthropic()
    whole = client.messages.create(model=model, **ASK)
    with client.messages.stream(model=model, **ASK) as s:
        streamed = s.get_final_message()
    return [whole, streamed]


def test_bedrock_claude_reports_the_stop_sequence_that_matched(live: Live, upstream: Upstream) -> None:
    matched = {"additionalModelResponseFields": {"stop_sequence": "END"}}
    upstream.queue(_converse(matched), _converse_stream(matched))
    for answer in _answers(live, f"bed/{CLAUDE}"):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", "END")
        assert answer.content[0].text == "1, 2, 3"
    # Claude on Bedrock names the sequence only when asked to: both requests asked
    for seen in upstream.seen[-2:]:
        sent = json.loads(seen.body)
        assert sent["inferenceConfig"]["stopSequences"] == ["STOP", "END"]
        assert sent["additionalModelResponseFieldPaths"] == ["/stop_sequence"]


def test_a_bedrock_model_that_does_not_say_which_sequence_keeps_it_unknown(live: Live, upstream: Upstream) -> None:
    """``stopReason: stop_sequence`` alone (a model that has no such field): the reason is known,
    the sequence is not, and none is made up."""
    upstream.queue(_converse({}), _converse_stream({}))
    for answer in _answers(live, "bed/amazon.nova-micro-v1:0"):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", None)
    for seen in upstream.seen[-2:]:
        assert "additionalModelResponseFieldPaths" not in json.loads(seen.body)


def test_gemini_stop_is_a_natural_end_as_far_as_anyone_can_tell(live: Live, upstream: Upstream) -> None:
    """Gemini's STOP covers both a natural stop and a matched sequence, with no way to tell them
    apart: ``end_turn`` and no sequence, never a guessed one."""
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "1, 2, 3"}]}, "finishReason": "STOP"}],
             "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
             "modelVersion": "gemini-2.0-flash"}
    upstream.queue(Reply(body=json.dumps(chunk).encode()),
                   Reply(headers={"content-type": "text/event-stream"},
                         chunks=[f"data: {json.dumps(chunk)}\r\n\r\n".encode()]))
    for answer in _answers(live, "gem/gemini-2.0-flash"):
        assert (answer.stop_reason, answer.stop_sequence) == ("end_turn", None)
    assert json.loads(upstream.seen[-1].body)["generationConfig"]["stopSequences"] == ["STOP", "END"]
