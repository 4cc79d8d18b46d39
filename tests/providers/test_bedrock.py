"""Bedrock Converse: requests built like the recorded ones, recorded responses parsed, errors mapped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnsupportedCapability,
)
from cloverleaf._http import HttpResponse
from cloverleaf._options import to_reasoning
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Document,
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
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.claude_rules import DEFAULT_MAX_TOKENS
from cloverleaf.providers.registry import get_spec
from tests.wire import Interaction, cassette

ADAPTER = BedrockAdapter(get_spec("bedrock"))
CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="",
                     extra={"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"})
REC = "pydantic-ai/tests/models/cassettes/test_bedrock/"
NOVA = "us.amazon.nova-micro-v1:0"
SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
SONNET37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
SONNET45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def rec(name: str, i: int = 0) -> Interaction:
    return cassette(REC + name + ".yaml")[i]


def sent(req: ChatRequest) -> dict[str, Any]:
    return json.loads(ADAPTER.build_chat(req, CFG).body or b"")


def recorded_body(inter: Interaction) -> dict[str, Any]:
    """The recorded request body without the empty fields pydantic-ai always sends."""
    body = json.loads(inter.request_body or b"")
    return {k: v for k, v in body.items() if v not in ({}, [])}


def recorded_thinking_body(inter: Interaction, budget: int = 1024) -> dict[str, Any]:
    """A recorded Claude request with thinking, plus the ``maxTokens`` cloverleaf adds when the
    caller set none: the recording left it to Bedrock's default, which holds a 1,024-token budget
    but not an effort's 8,192 or 16,384 (budget_tokens must stay below max_tokens)."""
    return {**recorded_body(inter), "inferenceConfig": {"maxTokens": budget + DEFAULT_MAX_TOKENS}}


# --------------------------------------------------------------------------- text


def test_text_request_and_response() -> None:
    inter = rec("test_bedrock_model")
    req = ChatRequest(NOVA, [Message.system("You are a chatbot."), Message.user("Hello!")])
    built = ADAPTER.build_chat(req, CFG)
    assert built.url == inter.uri
    assert built.headers["content-type"] == "application/json"
    assert json.loads(built.body or b"") == recorded_body(inter)
    out = ADAPTER.parse_chat(inter.response, req)
    assert out.text.startswith("Hello! How can I assist you today?")
    assert out.finish_reason == "stop" and out.metadata.raw_finish_reason == "end_turn"
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.total_tokens) == (7, 30, 37)
    assert out.model == NOVA and out.provider == "bedrock"


@pytest.mark.parametrize("name,model", [
    ("test_bedrock_inference_profile_converse",
     "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/mi1dadi0g15f"),
    ("test_bedrock_model_thinking_part_anthropic", SONNET4),
])
def test_model_ids_with_colons_and_slashes_are_quoted_like_botocore(name: str, model: str) -> None:
    inter = rec(name)
    assert ADAPTER.build_chat(ChatRequest(model, [Message.user("x")]), CFG).url == inter.uri


def test_stream_url_and_accept() -> None:
    inter = rec("test_bedrock_model_stream")
    built = ADAPTER.build_chat(ChatRequest(NOVA, [Message.user("x")], stream=True), CFG)
    assert built.url == inter.uri and built.stream
    assert built.headers["accept"] == "application/vnd.amazon.eventstream"


def test_inference_config_and_max_tokens_finish() -> None:
    inter = rec("test_bedrock_model_max_tokens")
    req = ChatRequest(NOVA, [Message.system("You are a helpful chatbot."), Message.user("What is the capital of France?")],
                      max_tokens=5)
    assert sent(req) == recorded_body(inter)
    out = ADAPTER.parse_chat(inter.response, req)
    assert out.text == "The capital of France is" and out.finish_reason == "length"
    full = sent(ChatRequest(NOVA, [Message.user("x")], max_tokens=9, temperature=0.2, top_p=0.5, stop=["END"], seed=3))
    assert full["inferenceConfig"] == {"maxTokens": 9, "temperature": 0.2, "topP": 0.5, "stopSequences": ["END"]}


