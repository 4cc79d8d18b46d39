"""The OpenAI Responses adapter on recorded traffic: requests rebuilt and compared with what
the real API accepted, responses parsed, errors mapped, and multi-turn reasoning + tool
conversations rebuilt from our own parsed responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cloverleaf._errors import (
    ContentFilterError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
    UnsupportedCapability,
)
from cloverleaf._http import HttpResponse
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from cloverleaf.providers.openai.responses import OpenAIResponsesAdapter
from tests.providers._openai_replay import CREW, PA, adapter, config, interaction

RESP = f"{PA}/test_openai_responses"
OA = f"{PA}/test_openai"
ROW = "openai-responses"

_PLAN = Tool("update_plan", parameters={"additionalProperties": False, "properties": {"plan": {"type": "string"}},
                                        "required": ["plan"], "type": "object"}, strict=True)
_CAPITAL = Tool("get_capital", parameters={"additionalProperties": False,
                                           "properties": {"country": {"type": "string"}},
                                           "required": ["country"], "type": "object"}, strict=True)
_COUNTRY = Tool("get_user_country", "", {"additionalProperties": False, "properties": {}, "type": "object"})
_CITY = {"additionalProperties": False, "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "type": "object"}


def built(req: ChatRequest, **extra: Any) -> dict[str, Any]:
    http = adapter(ROW).build_chat(req, config(ROW, **extra))
    assert http.url == "https://api.openai.com/v1/responses"
    return json.loads(http.body or b"{}")


def recorded(path: str, index: int = -1) -> dict[str, Any]:
    body = interaction(path, index).request_json
    body.pop("stream", None) if body.get("stream") is False else None  # we omit the default
    for tool in body.get("tools") or ():
        if tool.get("description") in (None, ""):
            tool.pop("description")  # pydantic-ai sends null/empty descriptions; we omit them
    return body


def parse(path: str, index: int = -1, req: ChatRequest | None = None):
    return adapter(ROW).parse_chat(interaction(path, index).response, req or ChatRequest("m", [Message.user("x")]))


# --------------------------------------------------------------------------- registry and request


def test_row_kind_and_model_prefix_select_this_adapter() -> None:
    from cloverleaf._config import Settings
    from cloverleaf._engine import Engine

    target = Engine(Settings(env={"OPENAI_API_KEY": "sk-x"})).resolve("openai-responses/o3")
    assert isinstance(target.adapter, OpenAIResponsesAdapter) and target.model == "o3"
    caps = target.adapter.capabilities
    assert caps.reasoning and caps.stream_tools and caps.pdf_input and caps.url_pdf_input
    assert not (caps.embeddings or caps.image_generation or caps.audio_input)


def test_text_request_matches_recording_and_sends_bearer_key() -> None:
    path = f"{RESP}/test_openai_responses_model_simple_response.yaml"
    req = ChatRequest("gpt-4o", [Message.user("What is the capital of France?")])
    http = adapter(ROW).build_chat(req, config(ROW))
    assert http.headers["Authorization"] == "Bearer sk-test-secret"
    assert json.loads(http.body or b"") == recorded(path)
    assert "sk-test-secret" not in repr(config(ROW))


def test_system_prompt_becomes_instructions() -> None:
    path = f"{RESP}/test_openai_responses_system_prompt.yaml"
    req = ChatRequest("gpt-4o", [Message.system("You are a helpful assistant."),
                                 Message.user("What is the capital of France?")])
    assert built(req) == recorded(path)


def test_tools_flat_and_strict_structured_output_in_text_format() -> None:
    path = f"{RESP}/test_native_output.yaml"
    req = ChatRequest("gpt-4o", [Message.user("What is the largest city in the user country?")],
                      tools=[_COUNTRY], tool_choice=ToolChoice("auto"),
                      response_format=ResponseFormat(schema=_CITY, name="CityLocation"))
    assert built(req) == recorded(path, 0)


def test_json_object_mode() -> None:
    body = built(ChatRequest("gpt-4o", [Message.user("json please")],
                             response_format=ResponseFormat(type="json_object")))
    assert body["text"] == {"format": {"type": "json_object"}}
    assert recorded(f"{RESP}/test_prompted_output.yaml", 0)["text"] == body["text"]


def test_strict_schema_with_optional_property_falls_back_to_non_strict() -> None:
    fmt = ResponseFormat(schema={"type": "object", "properties": {"a": {"type": "string"}}}, name="a b")
    body = built(ChatRequest("gpt-4o", [Message.user("x")], response_format=fmt))
    assert body["text"]["format"] == {"type": "json_schema", "name": "a_b", "strict": False, "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}


def test_tool_choice_forms() -> None:
    req = ChatRequest("gpt-4o", [Message.user("x")], tools=[_CAPITAL], parallel_tool_calls=False,
                      tool_choice=ToolChoice("tool", "get_capital"))
    body = built(req)
    assert body["tool_choice"] == {"type": "function", "name": "get_capital"}
    assert body["parallel_tool_calls"] is False
    assert body["tools"] == [{"type": "function", "name": "get_capital", "strict": True,
                              "parameters": _CAPITAL.parameters}]
    assert built(ChatRequest("gpt-4o", [Message.user("x")], tool_choice=ToolChoice("required")))[
        "tool_choice"] == "required"


def test_reasoning_model_request_matches_recording() -> None:
    """gpt-5 + effort + a requested summary: include encrypted reasoning, instructions, strict tool."""
    path = f"{RESP}/test_openai_responses_thinking_with_tool_calls.yaml"
    first = recorded(path, 0)
    req = ChatRequest("gpt-5", [Message.system(first["instructions"]), Message.user(first["input"][0]["content"])],
                      tools=[_PLAN], tool_choice=ToolChoice("auto"),
                      reasoning=ReasoningConfig(effort="low", summary=True))
    assert built(req, reasoning_summary="detailed") == first
    assert built(req)["reasoning"] == {"effort": "low", "summary": "auto"}


def test_reasoning_summary_auto_recording() -> None:
    path = f"{RESP}/test_reasoning_summary_auto.yaml"
    rec = recorded(path)
    req = ChatRequest("gpt-5.2", [Message.system(rec["instructions"]), Message.user(rec["input"][0]["content"])],
                      reasoning=ReasoningConfig(effort="high", summary=True))
    assert built(req) == rec


def test_reasoning_model_drops_sampling_and_summary_is_opt_in() -> None:
    req = ChatRequest("o3-mini", [Message.user("x")], temperature=0.2, top_p=0.5, max_tokens=100,
                      reasoning=ReasoningConfig(budget_tokens=10_000))
    body = built(req)
    assert "temperature" not in body and "top_p" not in body
    assert body["max_output_tokens"] == 100
    assert body["reasoning"] == {"effort": "high"}  # no summary unless asked: unverified orgs get a 400
    assert body["include"] == ["reasoning.encrypted_content"]
    plain = built(ChatRequest("gpt-4o", [Message.user("x")], temperature=0.2, top_p=0.5))
    assert (plain["temperature"], plain["top_p"]) == (0.2, 0.5) and "include" not in plain


def test_store_option_and_extra_body() -> None:
    body = built(ChatRequest("o3", [Message.user("x")], extra_body={"service_tier": "flex"}), store=False)
    assert body["store"] is False and body["service_tier"] == "flex"


def test_a_model_without_reasoning_is_never_asked_for_encrypted_reasoning() -> None:
    """Not even under ``store: false``: gpt-4o and gpt-4.1 answer the ``include`` with a 400
    "Encrypted content is not supported with this model" (pydantic-ai #2865)."""
    for model in ("gpt-4o", "gpt-4.1-mini"):
        for req, options in ((ChatRequest(model, [Message.user("x")]), {"store": False}),
                             (ChatRequest(model, [Message.user("x")], extra_body={"store": False}), {})):
            body = built(req, **options)
            assert body["store"] is False and "include" not in body
    assert built(ChatRequest("o3", [Message.user("x")]), store=False)["include"] == ["reasoning.encrypted_content"]


def test_stop_sequences_are_refused_before_sending() -> None:
    with pytest.raises(InvalidRequestError, match="no stop sequences"):
        built(ChatRequest("gpt-4o", [Message.user("x")], stop=["\n"]))


def test_background_mode_is_refused_before_sending_and_a_queued_answer_is_no_answer() -> None:
    """``background: true`` made OpenAI answer at once with an empty ``queued`` response, which came
    back as an empty answer (finish ``other``) while the real one ran, billed, unread."""
    with pytest.raises(InvalidRequestError, match="drop 'background'"):
        built(ChatRequest("o3", [Message.user("x")], extra_body={"background": True}))
    assert "background" not in built(ChatRequest("o3", [Message.user("x")]))
    for status in ("queued", "in_progress"):
        body = {"id": "resp_1", "object": "response", "model": "o3", "status": status, "background": True,
                "output": [], "usage": None}
        with pytest.raises(MalformedResponseError, match=f"not finished \\(status '{status}'\\)"):
            adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("o3", []))


