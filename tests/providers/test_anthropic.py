"""Anthropic Messages API: requests built and compared with recorded requests, recorded replies parsed.

Every multi-turn test rebuilds the *second* recorded request from our parse of the first
response (``resp.to_message()``) plus the tool results, and compares it with what pydantic-ai
actually sent: that is what proves thinking signatures and tool-use ids survive a round trip.
Error bodies other than the recorded 400 and 404 follow Anthropic's documented error shape.
"""

from __future__ import annotations

import base64
import json

import pytest

from cloverleaf._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    UnsupportedCapability,
)
from cloverleaf._http import HttpResponse
from cloverleaf._pricing import lookup
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.anthropic.messages import STRUCTURED_TOOL, native_output_schema
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import adapter_class, get_spec
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
OUT = "pydantic-ai/tests/models/anthropic/cassettes/test_output/"
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "country", "population"],
}


@pytest.fixture(scope="module")
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(get_spec("anthropic"))


def cfg(**extra) -> ProviderConfig:
    return ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test", extra=extra)


def body(adapter, req: ChatRequest, **extra) -> dict:
    return adapter.build_chat(req, cfg(**extra)).json()


def user_text(recorded_message: dict) -> str:
    return recorded_message["content"][0]["text"]


# --------------------------------------------------------------------------- request basics


def test_registry_kind_points_at_this_class():
    assert adapter_class("anthropic") is AnthropicAdapter


def test_url_and_headers(adapter):
    http = adapter.build_chat(ChatRequest("claude-sonnet-4-5", [Message.user("hi")]), cfg(beta=["a-1", "b-2"]))
    assert http.method == "POST"
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers["x-api-key"] == "sk-ant-test"
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert http.headers["anthropic-beta"] == "a-1,b-2"
    assert http.redacted_headers()["x-api-key"] == "<redacted>"
    assert "sk-ant-test" not in repr(cfg())
    assert http.stream is False


def test_a_callers_betas_join_the_configured_ones(adapter):
    """A server's client asks for betas (``anthropic-beta``): sent with the configured ones, each once."""
    req = ChatRequest("claude-sonnet-4-5", [Message.user("hi")])
    for configured in ("a-1, b-2", ["a-1", "b-2"]):
        call_cfg = adapter.with_client_betas(cfg(beta=configured), ("b-2", "context-1m-2025-08-07"))
        assert adapter.build_chat(req, call_cfg).headers["anthropic-beta"] == "a-1,b-2,context-1m-2025-08-07"
    assert adapter.build_chat(req, adapter.with_client_betas(cfg(), ("c-3",))).headers["anthropic-beta"] == "c-3"
    shared = cfg(beta=["a-1"])
    adapter.with_client_betas(shared, ("c-3",))
    assert shared.extra == {"beta": ["a-1"]}   # the provider's own config is left as it was
    # any other provider's adapter ignores them
    openai = adapter_class("openai")(get_spec("openai"))
    openai_cfg = ProviderConfig("openai", "openai", "https://api.openai.com/v1", api_key="sk-test")
    assert openai.with_client_betas(openai_cfg, ("c-3",)) is openai_cfg


def test_base_url_that_already_ends_in_v1(adapter):
    conf = ProviderConfig("proxy", "anthropic", "http://127.0.0.1:9000/v1/")
    http = adapter.build_chat(ChatRequest("m", [Message.user("hi")]), conf)
    assert http.url == "http://127.0.0.1:9000/v1/messages"
    assert "x-api-key" not in http.headers and "anthropic-beta" not in http.headers


def test_system_prompt_matches_recording(adapter):
    rec = cassette(REC + "test_anthropic_model_instructions.yaml")[0].request_json
    req = ChatRequest("claude-3-opus-latest", [Message.system("You are a helpful assistant.\n\n"),
                                              Message.user("What is the capital of France?")], max_tokens=4096)
    got = body(adapter, req)
    assert got["system"] == rec["system"]
    assert got["messages"] == rec["messages"]
    assert got["max_tokens"] == 4096 and "stream" not in got


@pytest.mark.parametrize("model, expected", [
    ("m", 4096),                                  # an Anthropic-compatible server's model
    ("claude-3-haiku-20240307", 4096), ("claude-3-opus-latest", 4096),
    ("claude-3-5-sonnet-20241022", 8192), ("claude-3-5-haiku-latest", 8192),
    ("claude-3-7-sonnet-20250219", 16384), ("claude-sonnet-4-20250514", 16384),
    ("claude-opus-4-1-20250805", 16384), ("claude-haiku-4-5", 16384),
])
def test_max_tokens_defaults_to_the_models_limit_up_to_16k(adapter, model, expected):
    """An OpenAI client that never sets max_tokens got 2,048 tokens and ``length``."""
    assert body(adapter, ChatRequest(model, [Message.user("hi")]))["max_tokens"] == expected


