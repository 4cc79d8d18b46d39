"""An attachment in a system message, and a Document there, for each provider.

Anthropic, Bedrock, Gemini and the Responses API take a system prompt of text only; their
encoders kept only its text, so an image there was dropped (after a URL attachment had even
been downloaded) and the call succeeded without the model ever seeing it. Now the engine's
pre-send check refuses it, naming the provider and what to do, before anything is downloaded
or sent; OpenAI Chat Completions and Ollama, which take attachments in a system turn, get it.
A Document of text only in a system message is read as system text by every provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Attachment, Client, Document, Message, Role, Text, UnsupportedCapability
from cloverleaf._types import ChatRequest

from .upstream import Reply, Upstream

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
TEXT_ONLY_SYSTEM = ["anthropic/claude-sonnet-4-5", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                    "gemini/gemini-2.5-flash", "vertex/gemini-2.5-flash", "openai-responses/gpt-4o"]
ENV = {"ANTHROPIC_API_KEY": "sk-ant-test", "GEMINI_API_KEY": "g-test", "OPENAI_API_KEY": "sk-test",
       "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
       "GOOGLE_CLOUD_PROJECT": "my-project"}


@pytest.fixture(autouse=True)
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bedrock signs with botocore's credential chain, which reads the process environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(name, ENV[name])


def _client() -> Client:
    return Client(env=ENV, max_retries=0, attachments={"allow_networks": ("127.0.0.1/32",)})


@pytest.mark.parametrize("model", TEXT_ONLY_SYSTEM)
@pytest.mark.parametrize("wrapped", [False, True], ids=["attachment", "document-with-an-image"])
def test_an_attachment_in_a_system_message_is_refused_before_anything_is_downloaded_or_sent(
        upstream: Upstream, model: str, wrapped: bool) -> None:
    image: Any = Attachment(source=f"{upstream.url}/media/image.png")
    if wrapped:
        image = Document([Text("The logo:"), image], title="Logo")
    system = Message(Role.SYSTEM, [Text("Answer about this logo:"), image])
    with _client() as client, pytest.raises(UnsupportedCapability) as err:
        client.chat(model, [system, Message.user("what colour is the logo?")], base_url=upstream.url)
    message = str(err.value)
    assert f"provider {model.split('/')[0]!r}" in message
    assert "attachment in a system message" in message and "put the image, PDF or audio in a user message" in message
    assert upstream.seen == []   # neither the image downloaded nor the provider called


@pytest.mark.parametrize("model", ["openai/gpt-4o", "ollama/llava"])
def test_providers_whose_system_turn_takes_attachments_get_it(upstream: Upstream, model: str) -> None:
    if model.startswith("openai/"):
        answer = {"id": "c", "object": "chat.completion", "model": "gpt-4o", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "red"}, "finish_reason": "stop"}]}
        base_url = f"{upstream.url}/v1"
    else:
        answer = {"model": "llava", "message": {"role": "assistant", "content": "red"}, "done": True,
                  "done_reason": "stop"}
        base_url = upstream.url
    upstream.queue(Reply(body=json.dumps(answer).encode()))
    png = (MEDIA / "image.png").read_bytes()
    system = Message(Role.SYSTEM, [Text("Answer about this logo:"), Attachment(source=png)])
    with _client() as client:
        r = client.chat(model, [system, Message.user("what colour is the logo?")], base_url=base_url)
    assert r.content == "red"
    sent = json.loads(upstream.seen[-1].body)["messages"][0]
    assert sent["role"] == "system" and ("image_url" in json.dumps(sent) or sent.get("images"))


def _built(model: str, messages: list[Message]) -> dict[str, Any]:
    """The body the engine would send (the path ``cloverleaf chat --dry-run`` takes)."""
    with _client() as client:
        target = client.engine.resolve(model, base_url="http://127.0.0.1:9", api_key="k")
        req = client.engine._resolve_attachments(target, ChatRequest(target.model, messages))
        body = client.engine._build_chat(target, req).json()
    assert isinstance(body, dict)
    return body


def _system_text(model: str, body: dict[str, Any]) -> str:
    provider = model.split("/")[0]
    if provider == "anthropic":
        return str(body["system"])
    if provider == "bedrock":
        return "\n".join(block["text"] for block in body["system"] if "text" in block)
    if provider in ("gemini", "vertex"):
        return "".join(p["text"] for p in body["systemInstruction"]["parts"])
    if provider == "openai-responses":
        return str(body["instructions"])
    return str(body["messages"][0]["content"])


@pytest.mark.parametrize("model", [*TEXT_ONLY_SYSTEM, "openai/gpt-4o", "ollama/llama3.1"])
def test_a_text_document_in_a_system_message_is_read_as_system_text(model: str) -> None:
    policy = Document("Refunds are accepted within 30 days of purchase.", title="Refund policy",
                      context="The shop's terms")
    body = _built(model, [Message(Role.SYSTEM, [Text("Answer from this policy:"), policy]),
                          Message.user("How long do I have to return it?")])
    system = _system_text(model, body)
    assert "Answer from this policy:" in system and "Refunds are accepted within 30 days of purchase." in system
    assert "Document: Refund policy" in system and "policy:Document" not in system
    assert "How long" not in system
