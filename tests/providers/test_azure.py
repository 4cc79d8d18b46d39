"""Azure OpenAI: the OpenAI wire format at a deployment URL (crewAI and pydantic-ai recordings)."""

from __future__ import annotations

import pytest

from cloverleaf._errors import ConfigError, ContentFilterError, NotFoundError
from cloverleaf._types import Attachment, ChatRequest, EmbeddingRequest, Message, Text, Tool, ToolChoice
from cloverleaf.providers.azure.adapter import AzureOpenAIAdapter
from cloverleaf.providers.openai.adapter import OpenAIAdapter
from tests.providers._openai_replay import (
    CREW,
    adapter,
    config,
    interaction,
    recorded_chunks,
    replay_chat,
    replay_stream,
)

BASE = "https://fake-azure-endpoint.openai.azure.com/openai/deployments/gpt-4o-mini"
AZ = f"{CREW}/llms/azure"
SYN = "../synthetic/azure"


def azure_config(**extra: object):
    return config("azure", base_url=BASE, **extra)


def test_is_the_openai_adapter_not_a_copy() -> None:
    assert issubclass(AzureOpenAIAdapter, OpenAIAdapter)
    assert AzureOpenAIAdapter.parse_chat is OpenAIAdapter.parse_chat
    assert AzureOpenAIAdapter.build_chat is OpenAIAdapter.build_chat


def test_url_api_version_and_api_key_header() -> None:
    req = ChatRequest("gpt-4o-mini", [Message.user("hi")])
    http = adapter("azure").build_chat(req, azure_config())
    assert http.url == f"{BASE}/chat/completions?api-version=2025-04-01-preview"
    assert http.headers["api-key"] == "sk-test-secret" and "Authorization" not in http.headers
    assert http.redacted_headers()["api-key"] == "<redacted>"
    newer = adapter("azure").build_chat(req, azure_config(api_version="2024-12-01-preview"))
    assert newer.url.endswith("?api-version=2024-12-01-preview")
    recorded = interaction(f"{AZ}/test_azure_async_with_max_tokens.yaml")
    assert recorded.uri == f"{BASE}/chat/completions?api-version=2024-12-01-preview"  # what crewAI sent


def test_v1_base_gets_no_api_version_and_entra_token_is_bearer() -> None:
    cfg = config("azure", base_url="https://res.openai.azure.com/openai/v1", azure_ad_token="eyJ-token")
    http = adapter("azure").build_chat(ChatRequest("gpt-4o", [Message.user("x")]), cfg)
    assert http.url == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer eyJ-token" and "api-key" not in http.headers


def test_resource_root_takes_the_deployment_from_the_model() -> None:
    cfg = config("azure", base_url="https://res.openai.azure.com/")
    http = adapter("azure").build_chat(ChatRequest("my-gpt4o", [Message.user("x")]), cfg)
    assert http.url == ("https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions"
                        "?api-version=2025-04-01-preview")
    emb = adapter("azure").build_embed(EmbeddingRequest("my-embed", ["x"]), cfg)
    assert emb.url.startswith("https://res.openai.azure.com/openai/deployments/my-embed/embeddings?")


def test_missing_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="deployments/DEPLOYMENT"):
        adapter("azure").build_chat(ChatRequest("x", [Message.user("x")]), config("azure", base_url=""))


def test_chat_with_max_tokens_matches_recording_and_keeps_filter_results() -> None:
    path = f"{AZ}/test_azure_async_with_max_tokens.yaml"
    recorded = interaction(path)
    req = ChatRequest("gpt-4o-mini", [Message.user("Write a very long story about a dragon.")], max_tokens=10)
    built = adapter("azure").build_chat(req, azure_config()).json()
    assert {k: v for k, v in built.items() if k != "model"} == {k: v for k, v in recorded.request_json.items()
                                                                if k != "stream"}
    resp = replay_chat("azure", path, req)
    assert resp.text == "Once upon a time, in a realm where magic"
    assert (resp.finish_reason, resp.usage.input_tokens, resp.usage.output_tokens) == ("length", 16, 10)
    data = recorded.response.json()
    assert resp.metadata.extra["prompt_filter_results"] == data["prompt_filter_results"]
    assert resp.metadata.extra["content_filter_results"] == data["choices"][0]["content_filter_results"]