def test_image_and_pdf_inline_match_recordings() -> None:
    image = f"{OA}/test_image_url_input_force_download_response_api.yaml"
    rec = recorded(image)
    content = rec["input"][0]["content"]
    data = base64.b64decode(content[1]["image_url"].split(",", 1)[1])
    req = ChatRequest("gpt-4.1-nano", [Message.user([Text(content[0]["text"]),
                                                     Attachment(type="image", media_type="image/jpeg", data=data)])])
    rec.pop("previous_response_id")
    assert built(req) == rec

    pdf = f"{RESP}/test_openai_responses_document_as_binary_content_input.yaml"
    rec = recorded(pdf)
    part = rec["input"][0]["content"][1]
    data = base64.b64decode(part["file_data"].split(",", 1)[1])
    req = ChatRequest("gpt-4o", [Message.user([Text("What is in the document?"), Attachment(
        type="pdf", media_type="application/pdf", data=data, filename="filename.pdf")])])
    rec.pop("instructions")  # pydantic-ai sent an empty one
    assert built(req) == rec


def test_image_and_pdf_by_url() -> None:
    path = f"{OA}/test_document_url_input_response_api.yaml"
    rec = recorded(path)
    url = rec["input"][0]["content"][1]["file_url"]
    req = ChatRequest("gpt-4.1-nano", [Message.user([Text("What is the main content on this document?"),
                                                     Attachment(type="pdf", url=url, fetch="provider")])])
    assert built(req) == rec
    path = f"{RESP}/test_openai_responses_image_url_input.yaml"
    rec = recorded(path)
    url = rec["input"][0]["content"][1]["image_url"]
    req = ChatRequest("gpt-4o", [Message.user([Text("hello"), Attachment(type="image", url=url, fetch="provider")])])
    rec.pop("instructions")
    assert built(req) == rec