def test_sampling_options(adapter):
    got = body(adapter, ChatRequest("m", [Message.user("hi")], temperature=0.2, top_p=0.9, stop=["END"],
                                    seed=7, user="u-1", extra_body={"top_k": 5}))
    assert got["temperature"] == 0.2 and got["top_p"] == 0.9
    assert got["stop_sequences"] == ["END"]
    assert got["metadata"] == {"user_id": "u-1"}
    assert got["top_k"] == 5
    assert "seed" not in got


@pytest.mark.parametrize(("model", "both"), [
    ("claude-sonnet-4-5-20250929", False), ("claude-opus-4-1-20250805", False), ("claude-haiku-4-5", False),
    ("claude-sonnet-4-6", False), ("claude-opus-4-20250514", True), ("claude-sonnet-4-0", True),
    ("claude-3-7-sonnet-20250219", True), ("claude-3-5-haiku-latest", True)])
def test_models_that_refuse_temperature_with_top_p_get_temperature_alone(adapter, model, both):
    """From Opus 4.1 on, both together are a 400 ("cannot both be specified for this model"); many
    OpenAI-style clients send both, so the portable request keeps temperature."""
    got = body(adapter, ChatRequest(model, [Message.user("hi")], temperature=0.2, top_p=0.9))
    assert got["temperature"] == 0.2 and ("top_p" in got) is both
    alone = body(adapter, ChatRequest(model, [Message.user("hi")], top_p=0.9))
    assert alone["top_p"] == 0.9 and "temperature" not in alone


def test_leading_assistant_turn_matches_recording(adapter):
    rec = cassette(REC + "test_anthropic_model_empty_message_on_history.yaml")[0].request_json
    req = ChatRequest("claude-sonnet-4-5", [Message.system("You are a helpful assistant.\n\n"),
                                            Message.assistant("Hello, how can I help you?"),
                                            Message.assistant(""),  # empty turns are dropped
                                            Message.user("I need a potato!")])
    assert body(adapter, req)["messages"] == rec["messages"]


def test_consecutive_turns_of_one_role_are_merged(adapter):
    msgs = [
        Message.system("sys one"),
        Message.user("a"),
        Message.user("b"),
        Message.assistant([ToolCall("t1", "f", {"x": 1}), ToolCall("t2", "f", {"x": 2})]),
        Message.tool("t1", "one"),
        Message.tool("t2", "two", is_error=True),
        Message.user("and now?"),
        Message.system("sys two"),
    ]
    got = body(adapter, ChatRequest("m", msgs))
    assert got["system"] == "sys one\n\nsys two"
    assert [m["role"] for m in got["messages"]] == ["user", "assistant", "user"]
    assert got["messages"][0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    third = got["messages"][2]["content"]
    assert third == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "one", "is_error": False},
        {"type": "tool_result", "tool_use_id": "t2", "content": "two", "is_error": True},
        {"type": "text", "text": "and now?"},
    ]


def test_tool_result_with_parts(adapter):
    png = b"\x89PNG\r\n\x1a\nfake"
    msgs = [Message.user("look"), Message.assistant([ToolCall("t1", "shot", {})]),
            Message(Role.TOOL, [ToolResult("t1", [Text("here"), Attachment(type="image", media_type="image/png",
                                                                           data=png)])])]
    block = body(adapter, ChatRequest("m", msgs))["messages"][2]["content"][0]
    assert block["content"] == [
        {"type": "text", "text": "here"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(png).decode()}},
    ]


# --------------------------------------------------------------------------- tools


