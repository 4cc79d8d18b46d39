"""Bedrock through the Engine and the real transport, against a local mock that checks signatures."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import AuthenticationError
from cloverleaf._http import HttpRequest
from cloverleaf._types import ChatRequest, Document, EmbeddingRequest, Message, ReasoningConfig, Text
from cloverleaf.providers.bedrock.auth import StaticCredentials, sign_request
from cloverleaf.transport import Transport
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_bedrock/"
TITAN = "pydantic-ai/tests/cassettes/test_embeddings/TestBedrock.test_titan_v2_multiple_texts.yaml"
CREDS = StaticCredentials("AKIDENGINE", "engine-secret")


def verify_signature(request: httpx.Request) -> None:
    """Re-sign what actually arrived, with the same keys and instant: the signatures must agree."""
    auth = request.headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: request.headers[name] for name in signed if name not in ("host", "x-amz-date")}
    when = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert "%3A" in str(request.url)  # the quoted model id arrives as built
    again = sign_request(HttpRequest(request.method, str(request.url), headers, request.content), CREDS, "us-east-1", when)
    assert again.headers["authorization"] == auth


def upstream(request: httpx.Request) -> httpx.Response:
    verify_signature(request)
    path = request.url.raw_path.decode()
    if path.endswith("/converse-stream"):
        resp = cassette(REC + "test_bedrock_model_stream.yaml")[0].response
    elif path.endswith("/converse"):
        resp = cassette(REC + "test_bedrock_model.yaml")[0].response
    else:
        text = json.loads(request.content)["inputText"]
        resp = next(i.response for i in cassette(TITAN) if i.request_json["inputText"] == text)
    return httpx.Response(resp.status, headers=resp.headers, stream=httpx.ByteStream(resp.body))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    toml = tmp_path / "cloverleaf.toml"
    toml.write_text('[providers.bedrock]\nextra = { region = "us-east-1", aws_access_key_id = "AKIDENGINE", '
                    'aws_secret_access_key = "engine-secret" }\n')
    transport = Transport(mounts={"all://": httpx.MockTransport(upstream)})
    return Engine(Settings.load(toml, env={}), transport=transport)


def test_chat_stream_and_embeddings_end_to_end(engine: Engine) -> None:
    target = engine.resolve("bedrock/us.amazon.nova-micro-v1:0")
    out = engine.chat(target, ChatRequest("ignored", [Message.user("Hello!")]))
    assert out.text.startswith("Hello! How can I assist you today?") and out.usage.output_tokens == 30

    events = list(engine.stream(target, ChatRequest("ignored", [Message.user("Hello!")])))
    assert events[-1].type == "done" and events[-1].response is not None
    assert events[-1].response.text.startswith("The capital of France is Paris.")

    titan = engine.resolve("bedrock/amazon.titan-embed-text-v2:0")
    emb = engine.embed(titan, EmbeddingRequest("ignored", ["hello", "world"]))
    assert [len(v) for v in emb.vectors] == [1024, 1024] and emb.usage.input_tokens == 4


ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5"
CONVERSE_ANSWER = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
                   "stopReason": "end_turn", "usage": {"inputTokens": 10, "outputTokens": 1, "totalTokens": 11}}


def test_an_application_inference_profile_marked_claude_follows_claudes_rules(tmp_path: Path) -> None:
    """An application inference profile's ARN names no model: ``model_family = "anthropic"`` on
    the model's entry makes it Claude, so it is asked for thinking, keeps its documents (with
    citations) and gets context edits, where before reasoning was refused and documents flattened."""
    bodies: list[dict] = []

    def claude_upstream(request: httpx.Request) -> httpx.Response:
        verify_signature(request)
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=CONVERSE_ANSWER)

    toml = tmp_path / "cloverleaf.toml"
    toml.write_text('[providers.bedrock]\nextra = { region = "us-east-1", aws_access_key_id = "AKIDENGINE", '
                    'aws_secret_access_key = "engine-secret" }\n'
                    f'[[models]]\nname = "claude-app"\nprovider = "bedrock"\nidentifier = "{ARN}"\n'
                    'additional_config = { model_family = "anthropic" }\n')
    engine = Engine(Settings.load(toml, env={}), transport=Transport(mounts={"all://": httpx.MockTransport(
        claude_upstream)}))
    target = engine.resolve("claude-app")
    doc = Document("Refunds are accepted within 30 days.", title="Refund policy", citations=True)
    engine.chat(target, ChatRequest("ignored", [Message.user([doc, Text("How long?")])],
                                    reasoning=ReasoningConfig(effort="high"),
                                    context_management={"edits": [{"type": "clear_tool_uses_20250919"}]}))
    fields = bodies[-1]["additionalModelRequestFields"]
    assert fields["thinking"]["type"] == "enabled" and fields["context_management"]["edits"]
    assert bodies[-1]["messages"][0]["content"][0] == {"document": {
        "format": "txt", "name": "Refund policy", "source": {"text": "Refunds are accepted within 30 days."},
        "citations": {"enabled": True}}}


def test_keys_rotated_in_the_credentials_file_are_used_after_aws_calls_the_old_ones_expired(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-running server signing with the shared credentials file's keys: a rotation tool
    writes new temporary keys there, and the server kept the old ones, every call refused as
    expired until a restart. After AWS's ExpiredTokenException the next call reads the file again."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n"
                           "aws_session_token = old-token\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    seen: list[str] = []

    def rotating_upstream(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].split("Credential=")[1].split("/")[0]
        seen.append(key)
        if key != "AKIANEW":
            return httpx.Response(403, headers={"x-amzn-errortype": "ExpiredTokenException:http://internal.amazon.com/"},
                                  json={"message": "The security token included in the request is expired"})
        return httpx.Response(200, json=CONVERSE_ANSWER)

    toml = tmp_path / "cloverleaf.toml"
    toml.write_text('[providers.bedrock]\nextra = { region = "us-east-1" }\n')
    engine = Engine(Settings.load(toml, env={}), transport=Transport(mounts={"all://": httpx.MockTransport(
        rotating_upstream)}))
    target = engine.resolve("bedrock/us.amazon.nova-micro-v1:0")
    with pytest.raises(AuthenticationError, match="expired"):
        engine.chat(target, ChatRequest("ignored", [Message.user("Hello!")]))
    credentials.write_text("[default]\naws_access_key_id = AKIANEW\naws_secret_access_key = new\n"
                           "aws_session_token = new-token\n")
    assert engine.chat(target, ChatRequest("ignored", [Message.user("Hello!")])).text == "ok"
    assert seen[0] == "AKIAOLD" and seen[-1] == "AKIANEW"