def test_audio_is_unsupported_and_names_alternatives() -> None:
    req = ChatRequest("gpt-4o", [Message.user([Attachment(type="audio", media_type="audio/wav", data=b"RIFF")])])
    with pytest.raises(UnsupportedCapability) as err:
        built(req)
    assert "openai" in err.value.alternatives and ROW not in err.value.alternatives


def test_tool_result_with_image_and_error_flag() -> None:
    req = ChatRequest("gpt-4o", [
        Message.user("look"),
        Message.assistant([ToolCall("call_1", "snap", {})]),
        Message(role="tool", parts=[
            ToolResult("call_1", [Text("here"), Attachment(type="image", media_type="image/png", data=b"\x89PNG")]),
        ]),
        Message(role="tool", parts=[ToolResult("call_2", "boom", is_error=True)]),
    ])
    items = built(req)["input"]
    assert items[1] == {"type": "function_call", "call_id": "call_1", "name": "snap", "arguments": "{}"}
    assert items[2]["output"] == [{"type": "input_text", "text": "here"},
                                  {"type": "input_image", "image_url": "data:image/png;base64,iVBORw==",
                                   "detail": "auto"}]
    assert items[3] == {"type": "function_call_output", "call_id": "call_2", "output": "Error: boom"}


def test_foreign_reasoning_is_dropped_and_id_less_text_is_a_plain_assistant_message() -> None:
    req = ChatRequest("gpt-5", [Message.user("hi"), Message.assistant([
        Reasoning("thinking", signature="EqQBCkYIBxgCKkC", provider="anthropic"), Text("hello")]),
        Message.user("again")])
    assert built(req)["input"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                   {"role": "user", "content": "again"}]