def test_consecutive_same_role_messages_are_merged_and_blank_text_dropped() -> None:
    body = sent(ChatRequest(NOVA, [Message.user("a"), Message.user("b"), Message.assistant("  "),
                                   Message.assistant("c")]))
    assert body["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                                {"role": "assistant", "content": [{"text": "c"}]}]


def test_extra_body_is_merged() -> None:
    inter = rec("test_bedrock_model_guardrail_config")
    guard = {"guardrailIdentifier": "xbgw7g293v7o", "guardrailVersion": "DRAFT", "trace": "enabled"}
    req = ChatRequest(NOVA, [Message.system("You are a helpful chatbot."), Message.user("What is the capital of France?")],
                      extra_body={"guardrailConfig": guard})
    assert sent(req) == recorded_body(inter)
    out = ADAPTER.parse_chat(inter.response, req)
    assert "Paris" in out.text and out.metadata.extra["trace"]["guardrail"]["actionReason"] == "No action."


# --------------------------------------------------------------------------- tools

CAPITAL = Tool("get_capital", "Get the capital of a country.", {
    "properties": {"country": {"description": "The country name.", "title": "Country", "type": "string"}},
    "required": ["country"], "type": "object", "additionalProperties": False})
TEMPERATURE = Tool("get_temperature", "Get the temperature in a city.", {
    "properties": {"city": {"description": "The city name.", "title": "City", "type": "string"}},
    "required": ["city"], "type": "object", "additionalProperties": False})


def test_tool_request_and_history_match_the_recording() -> None:
    first, second = cassette(REC + "test_bedrock_model_iter_stream.yaml")
    system = Message.system("You are a helpful chatbot.")
    question = Message.user("What is the temperature of the capital of France?")
    req = ChatRequest(NOVA, [system, question], tools=[CAPITAL, TEMPERATURE], top_p=0.5, stream=True)
    assert sent(req) == recorded_body(first)

    thought = ("<thinking> To find the temperature of the capital of France, I need to first determine the capital "
               "of France and then get the current temperature in that city. The capital of France is Paris. I will "
               "use the \"get_temperature\" tool to find the current temperature in Paris.</thinking>\n")
    history = [system, question,
               Message.assistant([Text(thought), ToolCall("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature",
                                                          {"city": "Paris"})]),
               Message.tool("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "30°C")]
    req2 = ChatRequest(NOVA, history, tools=[CAPITAL, TEMPERATURE], top_p=0.5, stream=True)
    assert sent(req2) == recorded_body(second)


def test_tool_choice_modes() -> None:
    def choice(mode: str, name: str | None = None) -> Any:
        body = sent(ChatRequest(NOVA, [Message.user("x")], tools=[CAPITAL], tool_choice=ToolChoice(mode, name)))  # type: ignore[arg-type]
        return body.get("toolConfig", {}).get("toolChoice")

    assert choice("auto") == {"auto": {}}
    assert choice("required") == {"any": {}}
    assert choice("tool", "get_capital") == {"tool": {"name": "get_capital"}}
    assert "toolConfig" not in sent(ChatRequest(NOVA, [Message.user("x")], tools=[CAPITAL], tool_choice=ToolChoice("none")))


LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
MISTRAL_LARGE = "mistral.mistral-large-2407-v1:0"


def test_structured_output_forces_the_answer_tool_only_where_the_model_takes_a_forced_choice() -> None:
    """Converse answers a forced toolChoice from Llama, DeepSeek or Mistral Small with a 400 ("This
    model doesn't support the toolConfig.toolChoice.any field"), so structured output failed on
    every call there: the answer tool now goes unforced to them, and as ``any`` to Mistral Large."""
    fmt = ResponseFormat(schema={"type": "object"}, name="answer")

    def config(model: str, **kw: Any) -> dict[str, Any]:
        return sent(ChatRequest(model, [Message.user("x")], response_format=fmt, **kw))["toolConfig"]

    for model in (LLAMA, "us.deepseek.r1-v1:0", "mistral.mistral-small-2402-v1:0", "cohere.command-r-plus-v1:0",
                  f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{LLAMA}"):
        tool_config = config(model)
        assert "toolChoice" not in tool_config and tool_config["tools"][0]["toolSpec"]["name"] == "answer"
        assert "toolChoice" not in config(model, tools=[CAPITAL])
    assert config(MISTRAL_LARGE)["toolChoice"] == {"any": {}}   # Mistral Large takes "any", not "tool"
    assert config(NOVA)["toolChoice"] == {"tool": {"name": "answer"}}
    assert config(SONNET4)["toolChoice"] == {"tool": {"name": "answer"}}
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    assert config(arn)["toolChoice"] == {"tool": {"name": "answer"}}   # an id that does not say: as asked


def test_a_forced_tool_choice_a_model_refuses_is_a_clear_400_before_sending() -> None:
    for model, mode in ((LLAMA, ToolChoice("required")), (LLAMA, ToolChoice("tool", "get_capital")),
                        (MISTRAL_LARGE, ToolChoice("tool", "get_capital"))):
        with pytest.raises(InvalidRequestError, match="cannot be made to call a tool.*tool_choice 'auto'") as err:
            sent(ChatRequest(model, [Message.user("x")], tools=[CAPITAL], tool_choice=mode))
        assert err.value.status == 400
    assert sent(ChatRequest(MISTRAL_LARGE, [Message.user("x")], tools=[CAPITAL], tool_choice=ToolChoice("required"))
                )["toolConfig"]["toolChoice"] == {"any": {}}
    assert sent(ChatRequest(LLAMA, [Message.user("x")], tools=[CAPITAL], tool_choice=ToolChoice("auto"))
                )["toolConfig"]["toolChoice"] == {"auto": {}}


def test_tool_history_without_tools_declares_them() -> None:
    history = [Message.user("x"), Message.assistant([ToolCall("t1", "lookup", {})]), Message.tool("t1", "ok", is_error=True)]
    body = sent(ChatRequest(NOVA, history))
    assert body["toolConfig"] == {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}
    assert body["messages"][2]["content"][0]["toolResult"]["status"] == "error"


def test_tool_call_response() -> None:
    inter = rec("test_bedrock_moonshotai_tool_call")
    tool = Tool("get_temperature", "Get the current temperature in a city.", {
        "additionalProperties": False, "properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"})
    req = ChatRequest("moonshot.kimi-k2-thinking", [Message.system("You are a helpful chatbot. Use tools when helpful."),
                                                    Message.user("What is the temperature in London? Use the tool.")],
                      tools=[tool], tool_choice=ToolChoice("auto"))
    assert sent(req) == recorded_body(inter)
    out = ADAPTER.parse_chat(inter.response, req)
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls] == [("functions.get_temperature:0", "get_temperature",
                                                                      {"city": "London"})]
    assert isinstance(out.parts[0], Reasoning) and out.parts[0].signature is None
    assert out.finish_reason == "tool_calls"


# --------------------------------------------------------------------------- structured output

FINAL = {"properties": {"temperature": {"type": "string"}, "date": {"format": "date", "type": "string"},
                        "city": {"type": "string"}}, "required": ["temperature", "date", "city"], "title": "Response",
         "type": "object"}
TEMP_TOOL = Tool("temperature", "<summary>Get the temperature in a city on a specific date.</summary>\n<returns>\n"
                 "<description>The temperature in degrees Celsius.</description>\n</returns>", {
                     "additionalProperties": False, "properties": {
                         "city": {"description": "The city name.", "type": "string"},
                         "date": {"description": "The date.", "format": "date", "type": "string"}},
                     "required": ["city", "date"], "type": "object"})


def test_structured_output_is_a_forced_tool_turned_back_into_text() -> None:
    inters = cassette(REC + "test_bedrock_model_structured_output.yaml")
    fmt = ResponseFormat(schema=FINAL, name="final_result")
    first = ChatRequest(NOVA, [Message.system("You are a helpful chatbot."),
                               Message.user("What was the temperature in London 1st January 2022?")],
                        tools=[TEMP_TOOL], response_format=fmt)
    body = sent(first)
    recorded = recorded_body(inters[0])
    assert body["messages"] == recorded["messages"]
    assert body["toolConfig"]["toolChoice"] == recorded["toolConfig"]["toolChoice"] == {"any": {}}
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["temperature", "final_result"]
    assert body["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"] == recorded["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"]

    # the first answer calls the real tool: that stays a tool call
    out = ADAPTER.parse_chat(inters[0].response, first)
    assert [c.name for c in out.tool_calls] == ["temperature"] and out.finish_reason == "tool_calls"
    # the last answer calls final_result: that is the JSON text
    out = ADAPTER.parse_chat(inters[2].response, first)
    assert out.tool_calls == [] and out.finish_reason == "stop"
    assert json.loads(out.text) == {"city": "London", "date": "2022-01-01", "temperature": "30°C"}


def test_structured_output_without_tools_forces_the_tool_by_name() -> None:
    fmt = ResponseFormat(schema={"type": "object"}, name="City Info!")
    body = sent(ChatRequest(NOVA, [Message.user("x")], response_format=fmt))
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "City_Info_"}}
    thinking = sent(ChatRequest(SONNET4, [Message.user("x")], response_format=fmt, reasoning=ReasoningConfig(budget_tokens=1024)))
    assert thinking["toolConfig"]["toolChoice"] == {"auto": {}}  # Claude refuses forced tools while thinking
    with pytest.raises(InvalidRequestError, match="rename"):
        sent(ChatRequest(NOVA, [Message.user("x")], tools=[Tool("City_Info_")], response_format=fmt))


def test_native_structured_output_option() -> None:
    inter = rec("test_bedrock_zai_native_output")
    schema = {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"],
              "type": "object", "additionalProperties": False}
    req = ChatRequest("zai.glm-4.7-flash", [Message.system("You are a helpful chatbot."), Message.user("Where is the Eiffel Tower?")],
                      response_format=ResponseFormat(schema=schema, name="City"))
    cfg = ProviderConfig("bedrock", "bedrock", "", extra={**CFG.extra, "structured_output": "native"})
    body = json.loads(ADAPTER.build_chat(req, cfg).body or b"")
    recorded = recorded_body(inter)
    assert body["messages"] == recorded["messages"] and "toolConfig" not in body
    spec = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert spec["name"] == "City" and json.loads(spec["schema"]) == schema
    assert json.loads(ADAPTER.parse_chat(inter.response, req).text) == {"city": "Paris", "country": "France"}


def test_structured_output_next_to_a_server_tool() -> None:
    inter = rec("test_bedrock_model_with_code_execution_tool")
    req = ChatRequest("us.amazon.nova-2-lite-v1:0", [Message.user("What is 1234 * 5678?")],
                      response_format=ResponseFormat(schema={"properties": {"result": {"type": "number"}}}, name="final_result"))
    out = ADAPTER.parse_chat(inter.response, req)
    assert json.loads(out.text) == {"result": 7006652.0}
    assert out.tool_calls == [] and out.finish_reason == "stop"
    assert out.metadata.extra["server_tool_blocks"][0]["toolUse"]["name"] == "nova_code_interpreter"


# --------------------------------------------------------------------------- reasoning


def test_claude_thinking_round_trip_with_signature() -> None:
    first, second = cassette(REC + "test_bedrock_model_thinking_part_anthropic.yaml")
    question = Message.user("How do I cross the street?")
    req = ChatRequest(SONNET4, [question], reasoning=ReasoningConfig(budget_tokens=1024))
    assert sent(req) == recorded_thinking_body(first)
    out = ADAPTER.parse_chat(first.response, req)
    assert isinstance(out.parts[0], Reasoning) and isinstance(out.parts[1], Text)
    assert out.reasoning and out.reasoning.startswith("This is a straightforward question")
    assert out.parts[0].signature and out.parts[0].signature.startswith("Eu4CCkgIBxABGAIqQCc4")
    follow = ChatRequest(SONNET4, [question, out.to_message(),
                                   Message.user("Considering the way to cross the street, analogously, how do I cross the river?")],
                         reasoning=ReasoningConfig(budget_tokens=1024))
    assert sent(follow) == recorded_thinking_body(second)


def test_claude_thinking_follows_the_models_rules() -> None:
    """Bedrock serves the same Claude models as Anthropic's API, which check the same rules: a budget
    of at least 1,024 below maxTokens, an effort fitted under the caller's max_tokens, reasoning=0 as
    no thinking, and only temperature 1 with thinking (each used to be a ValidationException)."""
    def fields(**kw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        body = sent(ChatRequest(SONNET37, [Message.user("hi")], **kw))
        return body.get("inferenceConfig"), body.get("additionalModelRequestFields")

    assert fields(reasoning=ReasoningConfig(effort="high"), max_tokens=4000) == (
        {"maxTokens": 4000}, {"thinking": {"type": "enabled", "budget_tokens": 2000}})
    assert fields(reasoning=ReasoningConfig(effort="medium")) == (
        {"maxTokens": 8192 + DEFAULT_MAX_TOKENS}, {"thinking": {"type": "enabled", "budget_tokens": 8192}})
    assert fields(reasoning=ReasoningConfig(budget_tokens=500))[1] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert fields(reasoning=ReasoningConfig(budget_tokens=0), max_tokens=100, temperature=0.2) == (
        {"maxTokens": 100, "temperature": 0.2}, None)
    assert fields(reasoning=ReasoningConfig(budget_tokens=2048), max_tokens=4096, temperature=0.2) == (
        {"maxTokens": 4096}, {"thinking": {"type": "enabled", "budget_tokens": 2048}})
    with pytest.raises(InvalidRequestError, match="must be greater than the reasoning budget"):
        sent(ChatRequest(SONNET37, [Message.user("hi")], reasoning=ReasoningConfig(budget_tokens=6000), max_tokens=3000))
    # from Claude 4.5 on, temperature and top_p together are refused: temperature stays
    assert sent(ChatRequest(SONNET45, [Message.user("hi")], temperature=0.2, top_p=0.9))["inferenceConfig"] == {
        "temperature": 0.2}
    assert sent(ChatRequest(NOVA, [Message.user("hi")], temperature=0.2, top_p=0.9))["inferenceConfig"] == {
        "temperature": 0.2, "topP": 0.9}


def test_an_empty_tool_result_is_not_a_blank_text_block() -> None:
    """Converse refuses blank text blocks ("text content blocks must be non-empty"), and the refused
    turn stays in the conversation, so every later call failed too."""
    call = ToolCall("tooluse_1", "lookup", {})
    for content in ("", "  ", []):
        body = sent(ChatRequest(NOVA, [Message.user("x"), Message.assistant([call]),
                                       Message(role=Role.TOOL, parts=[ToolResult("tooluse_1", content)])]))
        result = body["messages"][-1]["content"][0]["toolResult"]
        assert result["content"] == [{"text": "(no output)"}]


def test_redacted_thinking_round_trip() -> None:
    first, second = cassette(REC + "test_bedrock_model_thinking_part_redacted.yaml")
    question = Message.user("ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB")
    req = ChatRequest(SONNET37, [question], reasoning=ReasoningConfig(budget_tokens=1024))
    out = ADAPTER.parse_chat(first.response, req)
    assert isinstance(out.parts[0], Reasoning) and out.parts[0].redacted and out.parts[0].text == ""
    follow = ChatRequest(SONNET37, [question, out.to_message(), Message.user("What was that?")],
                         reasoning=ReasoningConfig(budget_tokens=1024))
    assert sent(follow) == recorded_thinking_body(second)


def test_thinking_with_tool_round_trip() -> None:
    first, second = cassette(REC + "test_bedrock_anthropic_tool_with_thinking.yaml")
    tool = Tool("get_user_country", None, {"additionalProperties": False, "properties": {}, "type": "object"})
    question = Message.user("What is the largest city in the user country?")
    req = ChatRequest(SONNET37, [question], tools=[tool], reasoning=ReasoningConfig(budget_tokens=1024))
    assert sent(req) == recorded_thinking_body(first)
    out = ADAPTER.parse_chat(first.response, req)
    assert [type(p).__name__ for p in out.parts] == ["Reasoning", "Text", "ToolCall"]
    call = out.tool_calls[0]
    follow = ChatRequest(SONNET37, [question, out.to_message(), Message.tool(call.id, "Mexico")], tools=[tool],
                         reasoning=ReasoningConfig(budget_tokens=1024))
    assert sent(follow) == recorded_thinking_body(second)
    assert "Mexico City" in ADAPTER.parse_chat(second.response, follow).text


@pytest.mark.parametrize("name,model,effort,fields", [
    ("test_bedrock_thinking_high_openai_variant", "openai.gpt-oss-120b-1:0", "high", {"reasoning_effort": "high"}),
    ("test_bedrock_thinking_true_qwen_variant", "qwen.qwen3-32b-v1:0", "high", {"reasoning_config": "high"}),
])
def test_reasoning_fields_per_model_family(name: str, model: str, effort: str, fields: dict[str, Any]) -> None:
    inter = rec(name)
    req = ChatRequest(model, [Message.user("Reply with the single word: ok")], reasoning=ReasoningConfig(effort=effort))  # type: ignore[arg-type]
    assert sent(req) == recorded_body(inter)
    assert recorded_body(inter)["additionalModelRequestFields"] == fields
    out = ADAPTER.parse_chat(inter.response, req)
    assert out.reasoning and "ok" in out.text


def test_reasoning_for_other_families() -> None:
    nova = sent(ChatRequest("us.amazon.nova-2-lite-v1:0", [Message.user("x")], reasoning=ReasoningConfig(effort="low")))
    assert nova["additionalModelRequestFields"] == {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}
    claude = sent(ChatRequest(SONNET4, [Message.user("x")], reasoning=ReasoningConfig(effort="high")))
    assert claude["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 16384}}
    assert "additionalModelRequestFields" not in sent(ChatRequest("us.deepseek.r1-v1:0", [Message.user("x")],
                                                                  reasoning=ReasoningConfig()))
    with pytest.raises(InvalidRequestError, match="additionalModelRequestFields"):
        sent(ChatRequest("meta.llama3-8b", [Message.user("x")], reasoning=ReasoningConfig(effort="low")))


@pytest.mark.parametrize("model", ["us.amazon.nova-premier-v1:0", "openai.gpt-oss-120b-1:0", "qwen.qwen3-32b-v1:0",
                                   "meta.llama3-8b", SONNET4])
def test_reasoning_0_asks_no_model_for_reasoning(model: str) -> None:
    """``reasoning=0`` is "no thinking" (as on Anthropic's API, OpenAI and Gemini): Nova got
    reasoningConfig enabled and gpt-oss reasoning_effort, both at "medium"."""
    req = ChatRequest(model, [Message.user("x")], reasoning=to_reasoning(0))
    assert "additionalModelRequestFields" not in sent(req)


def test_unsigned_reasoning_is_not_sent_back() -> None:
    body = sent(ChatRequest(SONNET4, [Message.user("a"), Message.assistant([Reasoning("hmm"), Text("b")]), Message.user("c")]))
    assert body["messages"][1]["content"] == [{"text": "b"}]


# --------------------------------------------------------------------------- caching and usage


def test_cache_points_and_cache_usage() -> None:
    first, second = cassette(REC + "test_bedrock_cache_write_and_read.yaml")
    recorded = recorded_body(first)
    system_text = recorded["system"][0]["text"]
    user = recorded["messages"][0]["content"]
    doc_text, question = user[0]["text"], user[4]["text"]
    assert user[1]["document"]["format"] == "txt"  # text documents are not an attachment kind here
    req = ChatRequest(SONNET45, [Message(Role.SYSTEM, [Text(system_text, cache_control={"type": "ephemeral"})]),
                                 Message.user([Text(doc_text), Text(question, cache_control={"type": "ephemeral"})])])
    body = sent(req)
    assert body["system"] == recorded["system"]
    assert body["messages"][0]["content"] == [user[0], user[4], user[5]]
    out = ADAPTER.parse_chat(first.response, req)
    assert (out.usage.input_tokens, out.usage.cached_tokens, out.usage.cache_write_tokens) == (1324, 0, 1322)
    assert out.usage.total_tokens == 1329
    again = ADAPTER.parse_chat(second.response, req)
    assert (again.usage.input_tokens, again.usage.cached_tokens, again.usage.cache_write_tokens) == (1324, 1322, 0)


def test_a_tool_with_cache_control_is_followed_by_a_cache_point() -> None:
    """Caching a long tool list: a marked tool is followed by a ``cachePoint`` in toolConfig.tools,
    as a marked text block is in the messages; unmarked tools get none."""
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    req = ChatRequest(SONNET45, [Message.user("find it")], tools=[
        Tool("search", "web search", params), Tool("fetch", "fetch a page", params, cache_control={"type": "ephemeral"})])
    assert sent(req)["toolConfig"] == {"tools": [
        {"toolSpec": {"name": "search", "description": "web search", "inputSchema": {"json": params}}},
        {"toolSpec": {"name": "fetch", "description": "fetch a page", "inputSchema": {"json": params}}},
        {"cachePoint": {"type": "default"}},
    ]}
    unmarked = ChatRequest(SONNET45, [Message.user("find it")], tools=[Tool("search", "web search", params)])
    assert "cachePoint" not in json.dumps(sent(unmarked))


def test_a_one_hour_cache_mark_is_a_one_hour_cache_point_for_claude() -> None:
    """Converse's cachePoint takes a ``ttl``: Anthropic's ``"ttl": "1h"`` mark (Claude Code's) was
    sent as a five-minute cache point, so a session paid the cache write again after every pause.
    A model other than Claude gets the plain cache point it takes."""
    hour = {"type": "ephemeral", "ttl": "1h"}
    params = {"type": "object"}

    def request(model: str) -> ChatRequest:
        return ChatRequest(model, [Message(Role.SYSTEM, [Text("rules", cache_control=hour)]),
                                   Message.user([Text("doc", cache_control=hour), Text("q", cache_control={
                                       "type": "ephemeral"})])],
                           tools=[Tool("search", "web search", params, cache_control=hour)])

    body = sent(request(SONNET45))
    assert body["system"][1] == body["messages"][0]["content"][1] == body["toolConfig"]["tools"][1] == {
        "cachePoint": {"type": "default", "ttl": "1h"}}
    assert body["messages"][0]["content"][3] == {"cachePoint": {"type": "default"}}
    nova = json.dumps(sent(request(NOVA)))
    assert '"ttl"' not in nova and nova.count('"cachePoint"') == 4


def test_cache_marks_reach_only_the_models_with_prompt_caching() -> None:
    """A cachePoint makes Bedrock refuse the whole call on a model without prompt caching ("You
    invoked an unsupported model or your request did not allow prompt caching"): Claude Code's
    marks, or a route falling back from Claude to Llama or Kimi, failed every call there. They go
    to Claude (3.5 Haiku, 3.7 Sonnet and later) and Nova only, and as asked to an ARN that does
    not say which model it runs."""
    mark = {"type": "ephemeral"}
    history = [Message(Role.SYSTEM, [Text("rules", cache_control=mark)]),
               Message.user([Text("doc", cache_control=mark), Text("q")]),
               Message.assistant([ToolCall("t1", "search", {}, cache_control=mark)]),
               Message.tool("t1", "found", cache_control=mark)]
    tools = [Tool("search", "web search", {"type": "object"}, cache_control=mark)]

    def points(model: str) -> int:
        body = sent(ChatRequest(model, history, tools=tools))
        assert [b for b in body["system"] if "text" in b] == [{"text": "rules"}]
        assert body["messages"][0]["content"][0] == {"text": "doc"}
        return json.dumps(body).count('"cachePoint"')

    for model in (LLAMA, "moonshot.kimi-k2-thinking", "us.deepseek.r1-v1:0", "qwen.qwen3-32b-v1:0",
                  "anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-3-5-sonnet-20240620-v1:0"):
        assert points(model) == 0, model
    for model in (SONNET45, SONNET37, NOVA, "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1"):
        assert points(model) == 5, model


def test_one_hour_cache_writes_are_counted_apart_and_cost_more() -> None:
    """``usage.cacheDetails`` splits the cache writes by TTL; the one-hour ones bill at the higher
    rate, and were all booked at the five-minute rate."""
    from cloverleaf._pricing import lookup

    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 2008, "cacheReadInputTokens": 0,
                        "cacheWriteInputTokens": 2000, "cacheDetails": [{"inputTokens": 1500, "ttl": "1h"},
                                                                        {"inputTokens": 500, "ttl": "5m"}]}}
    req = ChatRequest(SONNET45, [Message.user("x")])
    usage = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(answer).encode()), req).usage
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens, usage.total_tokens) == (2000, 1500, 2008)
    price = lookup("bedrock", SONNET45)
    assert price is not None and price.cache_write_1h is not None and price.cache_write is not None
    five_minutes = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(
        {**answer, "usage": {**answer["usage"], "cacheDetails": [{"inputTokens": 2000, "ttl": "5m"}]}}).encode()),
        req).usage
    assert five_minutes.cache_write_1h_tokens == 0
    assert (price.cost(usage) or 0) > (price.cost(five_minutes) or 0)


