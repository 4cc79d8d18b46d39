"""A refusal from an upstream speaking OpenAI's Responses API (``openai-responses``) reaches the
server's clients as a refusal, as one from Chat Completions does: ``message.refusal`` on
/v1/chat/completions, a ``refusal`` part (status ``completed``) on /v1/responses when the answer
is rendered by the gateway (here a route whose fallback is another kind, so nothing is relayed
unchanged), and ``responses.parse()`` leaves ``output_parsed`` None."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

WORDS = "I can't help with that."


def _message(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": list(content)}


def _response(*content: dict[str, Any]) -> bytes:
    return json.dumps({"id": "resp_1", "object": "response", "model": "gpt-4o", "status": "completed",
                       "output": [_message(*content)],
                       "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}}).encode()


REFUSED = _response({"type": "refusal", "refusal": WORDS})


def _events(*events: dict[str, Any]) -> Reply:
    chunks = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return Reply(headers={"content-type": "text/event-stream"}, chunks=chunks)


def _streamed_refusal() -> Reply:
    return _events(
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4o", "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "output_index": 0, "item_id": "msg_1", "content_index": 0,
         "part": {"type": "refusal", "refusal": ""}},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "content_index": 0,
         "delta": "I can't help"},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "content_index": 0,
         "delta": " with that."},
        {"type": "response.output_item.done", "output_index": 0,
         "item": _message({"type": "refusal", "refusal": WORDS})},
        {"type": "response.completed", "response": {"id": "resp_1", "model": "gpt-4o", "status": "completed",
                                                    "output": [_message({"type": "refusal", "refusal": WORDS})],
                                                    "usage": {"input_tokens": 5, "output_tokens": 6,
                                                              "total_tokens": 11}}})


class City(BaseModel):
    name: str


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Live, Upstream]]:
    upstream = Upstream()
    live = start_live(settings(
        providers={"resp": ProviderSettings("resp", kind="openai_responses", base_url=f"{upstream.url}/v1",
                                            api_key="sk-test")},
        routes={"mixed": {"targets": ["resp/gpt-4o", "fake/echo"]}}))
    yield live, upstream
    stop_live(live)
    upstream.close()


def test_chat_completions_answer_message_refusal(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(Reply(body=REFUSED))
    out = live.openai().chat.completions.create(model="resp/gpt-4o", messages=[{"role": "user", "content": "x"}])
    message = out.choices[0].message
    assert message.refusal == WORDS and message.content is None


def test_chat_completions_keep_the_answer_text_apart_from_the_refusal(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(Reply(body=_response({"type": "output_text", "text": "Well. ", "annotations": []},
                                        {"type": "refusal", "refusal": WORDS})))
    out = live.openai().chat.completions.create(model="resp/gpt-4o", messages=[{"role": "user", "content": "x"}])
    message = out.choices[0].message
    assert message.refusal == WORDS and message.content == "Well. "


def test_streamed_chat_completions_answer_refusal_deltas(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(_streamed_refusal())
    stream = live.openai().chat.completions.create(model="resp/gpt-4o", messages=[{"role": "user", "content": "x"}],
                                                   stream=True)
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks) == WORDS
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""


def test_responses_parse_gets_a_refusal_part(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(Reply(body=REFUSED))
    out = live.openai().responses.parse(model="mixed", input="x", text_format=City)
    assert out.status == "completed" and out.output_parsed is None and out.output_text == ""
    assert [c.model_dump() for c in out.output[0].content] == [{"type": "refusal", "refusal": WORDS}]


def test_responses_keep_answer_text_and_refusal_as_two_parts_of_one_message(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(Reply(body=_response({"type": "output_text", "text": "Well. ", "annotations": []},
                                        {"type": "refusal", "refusal": WORDS})))
    out = live.openai().responses.create(model="mixed", input="x")
    assert out.status == "completed" and len(out.output) == 1 and out.output_text == "Well. "
    assert [c.type for c in out.output[0].content] == ["output_text", "refusal"]  # type: ignore[union-attr]


def test_streamed_responses_give_refusal_events(served: tuple[Live, Upstream]) -> None:
    live, upstream = served
    upstream.queue(_streamed_refusal())
    with live.openai().responses.stream(model="mixed", input="x", text_format=City) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.output_text.delta" not in kinds
    assert "".join(e.delta for e in events if e.type == "response.refusal.delta") == WORDS
    assert final.status == "completed" and final.output_parsed is None
    assert [c.type for c in final.output[0].content] == ["refusal"]