# --------------------------------------------------------------------------- responses


def test_text_response() -> None:
    resp = parse(f"{RESP}/test_openai_responses_model_simple_response.yaml")
    assert resp.text == "The capital of France is Paris."
    assert resp.finish_reason == "stop" and resp.metadata.raw_finish_reason == "completed"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (14, 8)
    assert resp.model == "gpt-4o-2024-08-06"
    assert resp.metadata.response_id == "resp_68c2e8c147ac819491bcd667055eadbc02e845978fbbb592"
    assert resp.parts[0].extra == {"item_id": "msg_68c2e8c26114819489dae5b59fceb7bf02e845978fbbb592"}


def test_parallel_function_calls() -> None:
    resp = parse(f"{RESP}/test_openai_responses_model_retry.yaml", 0)
    raw = interaction(f"{RESP}/test_openai_responses_model_retry.yaml", 0).response.json()["output"]
    assert [(c.id, c.name, c.raw_arguments) for c in resp.tool_calls] == [
        (o["call_id"], o["name"], o["arguments"]) for o in raw]
    assert [c.extra for c in resp.tool_calls] == [{"item_id": o["id"]} for o in raw]
    assert resp.finish_reason == "tool_calls"


def test_structured_output_is_the_text() -> None:
    resp = parse(f"{RESP}/test_native_output.yaml", 1)
    assert json.loads(resp.text) == {"city": "Mexico City", "country": "Mexico"}
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (89, 16)


def test_reasoning_summaries_encrypted_content_and_usage() -> None:
    path = f"{RESP}/test_openai_responses_thinking_with_tool_calls.yaml"
    resp = parse(path, 0)
    item = interaction(path, 0).response.json()["output"][0]
    reasoning = [p for p in resp.parts if isinstance(p, Reasoning)]
    assert [p.text for p in reasoning] == [s["text"] for s in item["summary"]]
    assert {p.signature for p in reasoning} == {item["id"]}
    assert reasoning[-1].redacted == item["encrypted_content"] and not any(p.redacted for p in reasoning[:-1])
    assert resp.reasoning and resp.reasoning.startswith("**Creating a structured poem**")
    assert (resp.usage.output_tokens, resp.usage.reasoning_tokens) == (1926, 1792)
    assert [c.name for c in resp.tool_calls] == ["update_plan"] and resp.finish_reason == "tool_calls"
    second = parse(path, 1)
    assert second.usage.cached_tokens == 2048 and second.usage.input_tokens == 2087


def test_encrypted_reasoning_without_summary_and_commentary_phase() -> None:
    resp = parse(f"{RESP}/test_openai_responses_phase_live.yaml", 0)
    kinds = [type(p).__name__ for p in resp.parts]
    assert kinds == ["Reasoning", "Text", "ToolCall"]
    assert resp.parts[0].text == "" and resp.parts[0].redacted
    assert resp.parts[1].extra["phase"] == "commentary"
    assert resp.reasoning is None and resp.finish_reason == "tool_calls"