def test_system_message() -> None:
    path = f"{AZ}/test_azure_async_with_system_message.yaml"
    req = ChatRequest("gpt-4o-mini", [Message.system("You are a helpful assistant."), Message.user("What is 2+2?")])
    assert adapter("azure").build_chat(req, azure_config()).json()["messages"] == interaction(path).request_json["messages"]
    assert replay_chat("azure", path, req).text == "2 + 2 equals 4."


def test_pydantic_ai_recording_with_model_in_body() -> None:
    path = "pydantic-ai/tests/providers/cassettes/test_azure/test_azure_provider_call.yaml"
    resp = replay_chat("azure", path, ChatRequest("gpt-4o", [Message.user("What is the capital of France?")]))
    assert resp.text == "The capital of France is **Paris**."
    assert resp.model == interaction(path).response.json()["model"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (14, 9)


def test_streaming_with_empty_first_chunk_and_usage() -> None:
    path = f"{AZ}/test_azure_streaming_completion.yaml"
    req = ChatRequest("gpt-4o-mini", [Message.user("Hello")], stream=True)
    assert adapter("azure").build_chat(req, azure_config()).json()["stream_options"] == \
        interaction(path).request_json["stream_options"]
    events, resp = replay_stream("azure", path, req)
    first = recorded_chunks(path)[0]
    assert first["choices"] == [] and first["model"] == ""
    assert resp.text == "Hello! How can I assist you today?"
    assert resp.model == "gpt-4o-mini-2024-07-18"  # the blank model of the first chunk is not kept
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.finish_reason) == (9, 10, "stop")
    assert resp.metadata.extra["prompt_filter_results"] == first["prompt_filter_results"]


def test_streamed_tool_call() -> None:
    path = f"{CREW}/llms/TestAzureToolCallStreaming.test_azure_streaming_emits_tool_call_events.yaml"
    recorded = interaction(path).request_json
    fn = recorded["tools"][0]["function"]
    req = ChatRequest("gpt-4o-mini", [Message.user("What is the temperature in San Francisco?")], stream=True,
                      tools=[Tool(fn["name"], fn["description"], fn["parameters"])], tool_choice=ToolChoice("auto"))
    built = adapter("azure").build_chat(req, azure_config()).json()
    assert (built["tools"], built["messages"], built["tool_choice"]) == (
        recorded["tools"], recorded["messages"], recorded["tool_choice"])
    _, resp = replay_stream("azure", path, req)
    [call] = resp.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_A6XpaIHt5uNwiDqVxyvKoXMa", "get_current_temperature",
                                                    {"city": "San Francisco"})
    assert (resp.finish_reason, resp.usage.input_tokens, resp.usage.output_tokens) == ("tool_calls", 66, 17)


def test_parallel_tool_calls_and_reasoning_tokens() -> None:
    path = f"{CREW}/agents/TestAzureNativeToolCalling.test_azure_parallel_native_tool_calling_test_agent_kickoff.yaml"
    resp = replay_chat("azure", path, ChatRequest("gpt-5-nano", [Message.user("search")]), 0)
    recorded = interaction(path, 0).response.json()["choices"][0]["message"]["tool_calls"]
    assert [c.name for c in resp.tool_calls] == [c["function"]["name"] for c in recorded]
    assert [c.arguments["query"] for c in resp.tool_calls] == [
        "latest OpenAI model release notes", "latest Anthropic model release notes", "latest Gemini model release notes"]
    assert resp.usage.reasoning_tokens == 576


def test_structured_output_recording() -> None:
    path = f"{AZ}/test_azure_agent_kickoff_structured_output_without_tools.yaml"
    recorded = interaction(path, 0)
    fmt = recorded.request_json["response_format"]
    assert fmt["type"] == "json_schema"
    import json

    resp = replay_chat("azure", path, ChatRequest("gpt-4o-mini", [Message.user("remote work")]), 0)
    parsed = json.loads(resp.text)
    assert parsed["topic"] == "Benefits of Remote Work" and set(parsed) >= set(fmt["json_schema"]["schema"]["required"])


def test_image_input() -> None:
    path = f"{CREW}/llms/TestAzureMultimodalIntegration.test_describe_image.yaml"
    content = interaction(path).request_json["messages"][0]["content"]
    url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
    text = next(p["text"] for p in content if p["type"] == "text")
    req = ChatRequest("gpt-4o", [Message.user([Text(text), Attachment(type="image", url=url, fetch="provider")])])
    built = adapter("azure").build_chat(req, config("azure", base_url=BASE)).json()["messages"][0]["content"]
    assert sorted(built, key=lambda p: p["type"]) == sorted(content, key=lambda p: p["type"])
    assert replay_chat("azure", path, req).text.startswith("The graph shows a steady linear increase")


