"""The OpenAI-compatible registry rows: a generic ``chat_completions`` server (Cerebras and
Gemini's compatibility endpoint, recorded), and each row's URL, key and dialect."""

from __future__ import annotations

import pytest

from cloverleaf._types import ChatRequest, Message, ResponseFormat, Tool, ToolCall, ToolChoice
from cloverleaf.providers.openai.adapter import OpenAIAdapter
from cloverleaf.providers.registry import get_spec
from tests.providers._openai_replay import PA, adapter, config, interaction, replay_chat

OA = f"{PA}/test_openai"
COMPAT_ROWS = ["groq", "together", "mistral", "deepseek", "fireworks", "openrouter", "perplexity", "xai",
               "lmstudio", "vllm", "localai", "chat_completions"]


def test_cerebras_as_generic_chat_completions_server() -> None:
    path = f"{OA}/test_openai_model_cerebras_provider.yaml"
    recorded = interaction(path)
    req = ChatRequest("llama3.3-70b", [Message.user(recorded.request_json["messages"][0]["content"])])
    http = adapter("chat_completions").build_chat(req, config("chat_completions", base_url="https://api.cerebras.ai/v1"))
    assert http.url == recorded.uri == "https://api.cerebras.ai/v1/chat/completions"
    assert http.json() == {k: v for k, v in recorded.request_json.items() if k != "stream"}
    resp = replay_chat("chat_completions", path, req)
    assert resp.text == "The capital of France is Paris."
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.finish_reason) == (42, 8, "stop")


def test_cerebras_reasoning_field() -> None:
    path = f"{OA}/test_openai_model_cerebras_provider_harmony.yaml"
    resp = replay_chat("chat_completions", path, ChatRequest("gpt-oss-120b", [Message.user("capital of France?")]))
    assert resp.reasoning == interaction(path).response.json()["choices"][0]["message"]["reasoning"]
    assert resp.text == "The capital of France is **Paris**."


def test_cerebras_tool_call_follow_up_request() -> None:
    path = f"{OA}/test_openai_model_cerebras_provider_qwen_3_coder.yaml"
    recorded = interaction(path, 1)
    resp = replay_chat("chat_completions", path, ChatRequest("qwen-3-coder-480b", [Message.user("x")]), 1)
    [call] = resp.tool_calls
    assert (call.name, call.arguments) == ("final_result", {"city": "Paris", "country": "France"})
    assert resp.finish_reason == "tool_calls"
    assert recorded.request_json["tool_choice"] == "auto"


def test_gemini_compat_tool_loop_request() -> None:
    path = f"{OA}/test_compatible_api_with_tool_calls_without_id.yaml"
    recorded = interaction(path, 1).request_json
    tool = Tool("get_current_time", "Get the current time.",
                {"additionalProperties": False, "properties": {}, "type": "object"})
    call_id = recorded["messages"][1]["tool_calls"][0]["id"]
    req = ChatRequest("gemini-2.5-pro-preview-05-06", [
        Message.user("What is the current time?"),
        Message.assistant([ToolCall(call_id, "get_current_time", {}, raw_arguments="{}")]),
        Message.tool(call_id, "Noon")], tools=[tool], tool_choice=ToolChoice("auto"))
    built = adapter("chat_completions").build_chat(
        req, config("chat_completions", base_url="https://generativelanguage.googleapis.com/v1beta/openai")).json()
    assert built["tools"] == recorded["tools"] and built["tool_choice"] == "auto"
    assert built["messages"][0] == recorded["messages"][0]
    assert built["messages"][1] | {"content": None} == recorded["messages"][1] | {"content": None}
    assert built["messages"][2] == recorded["messages"][2]
    assert replay_chat("chat_completions", path, req, 1).text == "The current time is Noon."


@pytest.mark.parametrize("row", COMPAT_ROWS)
def test_every_compat_row_is_served_by_the_openai_adapter(row: str) -> None:
    spec = get_spec(row)
    assert spec.kind == "openai" and isinstance(adapter(row), OpenAIAdapter)
    base = spec.base_url or "http://127.0.0.1:9/v1"
    http = adapter(row).build_chat(ChatRequest("some/model", [Message.user("x")]), config(row, base_url=base))
    assert http.url == base.rstrip("/") + "/chat/completions"
    assert http.json()["model"] == "some/model"
    if spec.key_env:
        assert http.headers["Authorization"] == "Bearer sk-test-secret"


@pytest.mark.parametrize(("row", "url"), [
    ("groq", "https://api.groq.com/openai/v1"), ("together", "https://api.together.xyz/v1"),
    ("mistral", "https://api.mistral.ai/v1"), ("deepseek", "https://api.deepseek.com/v1"),
    ("fireworks", "https://api.fireworks.ai/inference/v1"), ("openrouter", "https://openrouter.ai/api/v1"),
    ("perplexity", "https://api.perplexity.ai"), ("xai", "https://api.x.ai/v1"),
    ("lmstudio", "http://localhost:1234/v1"), ("vllm", "http://localhost:8000/v1"),
    ("localai", "http://localhost:8080/v1"),
])
def test_row_base_urls(row: str, url: str) -> None:
    assert get_spec(row).base_url == url


@pytest.mark.parametrize("row", ["lmstudio", "vllm", "localai"])
def test_local_rows_say_what_to_start(row: str) -> None:
    hint = adapter(row).connect_hint(config(row))
    assert hint and "start" in hint


def test_no_key_means_no_authorization_header() -> None:
    http = adapter("vllm").build_chat(ChatRequest("m", [Message.user("x")]), config("vllm", api_key=None))
    assert "Authorization" not in http.headers


def test_config_headers_are_sent() -> None:
    cfg = config("openrouter")
    cfg.headers["HTTP-Referer"] = "https://example.org"
    http = adapter("openrouter").build_chat(ChatRequest("m", [Message.user("x")]), cfg)
    assert http.headers["HTTP-Referer"] == "https://example.org"


def test_deepseek_reasoning_content_is_read() -> None:
    from cloverleaf._http import HttpResponse

    body = (b'{"id":"x","model":"deepseek-reasoner","choices":[{"index":0,"finish_reason":"stop","message":'
            b'{"role":"assistant","reasoning_content":"think","content":"answer"}}],'
            b'"usage":{"prompt_tokens":5,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":4},'
            b'"prompt_cache_hit_tokens":3}}')
    resp = adapter("deepseek").parse_chat(HttpResponse(200, {}, body), ChatRequest("deepseek-reasoner", []))
    assert (resp.reasoning, resp.text, resp.usage.reasoning_tokens) == ("think", "answer", 4)
    assert resp.usage.cached_tokens == 3  # DeepSeek's prompt_cache_hit_tokens


def test_json_object_mode_for_json_mode_only_rows() -> None:
    body = adapter("deepseek").build_chat(ChatRequest("deepseek-chat", [Message.user("json please")],
                                                      response_format=ResponseFormat("json_object")),
                                          config("deepseek")).json()
    assert body["response_format"] == {"type": "json_object"}