def test_azure_v1_responses() -> None:
    path = f"{CREW}/llms/azure/TestAzureResponsesCall.test_call_delegates_to_responses.yaml"
    rec = interaction(path)
    spec_cfg = config(ROW, base_url="https://fake-azure-endpoint.openai.azure.com/openai/v1")
    req = ChatRequest("gpt-5.2-chat", [Message.user("Say hello in one sentence.")])
    http = adapter(ROW).build_chat(req, spec_cfg)
    assert http.url == rec.uri and json.loads(http.body or b"") == rec.request_json
    resp = adapter(ROW).parse_chat(rec.response, req)
    assert resp.text.startswith("Hello!") and resp.finish_reason == "stop"
    assert isinstance(resp.parts[0], Reasoning) and resp.parts[0].signature.startswith("rs_")


@pytest.mark.parametrize("reason, finish", [("max_output_tokens", "length"), ("content_filter", "content_filter")])
def test_incomplete_status(reason: str, finish: str) -> None:
    body = {"id": "resp_1", "model": "o3", "status": "incomplete", "incomplete_details": {"reason": reason},
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "incomplete",
                        "content": [{"type": "output_text", "text": "Partial", "annotations": []}]}],
            "usage": {"input_tokens": 5, "output_tokens": 16, "output_tokens_details": {"reasoning_tokens": 10}}}
    resp = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("o3", []))
    assert resp.finish_reason == finish and resp.metadata.raw_finish_reason == reason
    assert resp.text == "Partial" and resp.usage.reasoning_tokens == 10


def test_refusal_is_text_with_content_filter_finish() -> None:
    body = {"id": "resp_1", "model": "gpt-4o", "status": "completed", "output": [
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]}
    resp = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("gpt-4o", []))
    assert resp.text == "I can't help with that." and resp.finish_reason == "content_filter"
    assert resp.metadata.extra["refusal"] == "I can't help with that."
    assert resp.refusal == "I can't help with that."
    assert [p.extra for p in resp.parts] == [{"item_id": "msg_1", "refusal": True}]


def test_answer_text_and_refusal_are_separate_parts_and_go_back_as_one_message() -> None:
    """The refusal is marked (a server renders it as ``message.refusal`` / a ``refusal`` part), the
    answer text is not; sent back, both are the content of their one message item again."""
    body = {"id": "resp_1", "model": "gpt-4o", "status": "completed", "output": [
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Well. ", "annotations": []},
                     {"type": "refusal", "refusal": "No."}]}]}
    resp = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("gpt-5", []))
    assert [(p.text, p.extra) for p in resp.parts] == [("Well. ", {"item_id": "msg_1"}),
                                                       ("No.", {"item_id": "msg_1", "refusal": True})]
    assert resp.refusal == "No." and resp.finish_reason == "content_filter"
    history = [Reasoning("", signature="rs_1", redacted="enc", provider=ROW), *resp.parts]
    items = built(ChatRequest("gpt-5", [Message.assistant(history)]))["input"]
    assert items[1:] == [{"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                          "content": [{"type": "output_text", "text": "Well. ", "annotations": []},
                                      {"type": "refusal", "refusal": "No."}]}]


@pytest.mark.parametrize("code, cls", [("server_error", ServerError), ("rate_limit_exceeded", RateLimitError),
                                       ("invalid_image", InvalidRequestError), ("bio_policy", ContentFilterError),
                                       ("invalid_prompt", ContentFilterError)])   # the usage policy's flag
def test_failed_status_raises_mapped_error(code: str, cls: type) -> None:
    body = {"id": "resp_1", "model": "o3", "status": "failed", "output": [],
            "error": {"code": code, "message": "it failed"}}
    with pytest.raises(cls) as err:
        adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("o3", []))
    assert err.value.code == code and "it failed" in str(err.value)


