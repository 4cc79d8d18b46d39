"""OpenAI Chat Completions: an answer that is only text is parsed without the general
message walk, into exactly what that walk builds; anything more takes the walk."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message
from cloverleaf.providers.openai import adapter as openai_adapter
from tests.providers._openai_replay import adapter

REQ = ChatRequest("gpt-4o", [Message.user("hello")])

PLAIN = [
    {"role": "assistant", "content": "Hi there.", "refusal": None, "annotations": []},
    {"role": "assistant", "content": "Hi there."},
    {"content": ""},
    {"role": "assistant", "content": "", "refusal": None},
]
NOT_PLAIN = [
    {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    {"role": "assistant", "content": "x", "refusal": "no"},
    {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "b"}]},
    {"role": "assistant", "content": "a", "reasoning_content": "why"},
    {"role": "assistant", "content": "a", "audio": {}},
    {"role": "assistant", "content": "a", "annotations": [{"type": "url_citation",
                                                            "url_citation": {"url": "https://x.test/"}}]},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "assistant", "content": "a", "some_new_field": 1},
]


def _parse(message: dict[str, Any], finish: str | None = "stop") -> ChatResponse:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
    return adapter("openai").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), REQ)


@pytest.mark.parametrize("message", PLAIN + NOT_PLAIN)
@pytest.mark.parametrize("finish", ["stop", None, "length"])
def test_the_text_only_path_builds_what_the_general_walk_builds(message, finish, monkeypatch):
    fast = _parse(message, finish)
    monkeypatch.setattr(openai_adapter, "_plain_text", lambda message: None)
    general = _parse(message, finish)
    assert asdict(fast) == asdict(general)


@pytest.mark.parametrize("message", PLAIN)
def test_a_text_only_answer_skips_the_general_walk(message, monkeypatch):
    def walked(*args: Any) -> Any:
        raise AssertionError("a text-only answer went through the general message walk")

    monkeypatch.setattr(openai_adapter.OpenAIAdapter, "_message_parts", walked)
    monkeypatch.setattr(openai_adapter, "_sources_and_audio", walked)
    r = _parse(message)
    assert r.text == message["content"] and r.finish_reason == "stop" and r.usage.output_tokens == 6


@pytest.mark.parametrize("message", NOT_PLAIN)
def test_anything_more_than_text_takes_the_general_walk(message, monkeypatch):
    calls: list[Any] = []
    general = openai_adapter.OpenAIAdapter._message_parts

    def counted(self: Any, *args: Any) -> Any:
        calls.append(args)
        return general(self, *args)

    monkeypatch.setattr(openai_adapter.OpenAIAdapter, "_message_parts", counted)
    _parse(message)
    assert len(calls) == 1
