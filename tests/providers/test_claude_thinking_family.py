"""Claude's signed thinking is one family on Anthropic's API, Bedrock and Vertex AI.

The signatures are the model's, so a conversation that moves between ``anthropic/``,
``bedrock/`` (Claude) and ``vertex/claude-...`` (a gateway's fallback) keeps its thinking and
redacted thinking blocks in every direction; Gemini, which shares the ``vertex`` row with Claude,
never gets Claude's. Each answer is read by its own adapter (whole, and streamed through the
engine from the mock Google), and the next turn is built by another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Reasoning, ReasoningConfig
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials
from cloverleaf.providers.registry import get_adapter, get_spec

from .vertex_mock import GoogleMock, new_key, write_service_account

ANTHROPIC = AnthropicAdapter(get_spec("anthropic"))
BEDROCK = BedrockAdapter(get_spec("bedrock"))
GEMINI_ON_VERTEX = get_adapter(get_spec("vertex"))
CLAUDE_ON_VERTEX = GEMINI_ON_VERTEX.for_model("claude-sonnet-4-5@20250929")
ANTHROPIC_CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
BEDROCK_CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="", extra={
    "region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"})
VERTEX_CFG = ProviderConfig("vertex", "gemini", "https://aiplatform.googleapis.com/v1/projects/p/locations/global/"
                            "publishers/google", extra={"location": "global"})
THINK = ReasoningConfig(budget_tokens=2048)
#: Claude's answer with a thinking block, a redacted one and text, as Anthropic and Vertex AI send it
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "thinking", "thinking": "Paris is in France.", "signature": "EqQBsig-claude"},
                       {"type": "redacted_thinking", "data": "EmwKAhgBredacted"},
                       {"type": "text", "text": "Paris."}],
           "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 20}}
ANTHROPIC_BLOCKS = [{"type": "thinking", "thinking": "Paris is in France.", "signature": "EqQBsig-claude"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBredacted"}, {"type": "text", "text": "Paris."}]
BEDROCK_BLOCKS = [{"reasoningContent": {"reasoningText": {"text": "Paris is in France.",
                                                          "signature": "EqQBsig-claude"}}},
                  {"reasoningContent": {"redactedContent": "EmwKAhgBredacted"}}, {"text": "Paris."}]
BEDROCK_ANSWER = {"output": {"message": {"role": "assistant", "content": BEDROCK_BLOCKS}}, "stopReason": "end_turn",
                  "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}}


def _history(answer: ChatResponse) -> list[Message]:
    return [Message.user("Capital of France?"), answer.to_message(), Message.user("And of Italy?")]


def _assistant(adapter: Any, cfg: ProviderConfig, model: str, answer: ChatResponse) -> Any:
    body = json.loads(adapter.build_chat(ChatRequest(model, _history(answer), reasoning=THINK), cfg).body or b"")
    return body["messages"][1]["content"] if "messages" in body else body["contents"][1]["parts"]


def _read(adapter: Any, payload: dict[str, Any], model: str) -> ChatResponse:
    resp = HttpResponse(200, {}, json.dumps(payload).encode())
    return adapter.parse_chat(resp, ChatRequest(model, [Message.user("Capital of France?")], reasoning=THINK))


def test_thinking_from_claude_on_vertex_goes_back_to_anthropic_and_bedrock() -> None:
    answer = _read(CLAUDE_ON_VERTEX, MESSAGE, "claude-sonnet-4-5@20250929")
    assert answer.provider == "vertex"
    assert _assistant(ANTHROPIC, ANTHROPIC_CFG, "claude-sonnet-4-5", answer) == ANTHROPIC_BLOCKS
    assert _assistant(BEDROCK, BEDROCK_CFG, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", answer) == BEDROCK_BLOCKS
    assert _assistant(CLAUDE_ON_VERTEX, VERTEX_CFG, "claude-sonnet-4-5@20250929", answer) == ANTHROPIC_BLOCKS


def test_thinking_from_anthropic_and_bedrock_goes_to_claude_on_vertex() -> None:
    for answer in (_read(ANTHROPIC, MESSAGE, "claude-sonnet-4-5"),
                   _read(BEDROCK, BEDROCK_ANSWER, "us.anthropic.claude-sonnet-4-5-20250929-v1:0")):
        assert _assistant(CLAUDE_ON_VERTEX, VERTEX_CFG, "claude-sonnet-4-5@20250929", answer) == ANTHROPIC_BLOCKS


def test_claudes_thinking_on_vertex_never_reaches_gemini_on_the_same_row() -> None:
    answer = _read(CLAUDE_ON_VERTEX, MESSAGE, "claude-sonnet-4-5@20250929")
    assert _assistant(GEMINI_ON_VERTEX, VERTEX_CFG, "gemini-2.5-pro", answer) == [{"text": "Paris."}]


# --------------------------------------------------------------------------- streamed, through the engine


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


STREAM = _sse([
    {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Paris is in France."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBsig-claude"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1,
     "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBredacted"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Paris."}},
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 20}},
    {"type": "message_stop"},
])


@pytest.fixture()
def google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[GoogleMock, Path]]:
    monkeypatch.setattr(get_adapter(get_spec("vertex")), "vertex", VertexCredentials("vertex"))
    key = new_key()
    mock = GoogleMock(accounts={"runner@proj-123.iam.gserviceaccount.com": key.public_key()}).start()
    yield mock, write_service_account(tmp_path / "sa.json", key, mock.token_uri)
    mock.close()


def test_streamed_thinking_from_claude_on_vertex_goes_back_to_anthropic(google: tuple[GoogleMock, Path]) -> None:
    mock, account = google
    mock.replies.append((200, "text/event-stream", STREAM))
    vertex = ProviderSettings("vertex", base_url=mock.url, extra={"location": "us-east5",
                                                                  "credentials_file": str(account)})
    with Client(Settings(env={}, max_retries=0, providers={"vertex": vertex})) as client:
        stream = client.stream("vertex/claude-sonnet-4-5@20250929", "Capital of France?", reasoning=THINK)
        for _ in stream:
            pass
        answer = stream.response
    assert answer is not None and [type(p) for p in answer.parts[:2]] == [Reasoning, Reasoning]
    assert _assistant(ANTHROPIC, ANTHROPIC_CFG, "claude-sonnet-4-5", answer) == ANTHROPIC_BLOCKS
