"""End to end: Client -> engine -> Gemini adapter -> a mock upstream replaying recordings."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import BaseModel

from cloverleaf import Client
from cloverleaf._errors import NotFoundError
from tests.providers.test_gemini_support import EMBED, GOOGLE, KEY
from tests.wire import Interaction, cassette


def _client(recording: Interaction, sent: list[httpx.Request], content_type: str = "application/json") -> Client:
    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        body = recording.response.body
        return httpx.Response(recording.response.status, headers={"content-type": content_type},
                              stream=httpx.ByteStream(body))

    client = Client()
    client.engine.transport.mount("all://", httpx.MockTransport(upstream))
    return client


def test_structured_output_validates_into_the_model():
    class CityLocation(BaseModel):
        city: str
        country: str

    sent: list[httpx.Request] = []
    client = _client(cassette(GOOGLE + "test_google_native_output.yaml")[0], sent)
    resp = client.chat("gemini/gemini-2.0-flash", "What is the largest city in Mexico?",
                       response_format=CityLocation, api_key=KEY)
    assert resp.parsed == CityLocation(city="Mexico City", country="Mexico")
    assert sent[0].headers["x-goog-api-key"] == KEY and "key=" not in str(sent[0].url)
    body = json.loads(sent[0].content)
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"]["required"] == ["city", "country"]


def test_stream_through_the_client():
    sent: list[httpx.Request] = []
    client = _client(cassette(GOOGLE + "test_google_model_stream.yaml")[0], sent, "text/event-stream")
    events = list(client.stream("gemini/gemini-2.0-flash-exp", "What is the capital of France?", api_key=KEY))
    assert "".join(e.text or "" for e in events if e.type == "text") == "The capital of France is Paris.\n"
    done = events[-1]
    assert done.type == "done" and done.response is not None
    assert done.response.usage.input_tokens == 13 and done.response.finish_reason == "stop"
    assert str(sent[0].url).endswith(":streamGenerateContent?alt=sse")


def test_recorded_404_raises_not_found():
    sent: list[httpx.Request] = []
    client = _client(cassette(EMBED + "TestGoogle.test_embed_error.yaml")[0], sent)
    with pytest.raises(NotFoundError, match="nonexistent-model"):
        client.embed("gemini/nonexistent-model", ["Hello, world!", "again"], api_key=KEY)
