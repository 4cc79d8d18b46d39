"""Provider extras through the server: a search model's sources are ``annotations`` of a Chat
Completions answer, and an image a model generated (a Gemini answer's Attachment part) is never
a 5xx in any of the three APIs: Chat Completions has no image content in an assistant message,
so the image is in ``message.images`` (OpenRouter's form of image output); the Messages and
Responses APIs, which have no image output, answer with the text. Mock upstreams behind a live
server, read with the official SDKs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16
IMAGE_ANSWER = {"candidates": [{"content": {"role": "model", "parts": [
    {"text": "Here is your cat:"}, {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}]},
    "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11}}
ANNOTATION = {"type": "url_citation", "url_citation": {"url": "https://www.uefa.com/euro2024/", "title": "UEFA",
                                                       "start_index": 20, "end_index": 30}}
ASK: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=upstream.url, api_key="sk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


@pytest.fixture(autouse=True)
def fresh_queue(upstream: Upstream) -> None:
    with upstream.lock:
        upstream.replies.clear()


def _gemini(streamed: bool) -> Reply:
    if not streamed:
        return Reply(body=json.dumps(IMAGE_ANSWER).encode())
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[b"data: " + json.dumps(IMAGE_ANSWER).encode() + b"\r\n\r\n"])


def test_url_citations_are_annotations_of_the_answer(live: Live, upstream: Upstream) -> None:
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-search-preview",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "Spain won Euro 2024 [uefa.com].", "annotations": [ANNOTATION]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
    upstream.queue(Reply(body=json.dumps(body).encode()))
    resp = live.openai().chat.completions.create(model="oai/gpt-4o-search-preview", messages=ASK)
    [annotation] = resp.choices[0].message.annotations or []
    assert annotation.model_dump() == ANNOTATION


@pytest.mark.parametrize("streamed", [False, True])
def test_a_generated_image_is_in_message_images_on_chat_completions(live: Live, upstream: Upstream,
                                                                   streamed: bool) -> None:
    upstream.queue(_gemini(streamed=False))
    resp = live.openai().chat.completions.create(model="gem/gemini-2.5-flash-image", messages=ASK)
    message = resp.choices[0].message
    assert message.content == "Here is your cat:"
    assert (message.model_extra or {})["images"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}]
    upstream.queue(_gemini(streamed=True))
    chunks = list(live.openai().chat.completions.create(model="gem/gemini-2.5-flash-image", messages=ASK,
                                                        stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Here is your cat:"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_generated_image_is_no_error_on_messages_and_responses(live: Live, upstream: Upstream,
                                                                streamed: bool) -> None:
    upstream.queue(_gemini(streamed))
    claude = live.anthropic()
    if streamed:
        with claude.messages.stream(model="gem/gemini-2.5-flash-image", max_tokens=100, messages=ASK) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(model="gem/gemini-2.5-flash-image", max_tokens=100, messages=ASK)
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Here is your cat:")]
    upstream.queue(_gemini(streamed))
    if streamed:
        with live.openai().responses.stream(model="gem/gemini-2.5-flash-image", input="hi") as rs:
            resp = rs.get_final_response()
    else:
        resp = live.openai().responses.create(model="gem/gemini-2.5-flash-image", input="hi")
    assert resp.output_text == "Here is your cat:"
