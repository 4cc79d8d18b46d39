"""OpenAI Chat Completions: a search model's ``url_citation`` annotations are citations of the
answer's text, and an audio answer (``message.audio``) is kept whole, its transcript the text;
the same whole and streamed."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message, Text
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.providers._openai_replay import adapter, decode_stream

REQ = ChatRequest("gpt-4o-search-preview", [Message.user("who won euro 2024")])
TEXT = "Spain won Euro 2024 [uefa.com]."
ANNOTATION = {"type": "url_citation", "url_citation": {"url": "https://www.uefa.com/euro2024/", "title": "UEFA",
                                                       "start_index": 20, "end_index": 30}}
AUDIO = {"id": "audio_1", "data": "UklGRiQAAABXQVZF", "expires_at": 1900000000, "transcript": "Hello there!"}


def _whole(message: dict[str, Any]) -> ChatResponse:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "refusal": None, **message},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
    return adapter("openai").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), REQ)


def _streamed(deltas: list[dict[str, Any]]) -> ChatResponse:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    acc = StreamAccumulator(REQ.model, "openai")
    for ev in decode_stream("openai", body, REQ, size=11):
        acc.add(ev)
    return acc.response()


def test_url_citations_are_citations_of_the_text_whole_and_streamed():
    whole = _whole({"content": TEXT, "annotations": [ANNOTATION]})
    streamed = _streamed([{"role": "assistant", "content": TEXT[:12]}, {"content": TEXT[12:]},
                          {"annotations": [ANNOTATION]}])
    for r in (whole, streamed):
        [text] = r.parts
        assert isinstance(text, Text) and text.text == TEXT
        assert [(c.type, c.url, c.title, c.extra) for c in text.citations or ()] == [
            ("web_search_result_location", "https://www.uefa.com/euro2024/", "UEFA",
             {"start_index": 20, "end_index": 30})]


def test_an_audio_answer_is_kept_and_its_transcript_is_the_text_whole_and_streamed():
    whole = _whole({"content": None, "annotations": [], "audio": AUDIO})
    streamed = _streamed([{"role": "assistant", "content": None,
                           "audio": {"id": "audio_1", "transcript": "Hello "}},
                          {"audio": {"transcript": "there!"}},
                          {"audio": {"data": "UklGRiQA"}}, {"audio": {"data": "AABXQVZF", "expires_at": 1900000000}}])
    for r in (whole, streamed):
        assert r.text == "Hello there!"
        assert r.metadata.extra["audio"] == AUDIO


def test_a_transcript_is_not_added_to_text_content():
    r = _whole({"content": "Hi!", "audio": AUDIO})
    assert r.text == "Hi!" and r.metadata.extra["audio"] == AUDIO