def test_tools_and_tool_choice(adapter):
    tool = Tool("get", "Get it.", {"type": "object", "properties": {"q": {"type": "string"}}})
    cases = {
        None: None,
        ToolChoice("auto"): {"type": "auto"},
        ToolChoice("none"): {"type": "none"},
        ToolChoice("required"): {"type": "any"},
        ToolChoice("tool", "get"): {"type": "tool", "name": "get"},
    }
    for choice, expected in cases.items():
        got = body(adapter, ChatRequest("m", [Message.user("x")], tools=[tool], tool_choice=choice))
        assert got.get("tool_choice") == expected
        assert got["tools"] == [{"name": "get", "description": "Get it.", "input_schema": tool.parameters}]
    got = body(adapter, ChatRequest("m", [Message.user("x")], tools=[tool], parallel_tool_calls=False))
    assert got["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    got = body(adapter, ChatRequest("m", [Message.user("x")], tools=[tool], tool_choice=ToolChoice("required"),
                                    parallel_tool_calls=False))
    assert got["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "tool_choice" not in body(adapter, ChatRequest("m", [Message.user("x")], tool_choice=ToolChoice("auto")))


def test_strict_tool_gets_a_closed_schema(adapter):
    tool = Tool("lookup_country", None, {"type": "object", "properties": {"city": {"type": "string"}},
                                         "required": ["city"]}, strict=True)
    # the shape pydantic-ai recorded in test_output/test_strict_true_tool_native_output.yaml
    got = body(adapter, ChatRequest("m", [Message.user("x")], tools=[tool]))["tools"][0]
    assert got == {"name": "lookup_country", "strict": True, "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}}


def test_parallel_tool_loop_rebuilds_the_recorded_second_request(adapter):
    first, second = cassette(REC + "test_multiple_parallel_tool_calls.yaml")
    rec0, rec1 = first.request_json, second.request_json
    tool = Tool("retrieve_entity_info", "Get the knowledge about the given entity.",
                rec0["tools"][0]["input_schema"])
    req = ChatRequest("claude-haiku-4-5", [Message.system(rec0["system"]), Message.user(user_text(rec0["messages"][0]))],
                      tools=[tool], tool_choice=ToolChoice("auto"), max_tokens=4096)
    got0 = body(adapter, req)
    assert got0["messages"] == rec0["messages"] and got0["system"] == rec0["system"]
    assert got0["tools"] == rec0["tools"] and got0["tool_choice"] == rec0["tool_choice"]

    resp = adapter.parse_chat(first.response, req)
    assert [c.name for c in resp.tool_calls] == ["retrieve_entity_info"] * 4
    assert [c.arguments["name"] for c in resp.tool_calls] == ["Alice", "Bob", "Charlie", "Daisy"]
    assert resp.finish_reason == "tool_calls" and resp.metadata.raw_finish_reason == "tool_use"
    assert resp.text.startswith("I'll help you find out who is the youngest")
    assert resp.usage.input_tokens == 423 and resp.usage.output_tokens == 202
    assert resp.model == "claude-haiku-4-5-20251001" and resp.provider == "anthropic"
    assert resp.metadata.response_id == "msg_011S3wxtqL5CVescWqS3zeg2"

    answers = {b["tool_use_id"]: b["content"] for b in rec1["messages"][2]["content"]}
    req.messages += [resp.to_message()] + [Message.tool(c.id, answers[c.id]) for c in resp.tool_calls]
    assert body(adapter, req)["messages"] == rec1["messages"]

    final = adapter.parse_chat(second.response, req)
    assert "Daisy is the youngest" in final.text and final.finish_reason == "stop"
    assert final.usage.input_tokens == 771 and final.usage.output_tokens == 77


def test_tool_loop_with_thinking_keeps_the_signed_thinking_block(adapter):
    first, second = cassette(REC + "test_anthropic_tool_with_thinking.yaml")
    rec0, rec1 = first.request_json, second.request_json
    tool = Tool("get_user_country", "", rec0["tools"][0]["input_schema"])
    req = ChatRequest("claude-sonnet-4-0", [Message.user(user_text(rec0["messages"][0]))], tools=[tool],
                      tool_choice=ToolChoice("auto"), max_tokens=4096, reasoning=ReasoningConfig(budget_tokens=3000))
    got0 = body(adapter, req)
    assert got0["thinking"] == {"type": "enabled", "budget_tokens": 3000} == rec0["thinking"]
    assert got0["messages"] == rec0["messages"]

    resp = adapter.parse_chat(first.response, req)
    assert isinstance(resp.parts[0], Reasoning) and resp.parts[0].signature.startswith("EqEECkYICxgCKkAo3UA4")
    assert resp.reasoning.startswith("The user is asking about the largest city")
    assert [c.name for c in resp.tool_calls] == ["get_user_country"] and resp.tool_calls[0].arguments == {}
    req.messages += [resp.to_message(), Message.tool(resp.tool_calls[0].id, "Mexico")]
    assert body(adapter, req)["messages"] == rec1["messages"]
    assert "Mexico City" in adapter.parse_chat(second.response, req).text


# --------------------------------------------------------------------------- thinking


def test_thinking_signature_survives_the_next_turn(adapter):
    first, second = cassette(REC + "test_anthropic_model_thinking_part.yaml")
    rec0, rec1 = first.request_json, second.request_json
    req = ChatRequest("claude-sonnet-4-5", [Message.user(user_text(rec0["messages"][0]))], max_tokens=4096,
                      reasoning=ReasoningConfig(budget_tokens=1024))
    assert body(adapter, req) == {k: v for k, v in rec0.items() if k != "stream"}

    resp = adapter.parse_chat(first.response, req)
    thinking = resp.parts[0]
    assert isinstance(thinking, Reasoning) and thinking.signature == rec1["messages"][1]["content"][0]["signature"]
    assert resp.reasoning.startswith("This is a straightforward question about pedestrian safety.")
    assert resp.text.startswith("Here's how to cross the street safely:")
    assert resp.usage.output_tokens == 321 and resp.usage.input_tokens == 43

    req.messages += [resp.to_message(), Message.user(user_text(rec1["messages"][2]))]
    got1 = body(adapter, req)
    assert got1["messages"] == rec1["messages"]
    assert got1["messages"][1]["content"][0]["type"] == "thinking"


def test_redacted_thinking_survives_the_next_turn(adapter):
    first, second = cassette(REC + "test_anthropic_model_thinking_part_redacted.yaml")
    rec0, rec1 = first.request_json, second.request_json
    req = ChatRequest(rec0["model"], [Message.user(user_text(rec0["messages"][0]))], max_tokens=4096,
                      reasoning=ReasoningConfig(budget_tokens=1024))
    resp = adapter.parse_chat(first.response, req)
    assert isinstance(resp.parts[0], Reasoning) and resp.parts[0].redacted.startswith("EvgFCkYIBxgC")
    assert resp.parts[0].text == "" and resp.reasoning is None
    req.messages += [resp.to_message(), Message.user("What was that?")]
    assert body(adapter, req)["messages"] == rec1["messages"]


def test_foreign_or_unsigned_reasoning_is_not_sent(adapter):
    msgs = [Message.user("q"), Message.assistant([Reasoning("mine", signature="sig", provider="anthropic"),
                                                  Reasoning("openai's", redacted="enc", provider="openai"),
                                                  Reasoning("gemini", signature="g", provider="gemini"),
                                                  Reasoning("proxied", signature="p", provider="my-claude-proxy"),
                                                  Reasoning("no signature"), Text("answer")]),
            Message.user("more")]
    content = body(adapter, ChatRequest("m", msgs))["messages"][1]["content"]
    assert content == [{"type": "thinking", "thinking": "mine", "signature": "sig"},
                       {"type": "thinking", "thinking": "proxied", "signature": "p"},
                       {"type": "text", "text": "answer"}]


def test_reasoning_budgets_and_max_tokens(adapter):
    def thinking_and_max(**kw):
        got = body(adapter, ChatRequest("m", [Message.user("x")], **kw))
        return got.get("thinking", {}).get("budget_tokens"), got["max_tokens"]

    assert thinking_and_max(reasoning=ReasoningConfig(effort="low")) == (2048, 2048 + 2048)
    assert thinking_and_max(reasoning=ReasoningConfig(effort="high")) == (16384, 16384 + 2048)
    assert thinking_and_max(reasoning=ReasoningConfig()) == (8192, 8192 + 2048)
    assert thinking_and_max(reasoning=ReasoningConfig(budget_tokens=100)) == (1024, 1024 + 2048)
    assert thinking_and_max(reasoning=ReasoningConfig(budget_tokens=0))[0] is None   # 0: off, as Gemini reads it
    assert thinking_and_max(reasoning=ReasoningConfig(effort="high"), max_tokens=4000) == (2000, 4000)
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        body(adapter, ChatRequest("m", [Message.user("x")], max_tokens=2000, reasoning=ReasoningConfig(budget_tokens=3000)))
    with pytest.raises(InvalidRequestError, match="no room"):
        body(adapter, ChatRequest("m", [Message.user("x")], max_tokens=1000, reasoning=ReasoningConfig(effort="low")))


def test_thinking_drops_sampling_the_api_refuses(adapter):
    got = body(adapter, ChatRequest("m", [Message.user("x")], temperature=0.3, top_p=0.5,
                                    reasoning=ReasoningConfig(effort="low")))
    assert "temperature" not in got and "top_p" not in got


# --------------------------------------------------------------------------- structured output


def test_native_structured_output_matches_recording(adapter):
    inter = cassette(OUT + "test_no_tools_native_output_strict_true.yaml")[0]
    rec = inter.request_json
    req = ChatRequest("claude-sonnet-4-5", [Message.user("Tell me about London")], max_tokens=4096,
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    got = body(adapter, req)
    assert got["output_config"] == rec["output_config"]
    assert "tools" not in got
    resp = adapter.parse_chat(inter.response, req)
    assert json.loads(resp.text) == {"city": "London", "country": "United Kingdom", "population": 9002488}
    assert resp.finish_reason == "stop"


def test_unsupported_schema_keywords_move_to_the_description(adapter):
    inter = cassette(REC + "test_anthropic_native_output_decimal_strict.yaml")[0]
    pydantic_schema = {"type": "object", "properties": {"amount": {"anyOf": [
        {"type": "number"}, {"type": "string", "pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"}]}},
        "required": ["amount"]}
    req = ChatRequest("claude-sonnet-4-5", [Message.user("Return exactly this payment amount: 12.34")],
                      response_format=ResponseFormat(schema=pydantic_schema))
    assert body(adapter, req)["output_config"] == inter.request_json["output_config"]
    assert json.loads(adapter.parse_chat(inter.response, req).text) == {"amount": 12.34}


def test_strict_schema_closes_nested_objects_and_defs():
    schema = {"type": "object", "properties": {"items": {"type": "array", "minItems": 3, "items": {"$ref": "#/$defs/I"}}},
              "$defs": {"I": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
                              "oneOf": [{"required": ["n"]}]}}}
    out = native_output_schema(schema)
    assert out["additionalProperties"] is False
    assert out["$defs"]["I"]["additionalProperties"] is False
    assert out["$defs"]["I"]["anyOf"] == [{"required": ["n"]}]
    assert out["$defs"]["I"]["properties"]["n"] == {"type": "integer", "description": "{minimum: 1}"}
    assert out["properties"]["items"]["description"] == "{minItems: 3}"
    assert "minimum" in schema["$defs"]["I"]["properties"]["n"]  # the input is not modified


def test_structured_output_through_a_forced_tool_on_older_models(adapter):
    req = ChatRequest("claude-3-5-haiku-latest", [Message.user("Tell me about London")],
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    got = body(adapter, req)
    assert "output_config" not in got
    assert got["tools"][0]["name"] == STRUCTURED_TOOL and got["tools"][0]["input_schema"] == CITY_SCHEMA
    assert got["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
    # the same fallback can be forced per provider, and json_object always uses it
    forced = body(adapter, ChatRequest("claude-sonnet-4-5", req.messages, response_format=req.response_format),
                  structured_output="tool")
    assert forced["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
    loose = body(adapter, ChatRequest("claude-sonnet-4-5", req.messages, response_format=ResponseFormat("json_object")))
    assert loose["tools"][0]["input_schema"] == {"type": "object"}

    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
             "content": [{"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL,
                          "input": {"city": "London", "country": "United Kingdom", "population": 8900000}}],
             "stop_reason": "tool_use", "usage": {"input_tokens": 400, "output_tokens": 60}}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(reply).encode()), req)
    assert resp.tool_calls == [] and resp.finish_reason == "stop"
    assert json.loads(resp.text)["population"] == 8900000


def test_a_sentence_before_the_structured_tool_call_is_not_part_of_the_answer(adapter):
    """With reasoning on (or user tools beside it) tool_choice cannot force the structured tool, and
    Claude may write a sentence first; glued before the JSON it made .parsed fail."""
    req = ChatRequest("claude-3-7-sonnet-20250219", [Message.user("Largest city in Japan?")],
                      reasoning=ReasoningConfig(budget_tokens=2048), max_tokens=4096,
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    assert body(adapter, req)["tool_choice"] == {"type": "auto"}
    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-7-sonnet-20250219",
             "content": [{"type": "thinking", "thinking": "Tokyo.", "signature": "sig"},
                         {"type": "text", "text": "Here is the answer in the requested format."},
                         {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL,
                          "input": {"city": "Tokyo", "country": "Japan", "population": 37000000}},
                         {"type": "text", "text": "Let me know if you need more."}],
             "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 20}}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(reply).encode()), req)
    assert json.loads(resp.text) == {"city": "Tokyo", "country": "Japan", "population": 37000000}
    assert [type(p).__name__ for p in resp.parts] == ["Reasoning", "Text"] and resp.finish_reason == "stop"
    plain = dict(reply, content=[{"type": "text", "text": "I cannot answer that."}], stop_reason="end_turn")
    assert adapter.parse_chat(HttpResponse(200, {}, json.dumps(plain).encode()), req).text == "I cannot answer that."


def test_structured_tool_alongside_user_tools(adapter):
    tool = Tool("lookup", None, {"type": "object", "properties": {}})
    got = body(adapter, ChatRequest("claude-3-5-haiku-latest", [Message.user("x")], tools=[tool],
                                    response_format=ResponseFormat(schema=CITY_SCHEMA)))
    assert [t["name"] for t in got["tools"]] == ["lookup", STRUCTURED_TOOL]
    assert got["tool_choice"] == {"type": "any"}


# --------------------------------------------------------------------------- prompt caching


def test_cache_usage_maps_reads_and_writes(adapter):
    first, second = cassette(REC + "test_anthropic_cache_real_api.yaml")
    req = ChatRequest("claude-sonnet-4-5", [Message.user("x")])
    u0 = adapter.parse_chat(first.response, req).usage
    assert (u0.input_tokens, u0.cached_tokens, u0.cache_write_tokens, u0.output_tokens) == (3 + 1111, 1111, 0, 406)
    u1 = adapter.parse_chat(second.response, req).usage
    assert (u1.input_tokens, u1.cached_tokens, u1.cache_write_tokens, u1.output_tokens) == (1532, 1111, 418, 33)


def test_one_hour_cache_writes_are_counted_and_billed_at_their_rate(adapter):
    """The recorded second call's 418 writes, as Anthropic reports them when made with ``ttl: "1h"``:
    one-hour writes bill at 2x input where five-minute ones bill at 1.25x."""
    second = cassette(REC + "test_anthropic_cache_real_api.yaml")[1]
    data = second.response.json()
    data["usage"]["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 418}
    req = ChatRequest("claude-sonnet-4-5", [Message.user("x")])
    u = adapter.parse_chat(HttpResponse(200, {}, json.dumps(data).encode()), req).usage
    assert (u.cache_write_tokens, u.cache_write_1h_tokens) == (418, 418)
    price = lookup("anthropic", "claude-sonnet-4-5")
    assert price.cost(u) == pytest.approx((3 * 3.0 + 1111 * 0.3 + 418 * 6.0 + 33 * 15.0) / 1e6)
    five_minutes = adapter.parse_chat(second.response, req).usage
    assert five_minutes.cache_write_1h_tokens == 0
    assert price.cost(five_minutes) == pytest.approx((3 * 3.0 + 1111 * 0.3 + 418 * 3.75 + 33 * 15.0) / 1e6)


def test_an_answer_without_usage_has_unknown_usage(adapter):
    reply = {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "end_turn",
             "content": [{"type": "text", "text": "hi"}]}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(reply).encode()), ChatRequest("claude-x", []))
    assert resp.usage.reported is False


def test_cache_request_matches_recording(adapter):
    rec = cassette(REC + "test_anthropic_cache_real_api.yaml")[0].request_json
    req = ChatRequest("claude-sonnet-4-5", [Message.system("You are a helpful assistant."),
                                            Message.user(user_text(rec["messages"][0]))],
                      max_tokens=4096, extra_body={"cache_control": {"type": "ephemeral", "ttl": "5m"}})
    assert body(adapter, req) == {k: v for k, v in rec.items() if k != "stream"}


def test_cache_control_on_parts_passes_through(adapter):
    mark = {"type": "ephemeral"}
    pdf = Attachment(type="pdf", media_type="application/pdf", data=b"%PDF-1.4", cache_control=mark)
    msgs = [Message(Role.SYSTEM, [Text("long instructions", cache_control=mark)]),
            Message.user([pdf, Text("question", cache_control=mark)])]
    got = body(adapter, ChatRequest("m", msgs))
    assert got["system"] == [{"type": "text", "text": "long instructions", "cache_control": mark}]
    assert got["messages"][0]["content"][0]["cache_control"] == mark
    assert got["messages"][0]["content"][1] == {"type": "text", "text": "question", "cache_control": mark}


# --------------------------------------------------------------------------- attachments


@pytest.mark.parametrize("name, kind", [("test_image_url_input.yaml", "image"),
                                        ("test_document_url_input.yaml", "pdf")])
def test_url_attachments_match_recording(adapter, name, kind):
    inter = cassette(REC + name)[0]
    rec = inter.request_json
    text_block, file_block = rec["messages"][0]["content"]
    att = Attachment(type=kind, fetch="provider", url=file_block["source"]["url"])
    req = ChatRequest(rec["model"], [Message.user([Text(text_block["text"]), att])], max_tokens=4096)
    assert body(adapter, req)["messages"] == rec["messages"]
    resp = adapter.parse_chat(inter.response, req)
    assert ("potato" if kind == "image" else "Lorem ipsum") in resp.text


def test_inline_pdf_matches_recording(adapter):
    inter = cassette(REC + "test_document_binary_content_input.yaml")[0]
    rec = inter.request_json
    source = rec["messages"][0]["content"][1]["source"]
    att = Attachment(type="pdf", media_type="application/pdf", data=base64.b64decode(source["data"]))
    req = ChatRequest(rec["model"], [Message.user([Text("What is the main content on this document?"), att])],
                      max_tokens=4096)
    assert body(adapter, req)["messages"] == rec["messages"]
    assert "Dummy PDF file" in adapter.parse_chat(inter.response, req).text


def test_downloaded_image_is_sent_inline_like_the_recording(adapter):
    download, call = cassette(REC + "test_image_url_input_force_download.yaml")
    att = Attachment(type="image", media_type="image/jpeg", data=download.response.body)
    req = ChatRequest("claude-haiku-4-5", [Message.user([Text("What is this vegetable?"), att])], max_tokens=4096)
    assert body(adapter, req)["messages"] == call.request_json["messages"]
    assert "potato" in adapter.parse_chat(call.response, req).text


def test_audio_is_unsupported(adapter):
    att = Attachment(type="audio", media_type="audio/wav", data=b"RIFF")
    with pytest.raises(UnsupportedCapability, match="audio input"):
        adapter.build_chat(ChatRequest("m", [Message.user([att])]), cfg())
    assert adapter.capabilities.audio_input is False
    assert adapter.capabilities.embeddings is False and adapter.capabilities.image_generation is False


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("raw, expected", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "other"), ("something_new", "other"),
])
def test_finish_reasons(adapter, raw, expected):
    content = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}] if raw == "tool_use" else []
    reply = {"id": "msg_x", "model": "claude-x", "content": [{"type": "text", "text": "ok"}, *content],
             "stop_reason": raw, "usage": {"input_tokens": 1, "output_tokens": 1}}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(reply).encode()), ChatRequest("m", []))
    assert resp.finish_reason == expected and resp.metadata.raw_finish_reason == raw