def test_a_requests_top_level_cache_control_is_not_sent() -> None:
    """Converse has no automatic prompt caching (only explicit cachePoints): Anthropic's top-level
    mark is ignored, not sent as a field Converse would refuse."""
    req = ChatRequest(SONNET45, [Message.user("hi")], cache_control={"type": "ephemeral"})
    body = sent(req)
    assert body == sent(ChatRequest(SONNET45, [Message.user("hi")])) and "cache" not in json.dumps(body).lower()


def test_a_tool_call_or_result_with_cache_control_is_followed_by_a_cache_point() -> None:
    """An agent loop's rolling breakpoint on its last tool result (or on a tool call) is a
    ``cachePoint`` after that block, as after a marked text block; unmarked ones get none."""
    req = ChatRequest(SONNET45, [
        Message.user("read it"),
        Message.assistant([ToolCall("t1", "read", {"path": "a"}, cache_control={"type": "ephemeral"})]),
        Message.tool("t1", "file a", cache_control={"type": "ephemeral"}),
    ], tools=[Tool("read")])
    messages = sent(req)["messages"]
    assert messages[1]["content"] == [{"toolUse": {"toolUseId": "t1", "name": "read", "input": {"path": "a"}}},
                                      {"cachePoint": {"type": "default"}}]
    assert messages[2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "file a"}], "status": "success"}},
        {"cachePoint": {"type": "default"}}]
    unmarked = ChatRequest(SONNET45, [Message.user("read it"), Message.assistant([ToolCall("t1", "read", {})]),
                                      Message.tool("t1", "file a")], tools=[Tool("read")])
    assert "cachePoint" not in json.dumps(sent(unmarked))


