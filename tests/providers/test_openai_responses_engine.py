"""The Responses adapter through the Engine and the real transport, against a local mock
serving recorded answers: chosen by the ``openai-responses/`` prefix and by configuration."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import ChatRequest, Message, ResponseFormat
from cloverleaf.transport import Transport
from tests.providers._openai_replay import PA, interaction

R = f"{PA}/test_openai_responses"
SEEN: list[httpx.Request] = []


def upstream(request: httpx.Request) -> httpx.Response:
    SEEN.append(request)
    body = json.loads(request.content)
    if body.get("temperature") == -1:
        rec = interaction(f"{R}/test_openai_responses_model_http_error.yaml")
    elif body.get("stream"):
        rec = interaction(f"{R}/test_openai_responses_stream.yaml", 1)
    elif "text" in body:
        rec = interaction(f"{R}/test_native_output.yaml", 1)
    else:
        rec = interaction(f"{R}/test_openai_responses_model_simple_response.yaml")
    resp = rec.response
    return httpx.Response(resp.status, headers=resp.headers, stream=httpx.ByteStream(resp.body))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    SEEN.clear()
    toml = tmp_path / "cloverleaf.toml"
    toml.write_text('[providers.my-azure-v1]\nkind = "openai_responses"\n'
                    'base_url = "https://example.openai.azure.com/openai/v1"\napi_key_env = "AZURE_KEY"\n')
    transport = Transport(mounts={"all://": httpx.MockTransport(upstream)})
    return Engine(Settings.load(toml, env={"OPENAI_API_KEY": "sk-openai", "AZURE_KEY": "az-key"}),
                  transport=transport)


def test_prefix_chat_stream_structured_and_error(engine: Engine) -> None:
    target = engine.resolve("openai-responses/gpt-4o")
    resp = engine.chat(target, ChatRequest("gpt-4o", [Message.user("What is the capital of France?")]))
    assert resp.text == "The capital of France is Paris." and resp.provider == "openai-responses"
    assert str(SEEN[-1].url) == "https://api.openai.com/v1/responses"
    assert SEEN[-1].headers["authorization"] == "Bearer sk-openai"

    events = list(engine.stream(target, ChatRequest("gpt-4o", [Message.user("capital?")], stream=True)))
    assert events[-1].type == "done" and events[-1].response is not None
    assert events[-1].response.text == "The capital of France is Paris."

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    out = engine.chat(target, ChatRequest("gpt-4o", [Message.user("largest city?")],
                                          response_format=ResponseFormat(schema=schema, name="CityLocation")))
    assert out.parsed == {"city": "Mexico City", "country": "Mexico"}

    calls = len(SEEN)
    with pytest.raises(InvalidRequestError, match="temperature"):
        engine.chat(target, ChatRequest("gpt-4o", [Message.user("x")], temperature=-1))
    assert len(SEEN) == calls + 1  # a 400 is not retried


def test_configured_provider_kind(engine: Engine) -> None:
    target = engine.resolve("my-azure-v1/gpt-5.2-chat")
    resp = engine.chat(target, ChatRequest("gpt-5.2-chat", [Message.user("hi")]))
    assert resp.text and resp.provider == "my-azure-v1"
    assert str(SEEN[-1].url) == "https://example.openai.azure.com/openai/v1/responses"
    assert SEEN[-1].headers["authorization"] == "Bearer az-key"