def test_server_tool_blocks_are_kept_aside(adapter):
    reply = {"id": "msg_x", "model": "claude-x", "stop_reason": "end_turn", "usage": {"input_tokens": 1},
             "content": [{"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "q"}},
                         {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
                         {"type": "text", "text": "found it"}]}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(reply).encode()), ChatRequest("m", []))
    assert resp.text == "found it" and resp.tool_calls == []
    assert [b["type"] for b in resp.metadata.extra["server_tool_blocks"]] == ["server_tool_use",
                                                                             "web_search_tool_result"]


def test_garbage_body_is_malformed(adapter):
    with pytest.raises(MalformedResponseError):
        adapter.parse_chat(HttpResponse(200, {}, b"<html>oops"), ChatRequest("m", []))
    with pytest.raises(MalformedResponseError):
        adapter.parse_chat(HttpResponse(200, {}, b'{"type": "message"}'), ChatRequest("m", []))


# --------------------------------------------------------------------------- errors


def test_recorded_invalid_request_error(adapter):
    resp = cassette(REC + "test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml")[0].response
    err = adapter.parse_error(resp, "claude-opus-4-6")
    assert type(err) is InvalidRequestError and not err.retryable
    assert err.status == 400 and err.code == "invalid_request_error"
    assert "does not support effort level 'xhigh'" in str(err)
    assert err.request_id == "req_011Ca7jT9AHpgXgdv8igm4z9" and err.model == "claude-opus-4-6"