# --------------------------------------------------------------------------- attachments


def test_image_input() -> None:
    download, call = cassette(REC + "test_image_url_input.yaml")
    image = Attachment(type="image", data=download.response.body, media_type="image/jpeg")
    req = ChatRequest("us.amazon.nova-pro-v1:0", [Message.system("You are a helpful chatbot."),
                                                  Message.user([Text("What is this vegetable?"), image])])
    assert sent(req) == recorded_body(call)
    assert "potato" in ADAPTER.parse_chat(call.response, req).text


def test_pdf_input() -> None:
    download, call = cassette(REC + "test_document_url_input.yaml")
    pdf = Attachment(type="pdf", data=download.response.body, media_type="application/pdf")
    req = ChatRequest("anthropic.claude-v2", [Message.system("You are a helpful chatbot."),
                                              Message.user([Text("What is the main content on this document?"), pdf])])
    assert sent(req) == recorded_body(call)
    assert "Dummy PDF file" in ADAPTER.parse_chat(call.response, req).text


def test_several_documents_get_distinct_names() -> None:
    inter = rec("test_bedrock_multiple_documents_in_history")
    recorded = recorded_body(inter)
    import base64

    pdf = base64.b64decode(recorded["messages"][0]["content"][1]["document"]["source"]["bytes"])
    doc = Attachment(type="pdf", data=pdf, media_type="application/pdf")
    req = ChatRequest(SONNET37, [Message.user([Text("Here is a PDF document: "), doc]), Message.assistant("foo bar"),
                                 Message.user([Text("Here is another PDF document: "), doc]),
                                 Message.assistant("foo bar 2"), Message.user("What is in the documents?")])
    assert sent(req) == recorded
    named = sent(ChatRequest(NOVA, [Message.user([Attachment(type="pdf", data=b"%PDF", filename="Q3 report.final.pdf"),
                                                  Attachment(type="pdf", data=b"%PDF", filename="Q3 report.final.pdf")])]))
    assert [b["document"]["name"] for b in named["messages"][0]["content"]] == ["Q3 report final", "Q3 report final 2"]


