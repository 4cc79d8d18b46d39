"""Claude, embeddings and the quota project on Vertex AI, end to end on loopback.

The mock Google (``vertex_mock``) checks the bearer token it issued and records each call; the
tests queue the Claude (``:rawPredict``/``:streamRawPredict``) and embedding (``:predict``)
answers, in Anthropic's and Vertex AI's published shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Attachment, Client, Message, Tool
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import (
    AuthenticationError,
    ConfigError,
    OverloadedError,
    RateLimitError,
    UnsupportedCapability,
)
from cloverleaf._pricing import lookup
from cloverleaf._resolve import CallSettings, ModelRegistry, Resolver
from cloverleaf._types import ChatRequest, Role, Text
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials
from cloverleaf.providers.registry import get_adapter, get_spec

from .api_rules import anthropic_field_problem
from .vertex_mock import GoogleMock, new_key, write_authorized_user, write_service_account

CLAUDE = "vertex/claude-sonnet-4-5@20250929"
ROOT = "/v1/projects/proj-123/locations/us-east5/publishers"
JSON = "application/json"
WEATHER = Tool("get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]})
MESSAGE = {"id": "msg_vrtx_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [{"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_vrtx_1", "name": "get_weather", "input": {"city": "Paris"}}],
           "stop_reason": "tool_use", "stop_sequence": None,
           "usage": {"input_tokens": 1000, "output_tokens": 1000}}


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


STREAM = _sse([
    {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                          "usage": {"input_tokens": 1000, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1,
     "content_block": {"type": "tool_use", "id": "toolu_vrtx_1", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 1000}},
    {"type": "message_stop"},
])


@pytest.fixture(scope="module")
def key() -> Any:
    return new_key()


@pytest.fixture()
def google(key: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleMock]:
    """The mock, and a fresh token cache on the shared ``vertex`` adapter (no token from another test)."""
    monkeypatch.setattr(get_adapter(get_spec("vertex")), "vertex", VertexCredentials("vertex"))
    mock = GoogleMock(accounts={"runner@proj-123.iam.gserviceaccount.com": key.public_key()}).start()
    yield mock
    mock.close()


@pytest.fixture()
def sa_file(tmp_path: Path, key: Any, google: GoogleMock) -> Path:
    return write_service_account(tmp_path / "sa.json", key, google.token_uri)


def settings(google: GoogleMock, env: dict[str, str] | None = None, **extra: Any) -> Settings:
    extra = {"location": "us-east5", **extra}
    return Settings(env=env or {}, max_retries=0,
                    providers={"vertex": ProviderSettings("vertex", base_url=google.url, extra=extra)})


# --------------------------------------------------------------------------- Claude


def test_claude_is_sent_to_raw_predict_as_a_messages_body_without_model(google: GoogleMock, sa_file: Path) -> None:
    google.replies.append((200, JSON, json.dumps(MESSAGE).encode()))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        resp = client.chat(CLAUDE, [Message.system("Be brief."), Message.user("Weather in Paris?")],
                           tools=[WEATHER], max_tokens=512)
    [seen] = google.vertex_requests
    assert seen.path == ROOT + "/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    assert seen.headers["authorization"] == "Bearer ya29.mock-1"
    assert "x-api-key" not in seen.headers and "anthropic-version" not in seen.headers
    assert "x-goog-user-project" not in seen.headers      # a service account key names no quota project
    body = json.loads(seen.body)
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body and "stream" not in body
    assert body["system"] == "Be brief." and body["max_tokens"] == 512
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]
    assert body["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                              "input_schema": WEATHER.parameters}]
    assert resp.provider == "vertex" and resp.content == "Let me check." and resp.finish_reason == "tool_calls"
    [call] = resp.tool_calls
    assert (call.id, call.name, call.arguments) == ("toolu_vrtx_1", "get_weather", {"city": "Paris"})
    assert resp.usage.input_tokens == 1000 and resp.usage.output_tokens == 1000
    listed = lookup("anthropic", "claude-sonnet-4-5")
    assert listed is not None and resp.cost == pytest.approx((3.0 + 15.0) / 1000 * 1.1)   # us-east5: +10%


def test_claude_streams_from_stream_raw_predict_with_its_tool_call(google: GoogleMock, sa_file: Path) -> None:
    google.replies.append((200, "text/event-stream", STREAM))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        events = list(client.stream(CLAUDE, "Weather in Paris?", tools=[WEATHER]))
    [seen] = google.vertex_requests
    assert seen.path == ROOT + "/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    assert seen.headers["accept"] == "text/event-stream"
    body = json.loads(seen.body)
    assert body["stream"] is True and body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    assert "".join(e.text or "" for e in events if e.type == "text") == "Let me check."
    [done] = [e for e in events if e.type == "done"]
    assert done.finish_reason == "tool_calls", [e.type for e in events]
    assert "".join(e.arguments or "" for e in events if e.type.startswith("tool_call")) == '{"city": "Paris"}'
    assert [e.name for e in events if e.type.startswith("tool_call") and e.name] == ["get_weather"]


def test_claude_on_the_global_endpoint_uses_the_bare_host_and_the_list_price(sa_file: Path) -> None:
    s = Settings(env={"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)})
    target = Resolver(s, ModelRegistry()).resolve("vertex/claude-haiku-4-5@20251001", CallSettings())
    target.ready()
    req = target.adapter.build_chat(ChatRequest(model=target.model, messages=[Message.user("hi")]), target.cfg)
    assert req.url == ("https://aiplatform.googleapis.com/v1/projects/proj-123/locations/global/publishers/"
                       "anthropic/models/claude-haiku-4-5@20251001:rawPredict")
    assert target.price == lookup("anthropic", "claude-haiku-4-5")       # global: no regional premium
    regional = Resolver(s, ModelRegistry()).resolve("vertex/claude-sonnet-4@20250514", CallSettings())
    assert regional.price == lookup("anthropic", "claude-sonnet-4")      # older models: one price anywhere
    assert lookup("vertex", "claude-opus-4-1@20250805") == lookup("anthropic", "claude-opus-4-1")


@pytest.mark.parametrize("status, payload, cls, says", [
    (429, {"error": {"code": 429, "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_"
                                            "input_tokens_per_minute_per_base_model", "status": "RESOURCE_EXHAUSTED"}},
     RateLimitError, "Quota exceeded"),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, OverloadedError,
     "Overloaded"),
    (401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                     "status": "UNAUTHENTICATED"}}, AuthenticationError, "Google credentials"),
])
def test_claude_errors_in_either_envelope_map_to_their_class(google: GoogleMock, sa_file: Path, status: int,
                                                             payload: dict[str, Any], cls: type, says: str) -> None:
    google.replies.append((status, JSON, json.dumps(payload).encode()))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        with pytest.raises(cls) as caught:
            client.chat(CLAUDE, "hi")
    assert says in str(caught.value) and "ANTHROPIC_API_KEY" not in str(caught.value)
    assert "ya29" not in str(caught.value)


def test_claude_on_vertex_refuses_what_vertex_cannot_take_before_any_call(google: GoogleMock, sa_file: Path) -> None:
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        with pytest.raises(UnsupportedCapability, match="audio"):
            client.chat(CLAUDE, [Message.user([Attachment(type="audio", data=b"RIFF0000WAVE",
                                                          media_type="audio/wav")])])
    with Client(Settings(env={}, providers={"vertex": ProviderSettings("vertex", api_key="AQ.express")})) as client:
        with pytest.raises(ConfigError, match="Google credentials, not an API key"):
            client.chat(CLAUDE, "hi")
    assert not google.vertex_requests and not google.token_requests


# --------------------------------------------------------------------------- quota project


def test_a_logins_quota_project_travels_as_x_goog_user_project(tmp_path: Path, google: GoogleMock) -> None:
    login = write_authorized_user(tmp_path / "adc.json", google.token_uri)   # quota_project_id "quota-proj"
    env = {"GOOGLE_CLOUD_PROJECT": "proj-123", "GOOGLE_APPLICATION_CREDENTIALS": str(login)}
    google.replies.append((200, JSON, json.dumps(MESSAGE).encode()))
    with Client(settings(google, env)) as client:
        client.chat(CLAUDE, "hi")
        client.chat("vertex/gemini-2.5-flash", "hi")
    assert [s.headers.get("x-goog-user-project") for s in google.vertex_requests] == ["quota-proj", "quota-proj"]
    with Client(settings(google, {**env, "GOOGLE_CLOUD_QUOTA_PROJECT": "billing-proj"})) as client:
        client.chat("vertex/gemini-2.5-flash", "hi")
    assert google.vertex_requests[-1].headers["x-goog-user-project"] == "billing-proj"


def test_a_quota_project_setting_is_checked_and_sent(sa_file: Path) -> None:
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)}
    s = Settings(env=env, providers={"vertex": ProviderSettings("vertex", extra={"quota_project": "bill-42"})})
    target = Resolver(s, ModelRegistry()).resolve("vertex/gemini-2.5-flash", CallSettings())
    req = target.adapter.build_chat(ChatRequest(model=target.model, messages=[Message.user("hi")]), target.cfg)
    assert req.headers["x-goog-user-project"] == "bill-42"
    bad = Settings(env=env, providers={"vertex": ProviderSettings("vertex", extra={"quota_project": "a\r\nx: y"})})
    with pytest.raises(ConfigError, match="quota project"):
        Resolver(bad, ModelRegistry()).resolve("vertex/gemini-2.5-flash", CallSettings()).ready()


# --------------------------------------------------------------------------- embeddings


def _prediction(values: list[float], tokens: int) -> dict[str, Any]:
    return {"embeddings": {"values": values, "statistics": {"token_count": tokens, "truncated": False}}}


def test_text_embeddings_go_to_predict_with_dimensions_and_report_usage(google: GoogleMock, sa_file: Path) -> None:
    answer = {"predictions": [_prediction([0.1, 0.2], 3), _prediction([0.3, 0.4], 4)],
              "metadata": {"billableCharacterCount": 20}}
    google.replies.append((200, JSON, json.dumps(answer).encode()))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        out = client.embed("vertex/text-embedding-005", ["first text", "second text"], dimensions=2,
                           input_type="query")
    [seen] = google.vertex_requests
    assert seen.path == ROOT + "/google/models/text-embedding-005:predict"
    assert json.loads(seen.body) == {
        "instances": [{"content": "first text", "task_type": "RETRIEVAL_QUERY"},
                      {"content": "second text", "task_type": "RETRIEVAL_QUERY"}],
        "parameters": {"autoTruncate": False, "outputDimensionality": 2}}
    assert out.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert out.usage.reported and out.usage.input_tokens == 7


def test_gemini_embedding_on_vertex_sends_one_text_per_call(google: GoogleMock, sa_file: Path) -> None:
    for value, tokens in ((0.5, 2), (0.25, 5)):
        google.replies.append((200, JSON, json.dumps({"predictions": [_prediction([value], tokens)]}).encode()))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        out = client.embed("vertex/gemini-embedding-001", ["a", "b"])
    assert [json.loads(s.body)["instances"] for s in google.vertex_requests] == [[{"content": "a"}],
                                                                                 [{"content": "b"}]]
    assert out.vectors == [[0.5], [0.25]] and out.usage.input_tokens == 7
    assert out.cost is not None     # priced as gemini/gemini-embedding-001


def test_a_refused_embedding_is_a_clear_error(google: GoogleMock, sa_file: Path) -> None:
    error = {"error": {"code": 400, "message": "Unable to submit request because the input token count is 30000 "
                                               "but the model supports up to 20000.", "status": "INVALID_ARGUMENT"}}
    google.replies.append((400, JSON, json.dumps(error).encode()))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        with pytest.raises(Exception) as caught:
            client.embed("vertex/text-embedding-005", ["x" * 10])
    assert type(caught.value).__name__ == "InvalidRequestError" and "20000" in str(caught.value)


# --------------------------------------------------------------------------- beta features


def test_a_callers_betas_reach_claude_on_vertex_only_as_vertex_takes_them(sa_file: Path) -> None:
    """Renamed where Vertex AI's name differs (each name once), the ones it lacks left out; the
    row's own config is not changed, and a call with none left carries no header."""
    s = Settings(env={"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)})
    target = Resolver(s, ModelRegistry()).resolve(CLAUDE, CallSettings())
    target.ready()
    adapter, cfg = target.adapter, target.cfg
    req = ChatRequest(model=target.model, messages=[Message.user("hi")])
    call = adapter.with_client_betas(cfg, ("advanced-tool-use-2025-11-20", "tool-search-tool-2025-10-19",
                                           "files-api-2025-04-14", "web-search-2025-03-05"))
    assert adapter.build_chat(req, call).headers["anthropic-beta"] == "tool-search-tool-2025-10-19,web-search-2025-03-05"
    assert "beta" not in cfg.extra
    assert adapter.with_client_betas(cfg, ("code-execution-2025-05-22",)) is cfg
    assert "anthropic-beta" not in adapter.build_chat(req, cfg).headers


def test_claude_on_vertex_gets_the_messages_api_rules_fitted(google: GoogleMock, sa_file: Path) -> None:
    """Vertex AI serves the Messages API, with its rules: the Anthropic encoder's fitting reaches
    it (whitespace-only stops, system parts and history text left out, a prefill trimmed, a
    temperature above 1 sent as 1, a tool name the API refuses sent in its form and read back)."""
    mcp = Tool("github.create_issue", "Open an issue.", {"type": "object"})
    wire = "github_create_issue"
    google.replies.append((200, JSON, json.dumps({**MESSAGE, "content": [
        {"type": "tool_use", "id": "toolu_vrtx_2", "name": wire, "input": {}}]}).encode()))
    history = [Message(Role.SYSTEM, [Text("Be brief."), Text("\n", cache_control={"type": "ephemeral"})]),
               Message.user("File a bug."), Message.assistant("\n"), Message.user("Now."),
               Message.assistant("Calling ")]
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        resp = client.chat(CLAUDE, history, tools=[mcp], stop=["\n", "END"], temperature=1.5)
    body = json.loads(google.vertex_requests[-1].body)
    assert anthropic_field_problem(body) is None, body
    assert body["stop_sequences"] == ["END"] and body["temperature"] == 1.0
    assert [t["name"] for t in body["tools"]] == [wire]
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "Calling"}]
    assert [c.name for c in resp.tool_calls] == ["github.create_issue"]