def test_recorded_not_found_error(adapter):
    resp = cassette(REC + "test_anthropic_count_tokens_error.yaml")[0].response
    err = adapter.parse_error(resp, "claude-does-not-exist")
    assert type(err) is NotFoundError and err.status == 404 and err.code == "not_found_error"
    assert "claude-does-not-exist" in err.message


def _error(status: int, etype: str, message: str, headers: dict | None = None) -> HttpResponse:
    payload = {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_1"}
    return HttpResponse(status, headers or {}, json.dumps(payload).encode())


@pytest.mark.parametrize("status, etype, message, cls", [
    (401, "authentication_error", "invalid x-api-key", AuthenticationError),
    (403, "permission_error", "Your API key does not have permission to use the specified resource.",
     PermissionDeniedError),
    (404, "not_found_error", "model: claude-nope", NotFoundError),
    (402, "billing_error", "Your credit balance is too low to access the Anthropic API.", QuotaExceededError),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", RequestTooLargeError),
    (500, "api_error", "Internal server error", ServerError),
    (529, "overloaded_error", "Overloaded", OverloadedError),
    (400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum", ContextWindowExceededError),
    (400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
     ContextWindowExceededError),
    (400, "invalid_request_error", "messages: text content blocks must be non-empty", InvalidRequestError),
])
def test_documented_errors(adapter, status, etype, message, cls):
    err = adapter.parse_error(_error(status, etype, message), "m")
    assert type(err) is cls and err.status == status and err.code == etype and message in str(err)
    assert err.request_id == "req_1"


def test_rate_limit_error_carries_retry_after(adapter):
    err = adapter.parse_error(_error(429, "rate_limit_error", "Number of request tokens has exceeded your limit.",
                                     {"retry-after": "17", "request-id": "req_hdr"}), "m")
    assert type(err) is RateLimitError and err.retryable and err.retry_after == 17.0
    assert err.request_id == "req_hdr"


def test_overloaded_is_retryable(adapter):
    err = adapter.parse_error(_error(529, "overloaded_error", "Overloaded"), "m")
    assert isinstance(err, ServerError) and err.retryable


def test_non_json_error_maps_by_status(adapter):
    err = adapter.parse_error(HttpResponse(502, {}, b"<html>Bad gateway</html>"), "m")
    assert type(err) is ServerError and err.status == 502


# --------------------------------------------------------------------------- conformance self-check


def _case_ids():
    from tests.conformance.cases_anthropic import CASES

    return [(c.id, c) for c in CASES]


@pytest.mark.parametrize("case", [c for _, c in _case_ids()], ids=[i for i, _ in _case_ids()])
def test_conformance_cases_hold(adapter, case):
    """Our own cases replayed: the built request matches the recorded messages and the parsed
    (or stream-decoded) response meets every expectation."""
    from cloverleaf.streams.accumulate import StreamAccumulator

    inter = cassette(case.cassette)[case.interaction]
    assert body(adapter, case.request)["messages"] == inter.request_json["messages"]
    if case.request.stream:
        dec = adapter.stream_decoder(case.request)
        acc = StreamAccumulator(case.request.model, adapter.name)
        for ev in dec.feed(inter.response.body) + dec.close():
            acc.add(ev)
        resp = acc.response()
    else:
        resp = adapter.parse_chat(inter.response, case.request)
    exp = case.expect
    assert adapter.capabilities.supports(case.capability)
    if "content_contains" in exp:
        assert exp["content_contains"] in resp.text
    if "tool_names" in exp:
        assert [c.name for c in resp.tool_calls] == exp["tool_names"]
    if "reasoning" in exp:
        assert bool(resp.reasoning) is exp["reasoning"]
    assert resp.finish_reason == exp["finish_reason"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (exp["input_tokens"], exp["output_tokens"])


# --------------------------------------------------------------------------- through the client


def test_structured_output_parses_through_the_client():
    """End to end (client -> engine -> this adapter -> a mock upstream replaying the recording):
    the native JSON text validates into the caller's pydantic model."""
    import httpx
    from pydantic import BaseModel

    from cloverleaf import Client

    class City(BaseModel):
        city: str
        country: str
        population: int

    inter = cassette(OUT + "test_no_tools_native_output_strict_true.yaml")[0]
    sent: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, headers={"content-type": "application/json"}, content=inter.response.body)

    client = Client()
    client.engine.transport.mount("all://", httpx.MockTransport(upstream))
    resp = client.chat("anthropic/claude-sonnet-4-5", "Tell me about London", response_format=City,
                       api_key="sk-ant-test")
    assert resp.parsed == City(city="London", country="United Kingdom", population=9002488)
    assert json.loads(sent[0].content)["output_config"]["format"]["schema"]["additionalProperties"] is False
    assert sent[0].headers["x-api-key"] == "sk-ant-test" and sent[0].headers["anthropic-version"] == "2023-06-01"