def test_non_json_body_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        adapter(ROW).parse_chat(HttpResponse(200, {}, b"<html>"), ChatRequest("o3", []))


# --------------------------------------------------------------------------- errors (every recorded one)


def test_recorded_400_invalid_temperature() -> None:
    rec = interaction(f"{RESP}/test_openai_responses_model_http_error.yaml")
    assert rec.response.status == 400
    err = adapter(ROW).parse_error(rec.response, "gpt-4o")
    assert isinstance(err, InvalidRequestError) and not isinstance(err, ContentFilterError)
    assert err.status == 400 and err.code == "decimal_below_min_value" and err.provider == ROW
    assert "Invalid 'temperature'" in str(err) and not err.retryable


def test_recorded_400_reasoning_without_following_item() -> None:
    rec = interaction(f"{RESP}/test_openai_responses_thinking_with_modified_history.yaml", 1)
    assert rec.response.status == 400
    err = adapter(ROW).parse_error(rec.response, "gpt-5")
    assert isinstance(err, InvalidRequestError) and err.code == "invalid_request_error"
    assert "without its required following item" in str(err)


def test_auth_and_context_errors_share_the_chat_completions_mapping() -> None:
    from cloverleaf._errors import AuthenticationError, ContextWindowExceededError

    body = {"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    err = adapter(ROW).parse_error(HttpResponse(401, {}, json.dumps(body).encode()), "o3")
    assert isinstance(err, AuthenticationError) and "OPENAI_API_KEY" in str(err)
    body = {"error": {"message": "Your input exceeds the context window", "type": "invalid_request_error",
                      "code": "context_length_exceeded"}}
    assert isinstance(adapter(ROW).parse_error(HttpResponse(400, {}, json.dumps(body).encode()), "o3"),
                      ContextWindowExceededError)


# --------------------------------------------------------------------------- multi-turn round trips


def _next_request(path: str, index: int, req: ChatRequest, tool_outputs: dict[str, str]) -> dict[str, Any]:
    """Request ``index + 1`` built from our parse of response ``index`` plus the tool results."""
    resp = adapter(ROW).parse_chat(interaction(path, index).response, req)
    messages = [*req.messages, resp.to_message()]
    messages += [Message.tool(call.id, tool_outputs[call.name]) for call in resp.tool_calls]
    return built(ChatRequest(req.model, messages, tools=req.tools, tool_choice=req.tool_choice,
                             reasoning=req.reasoning), reasoning_summary="detailed")


def test_reasoning_and_tool_call_conversation_rebuilds_the_recorded_next_request() -> None:
    path = f"{RESP}/test_openai_responses_thinking_with_tool_calls.yaml"
    first = recorded(path, 0)
    req = ChatRequest("gpt-5", [Message.system(first["instructions"]), Message.user(first["input"][0]["content"])],
                      tools=[_PLAN], tool_choice=ToolChoice("auto"),
                      reasoning=ReasoningConfig(effort="low", summary=True))
    nxt = _next_request(path, 0, req, {"update_plan": "plan updated"})
    expected = recorded(path, 1)
    assert nxt["input"] == expected["input"]
    assert nxt == expected


def test_reasoning_commentary_and_tool_call_round_trip_by_item_id() -> None:
    path = f"{RESP}/test_openai_responses_phase_live.yaml"
    first = recorded(path, 0)
    req = ChatRequest("gpt-5.5", [Message.system(first["instructions"]), Message.user(first["input"][0]["content"])],
                      tools=[_CAPITAL], tool_choice=ToolChoice("auto"))
    nxt = _next_request(path, 0, req, {"get_capital": "Potato City"})
    assert nxt["input"] == recorded(path, 1)["input"]


def test_reasoning_then_answer_then_new_user_turn() -> None:
    """The follow-up question after a reasoned answer: the message goes back by id (the
    recorded 400 shows what happens when it does not)."""
    path = f"{RESP}/test_openai_responses_model_thinking_part.yaml"
    first = recorded(path, 0)
    req = ChatRequest("gpt-5", [Message.user(first["input"][0]["content"])],
                      reasoning=ReasoningConfig(effort="high", summary=True))
    resp = adapter(ROW).parse_chat(interaction(path, 0).response, req)
    expected = recorded(path, 1)
    follow_up = ChatRequest("gpt-5", [*req.messages, resp.to_message(), Message.user(expected["input"][-1]["content"])],
                            reasoning=req.reasoning)
    assert built(follow_up, reasoning_summary="detailed") == expected


def test_function_call_without_reasoning_round_trip() -> None:
    path = f"{RESP}/test_openai_responses_requires_function_call_status_none.yaml"
    first = recorded(path, 0)
    tool = Tool(first["tools"][0]["name"], first["tools"][0].get("description"), first["tools"][0]["parameters"],
                strict=first["tools"][0]["strict"])
    req = ChatRequest("gpt-5", [Message.user(first["input"][0]["content"])], tools=[tool],
                      tool_choice=ToolChoice("auto"))
    nxt = _next_request(path, 0, req, {tool.name: "42"})
    expected = recorded(path, 1)["input"]
    assert expected[2].pop("status") is None  # pydantic-ai sends an explicit null; we omit it
    assert nxt["input"] == expected


def test_conformance_case_requests_are_the_recorded_requests() -> None:
    """Each recorded conformance case's neutral request encodes to the body the real API answered."""
    from tests.conformance.cases_openai_responses import CASES

    for case in CASES:
        if case.synthetic:
            continue
        rec = recorded(case.cassette, case.interaction)
        for key in ("instructions", "previous_response_id"):
            if not rec.get(key):
                rec.pop(key, None)  # pydantic-ai sends empty/null values we omit
        assert built(case.request, **case.extra) == rec, case.id


def test_non_reasoning_history_goes_back_without_item_ids() -> None:
    path = f"{RESP}/test_openai_responses_non_reasoning_model_no_item_ids.yaml"
    first = recorded(path, 0)
    tool = Tool("get_meaning_of_life", parameters=first["tools"][0]["parameters"], strict=False)
    req = ChatRequest("gpt-4.1", [Message.user(first["input"][0]["content"])], tools=[tool],
                      tool_choice=ToolChoice("auto"))
    resp = parse(path, 0, req)
    assert resp.tool_calls[0].extra == {"item_id": "fc_68cc4fa649ac8195b0c6c239cd2c14470548824120ffcf74"}
    nxt = _next_request(path, 0, req, {tool.name: "42"})
    expected = recorded(path, 1)
    expected.pop("previous_response_id")
    assert nxt == expected


def test_item_ids_travel_only_with_their_reasoning() -> None:
    text = Text("answer", extra={"item_id": "msg_1", "phase": "final_answer"})
    call = ToolCall("call_1", "f", {}, extra={"item_id": "fc_1"})
    items = built(ChatRequest("gpt-5", [Message.assistant([text, call])]))["input"]
    assert items == [{"role": "assistant", "content": "answer"},
                     {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}]
    with_reasoning = [Reasoning("", signature="rs_1", redacted="enc", provider=ROW), text, call]
    items = built(ChatRequest("gpt-5", [Message.assistant(with_reasoning)]))["input"]
    assert items == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed", "phase": "final_answer",
         "content": [{"type": "output_text", "text": "answer", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "id": "fc_1"}]


def test_a_response_without_usage_has_unknown_usage_not_zero() -> None:
    body = {"id": "resp_1", "model": "o3", "status": "completed",
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Done", "annotations": []}]}]}
    resp = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), ChatRequest("o3", []))
    assert resp.text == "Done" and resp.usage.reported is False