def test_404_wrong_base_url_says_what_to_fix() -> None:
    path = f"{CREW}/llms/openai/test_openai_is_default_provider_without_explicit_llm_set_on_agent.yaml"
    for i in range(3):
        err = adapter("azure").parse_error(interaction(path, i).response, "gpt-4.1-mini")
        assert type(err) is NotFoundError and err.status == 404
        assert "Resource not found" in str(err) and "/openai/deployments/" in str(err)


SAFE = {"filtered": False, "severity": "safe"}


def test_content_filter_error() -> None:
    """Which category tripped Azure's filter (its 400's ``innererror``) was dropped; it is kept."""
    err = adapter("azure").parse_error(interaction(f"{SYN}/error_content_filter.yaml").response, "gpt-4o-mini")
    assert type(err) is ContentFilterError and err.code == "content_filter" and err.status == 400
    assert err.innererror == {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": {"filtered": True, "severity": "high"}}}
    assert "filtered: violence (high)" in str(err)


def test_content_filter_finish_raises() -> None:
    """A cut answer names the category that cut it, whole or streamed."""
    cut = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": {"filtered": True, "severity": "medium"}}
    with pytest.raises(ContentFilterError, match="content filter") as whole:
        replay_chat("azure", f"{SYN}/finish_content_filter.yaml", ChatRequest("gpt-4o-mini", [Message.user("x")]))
    with pytest.raises(ContentFilterError) as streamed:
        replay_stream("azure", f"{SYN}/stream_content_filter.yaml",
                      ChatRequest("gpt-4o-mini", [Message.user("x")], stream=True))
    for caught in (whole, streamed):
        assert caught.value.innererror == {"content_filter_result": cut}
        assert "filtered: violence (medium)" in str(caught.value)


def test_content_filter_details_keep_only_the_verdicts() -> None:
    """What else an entry holds is the upstream's text (a filter error, blocklist ids, citations):
    none of it is kept, whatever it quotes."""
    from cloverleaf._http import HttpResponse

    body = {"error": {"message": "filtered", "code": "content_filter", "innererror": {
        "code": "ResponsibleAIPolicyViolation", "api_key": "sk-live-SECRET", "content_filter_result": {
            "violence": {"filtered": True, "severity": "high", "note": "sk-live-SECRET"},
            "custom_blocklists": {"filtered": True, "details": [{"filtered": True, "id": "sk-live-SECRET"}]},
            "protected_material_code": {"filtered": False, "detected": True,
                                        "citation": {"URL": "https://x/sk-live-SECRET", "license": "MIT"}},
            "error": {"code": "sk-live-SECRET", "message": "sk-live-SECRET"},
            "sk-live-SECRET key": {"filtered": True}, "hate": {"filtered": False, "severity": "sk-live-SECRET"}}}}}
    import json

    err = adapter("azure").parse_error(HttpResponse(400, {"content-type": "application/json"},
                                                    json.dumps(body).encode()), "gpt-4o-mini")
    assert isinstance(err, ContentFilterError)
    assert err.innererror == {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "violence": {"filtered": True, "severity": "high"}, "custom_blocklists": {"filtered": True},
        "protected_material_code": {"filtered": False, "detected": True}, "hate": {"filtered": False}}}
    assert "SECRET" not in json.dumps(err.innererror)


def test_plain_openai_reports_content_filter_finish_without_raising() -> None:
    resp = replay_chat("openai", f"{SYN}/finish_content_filter.yaml", ChatRequest("gpt-4o-mini", [Message.user("x")]))
    assert resp.finish_reason == "content_filter" and resp.text == "Here is how"


def test_embeddings_url_and_base64_vectors() -> None:
    recorded = interaction(f"{SYN}/embeddings.yaml")
    base = "https://fake-azure-endpoint.openai.azure.com/openai/deployments/text-embedding-3-small"
    req = EmbeddingRequest("text-embedding-3-small", ["first", "second"])
    http = adapter("azure").build_embed(req, config("azure", base_url=base))
    assert http.url == recorded.uri and http.json() == recorded.request_json
    resp = adapter("azure").parse_embed(recorded.response, req)
    assert resp.vectors == [[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]] and resp.usage.input_tokens == 2