def test_a_numbered_name_never_repeats_a_name_given_out() -> None:
    """``report 2.pdf`` after two ``report.pdf``: the second was numbered ``report 2`` already, so
    Bedrock got two documents of one name and answered 400; a taken number is skipped."""
    pdfs = [Attachment(type="pdf", data=b"%PDF", filename=n) for n in
            ("report.pdf", "report.pdf", "report 2.pdf", "Document 1.pdf", None, "x" * 300, "x" * 300)]
    names = [b["document"]["name"] for b in sent(ChatRequest(NOVA, [Message.user(pdfs)]))["messages"][0]["content"]]
    assert names == ["report", "report 2", "report 2 2", "Document 1", "Document 2", "x" * 200, "x" * 198 + " 2"]


def test_documents_keep_context_and_citations_for_claude_and_read_as_text_elsewhere() -> None:
    """A Document is Converse's document block for Claude (text, content and PDF sources, context,
    citations, a cache point after it); other models read its title and context as text."""
    parts = [Document("The grass is green.", title="My Document", context="Trustworthy.", citations=True),
             Document([Text("First."), Text("Second.")], title="Chunks", citations=True,
                      cache_control={"type": "ephemeral"}),
             Document(Attachment(type="pdf", data=b"%PDF", media_type="application/pdf"), title="Q3 report.pdf",
                      context="figures"),
             Text("What colour?")]
    pdf_block = {"document": {"format": "pdf", "name": "Q3 report", "source": {"bytes": "JVBERg=="}}}
    assert sent(ChatRequest(SONNET45, [Message.user(parts)]))["messages"][0]["content"] == [
        {"document": {"format": "txt", "name": "My Document", "source": {"text": "The grass is green."},
                      "context": "Trustworthy.", "citations": {"enabled": True}}},
        {"document": {"format": "txt", "name": "Chunks", "source": {"content": [{"text": "First."}, {"text": "Second."}]},
                      "citations": {"enabled": True}}},
        {"cachePoint": {"type": "default"}},
        {"document": {**pdf_block["document"], "context": "figures"}},
        {"text": "What colour?"}]
    assert sent(ChatRequest(NOVA, [Message.user(parts)]))["messages"][0]["content"] == [
        {"text": "Document: My Document\nContext: Trustworthy.\nThe grass is green."},
        {"text": "Document: Chunks\nFirst.\nSecond."}, {"cachePoint": {"type": "default"}},
        {"text": "Document: Q3 report.pdf\nContext: figures"}, pdf_block, {"text": "What colour?"}]


def test_attachments_bedrock_cannot_take() -> None:
    with pytest.raises(UnsupportedCapability, match="audio input"):
        sent(ChatRequest(NOVA, [Message.user([Attachment(type="audio", data=b"RIFF", media_type="audio/wav")])]))
    with pytest.raises(UnsupportedCapability, match="URL"):
        sent(ChatRequest(NOVA, [Message.user([Attachment(type="image", url="https://x/y.png", fetch="provider",
                                                         media_type="image/png")])]))
    with pytest.raises(InvalidRequestError, match="png, jpeg"):
        sent(ChatRequest(NOVA, [Message.user([Attachment(type="image", data=b"x", media_type="image/tiff")])]))
    s3 = sent(ChatRequest(NOVA, [Message.user([Attachment(type="image", url="s3://b/k.png", fetch="provider",
                                                          media_type="image/png")])]))
    assert s3["messages"][0]["content"][0] == {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/k.png"}}}}


def test_tool_result_with_an_image() -> None:
    result = ToolResult("t1", [Text("Here it is:"), Attachment(type="image", data=b"\x89PNG", media_type="image/png")])
    body = sent(ChatRequest(NOVA, [Message.user("x"), Message.assistant([ToolCall("t1", "get_photo", {})]),
                                   Message(Role.TOOL, [result])], tools=[Tool("get_photo")]))
    assert body["messages"][2]["content"][0]["toolResult"]["content"] == [
        {"text": "Here it is:"}, {"image": {"format": "png", "source": {"bytes": "iVBORw=="}}}]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["test_bedrock_error", "test_bedrock_streaming_error", "test_bedrock_count_tokens_error"])
def test_recorded_errors(name: str) -> None:
    err = ADAPTER.parse_error(rec(name).response, "us.does-not-exist-model-v1:0")
    assert type(err) is InvalidRequestError
    assert err.status == 400 and err.message == "The provided model identifier is invalid."
    assert err.provider == "bedrock" and err.model == "us.does-not-exist-model-v1:0"


def _error(status: int, etype: str, message: str) -> HttpResponse:
    headers = {"content-type": "application/json", "x-amzn-errortype": f"{etype}:http://internal.amazon.com/coral/com.amazon.bedrock/",
               "x-amzn-requestid": "req-1"}
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


@pytest.mark.parametrize("status,etype,message,cls", [
    (400, "ValidationException", "Malformed input request", InvalidRequestError),
    (400, "ValidationException", "Input is too long for requested model.", ContextWindowExceededError),
    (400, "ValidationException", "prompt is too long: 215000 tokens > 200000 maximum", ContextWindowExceededError),
    # Claude's prompt plus max_tokens, Bedrock's byte limit and Nova's wording: context-window errors too,
    # so a route falls back to a model with a longer window (these were plain InvalidRequestErrors)
    (400, "ValidationException", "input length and `max_tokens` exceed context limit: 195000 + 8192 > 200000, "
                                 "decrease input length or `max_tokens` and try again", ContextWindowExceededError),
    (400, "ValidationException", "The model returned the following errors: too many total text bytes: 9000001 > 9000000",
     ContextWindowExceededError),
    (400, "ValidationException", "The model returned the following errors: Input Tokens Exceeded: Number of input "
                                 "tokens exceeds maximum length. Please update the input to try again.",
     ContextWindowExceededError),
    (400, "ValidationException", "The model returned the following errors: This model's maximum context length is "
                                 "131072 tokens. Please reduce the length of the prompt", ContextWindowExceededError),
    (400, "ValidationException", "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy "
                                 "constraint: Member must have value greater than or equal to 1", InvalidRequestError),
    (403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                                   "bedrock:InvokeModel", PermissionDeniedError),
    (403, "UnrecognizedClientException", "The security token included in the request is invalid.", AuthenticationError),
    (403, "ExpiredTokenException", "The security token included in the request is expired", AuthenticationError),
    (404, "ResourceNotFoundException", "Model not found", NotFoundError),
    (429, "ThrottlingException", "Too many requests, please wait before trying again.", RateLimitError),
    (429, "ModelNotReadyException", "Model is not ready", ServerError),
    (503, "ServiceUnavailableException", "Bedrock is unable to process your request.", OverloadedError),
    (408, "ModelTimeoutException", "Model has timed out", ServerError),
    (500, "InternalServerException", "oops", ServerError),
])
def test_error_types(status: int, etype: str, message: str, cls: type) -> None:
    err = ADAPTER.parse_error(_error(status, etype, message), "m")
    assert type(err) is cls
    assert err.code == etype and err.message == message and err.status == status and err.request_id == "req-1"


@pytest.mark.parametrize("status,etype,message,cls,hint", [
    (400, "ValidationException", "Invocation of model ID anthropic.claude-3-5-haiku-20241022-v1:0 with on-demand "
     "throughput isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that contains "
     "this model.", InvalidRequestError, "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0"),
    (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.",
     PermissionDeniedError, "Model access page"),
    (403, "InvalidSignatureException", "Signature expired: 20240102T030405Z is now earlier than 20240102T031000Z "
     "(20240102T031500Z - 5 min.)", AuthenticationError, "clock is more than 5 minutes off"),
    (403, "InvalidSignatureException", "Signature not yet current: 20240102T040000Z is still later than "
     "20240102T031500Z (20240102T031000Z + 5 min.)", AuthenticationError, "clock is more than 5 minutes off"),
])
def test_errors_whose_fix_bedrock_does_not_name_say_what_to_do(status: int, etype: str, message: str, cls: type,
                                                               hint: str) -> None:
    """A model that needs an inference profile, one the account was not given access to, and a
    clock SigV4 refuses: Bedrock's words left the caller guessing which id to write, where to
    enable the model, or blamed nothing (a skewed clock looks like bad keys)."""
    err = ADAPTER.parse_error(_error(status, etype, message), "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert type(err) is cls and err.status == status and err.code == etype
    assert err.message.startswith(message) and hint in err.message


def test_error_without_json() -> None:
    err = ADAPTER.parse_error(HttpResponse(502, {}, b"<html>Bad Gateway</html>"))
    assert isinstance(err, ServerError) and "Bad Gateway" in err.message
    assert err.retryable


def test_bearer_key_error_shape() -> None:
    err = ADAPTER.parse_error(HttpResponse(403, {"x-amzn-errortype": "UnrecognizedClientException"},
                                           b'{"Message":"Invalid API Key format"}'))
    assert isinstance(err, AuthenticationError) and err.message == "Invalid API Key format"


def test_garbage_success_body_is_malformed() -> None:
    req = ChatRequest(NOVA, [Message.user("x")])
    with pytest.raises(MalformedResponseError):
        ADAPTER.parse_chat(HttpResponse(200, {}, b"not json"), req)
    with pytest.raises(MalformedResponseError):
        ADAPTER.parse_chat(HttpResponse(200, {}, b'{"output": {}}'), req)


@pytest.mark.parametrize("raw,finish", [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
                                        ("tool_use", "tool_calls"), ("guardrail_intervened", "content_filter"),
                                        ("content_filtered", "content_filter"), ("something_new", "other")])
def test_stop_reasons(raw: str, finish: str) -> None:
    body = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": raw,
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    out = ADAPTER.parse_chat(HttpResponse(200, {"x-amzn-requestid": "r1"}, json.dumps(body).encode()),
                             ChatRequest(NOVA, [Message.user("x")]))
    assert out.finish_reason == finish and out.metadata.raw_finish_reason == raw and out.metadata.response_id == "r1"


OPUS47 = "us.anthropic.claude-opus-4-7"


def test_claude_thinking_on_bedrock_follows_anthropics_modes() -> None:
    """Claude on Bedrock checks the rules it checks on Anthropic's API: Opus 4.7 and later take
    adaptive thinking only (a budget is a 400) and refuse temperature and top_p; 4.6 takes
    adaptive thinking when asked; ``output_config.effort`` travels in the model's own fields."""
    def fields(model: str, **kw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        body = sent(ChatRequest(model, [Message.user("hi")], **kw))
        return body.get("inferenceConfig"), body.get("additionalModelRequestFields")

    assert fields(OPUS47, reasoning=ReasoningConfig(effort="high"), max_tokens=4000, temperature=0.3) == (
        {"maxTokens": 4000}, {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}})
    assert fields(OPUS47, temperature=0.3, top_p=0.9) == (None, None)
    claude_code = ReasoningConfig(effort="high", adaptive=True, native_effort="xhigh")
    assert fields("anthropic.claude-opus-4-6-v1", reasoning=claude_code, max_tokens=8000)[1] == {
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}}
    assert fields("anthropic.claude-opus-4-6-v1", reasoning=ReasoningConfig(effort="high", native_effort="low"))[1] == {
        "output_config": {"effort": "low"}}                      # effort alone: no thinking
    assert fields(SONNET45, reasoning=claude_code, max_tokens=32000)[1] == {
        "thinking": {"type": "enabled", "budget_tokens": 16384}, "output_config": {"effort": "xhigh"}}


def test_adaptive_thinking_on_bedrock_allows_a_forced_tool() -> None:
    tool = Tool("lookup", "find it", {"type": "object", "properties": {}})
    req = ChatRequest(OPUS47, [Message.user("hi")], tools=[tool], tool_choice=ToolChoice("required"),
                      reasoning=ReasoningConfig(effort="low"))
    assert sent(req)["toolConfig"]["toolChoice"] == {"any": {}}
