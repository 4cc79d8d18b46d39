"""Gemini adapter: requests built, and recorded generateContent responses parsed."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from cloverleaf._errors import ContentFilterError, InvalidRequestError, MalformedResponseError
from cloverleaf._http import HttpResponse
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
from tests.providers.test_gemini_support import (
    API,
    GOOGLE,
    GOOGLE_NEW,
    KEY,
    VERTEX,
    adapter,
    config,
    signature_bytes,
)
from tests.wire import cassette

# --------------------------------------------------------------------------- requests


def test_url_and_key_header_never_in_url():
    req = ChatRequest("gemini-2.5-flash", [Message.user("hi")])
    http = adapter().build_chat(req, config())
    assert http.method == "POST"
    assert http.url == f"{API}/v1beta/models/gemini-2.5-flash:generateContent"
    assert http.headers["x-goog-api-key"] == KEY
    assert KEY not in http.url and "key=" not in http.url
    assert http.redacted_headers()["x-goog-api-key"] == "<redacted>"
    assert KEY not in repr(config())


def test_stream_url_uses_sse():
    req = ChatRequest("gemini-2.0-flash", [Message.user("hi")], stream=True)
    http = adapter().build_chat(req, config())
    assert http.url == f"{API}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert http.stream is True
    assert KEY not in http.url


def test_versioned_base_url_is_used_as_is():
    req = ChatRequest("gemini-2.0-flash", [Message.user("hi")])
    assert adapter().build_chat(req, config(VERTEX)).url == f"{VERTEX}/models/gemini-2.0-flash:generateContent"
    assert adapter().build_chat(req, config(API + "/v1alpha/")).url == \
        f"{API}/v1alpha/models/gemini-2.0-flash:generateContent"


def test_system_prompt_and_user_text_match_the_recording():
    recorded = cassette(GOOGLE + "test_google_model.yaml")[0].request_json
    req = ChatRequest("gemini-2.5-flash", [Message.system("You are a chatbot."), Message.user("Hello!")])
    body = adapter().build_chat(req, config()).json()
    assert body["systemInstruction"] == {"parts": [{"text": "You are a chatbot."}]}
    assert body["contents"] == recorded["contents"]
    assert "generationConfig" not in body  # nothing asked for, nothing sent


def test_empty_assistant_turn_is_kept():
    recorded = cassette(GOOGLE + "test_google_model_empty_assistant_response.yaml")[0].request_json
    for empty in (Message.assistant(""), Message(Role.ASSISTANT, [])):
        req = ChatRequest("gemini-2.5-flash", [Message.user("Hi"), empty,
                                               Message.user("Was your previous response empty?")])
        assert adapter().build_chat(req, config()).json()["contents"] == recorded["contents"]


def test_tuned_model_url():
    http = adapter().build_chat(ChatRequest("tunedModels/my-model-123", [Message.user("x")]), config())
    assert http.url == f"{API}/v1beta/tunedModels/my-model-123:generateContent"


def test_generation_config_fields():
    req = ChatRequest("gemini-2.5-flash", [Message.user("hi")], temperature=0.2, top_p=0.9, max_tokens=64,
                      stop=["END"], seed=7)
    config_ = adapter().build_chat(req, config()).json()["generationConfig"]
    assert config_ == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"], "seed": 7}


def test_tools_and_tool_choice():
    tools = [Tool("get_user_country", "", {"type": "object", "properties": {}}),
             Tool("final_result", "The final response", {
                 "type": "object", "title": "Final", "additionalProperties": False,
                 "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                 "required": ["city", "country"]})]
    body = adapter().build_chat(ChatRequest("gemini-2.0-flash", [Message.user("q")], tools=tools,
                                            tool_choice=ToolChoice("required")), config()).json()
    decls = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in decls] == ["get_user_country", "final_result"]
    assert decls[1]["description"] == "The final response"
    assert decls[1]["parametersJsonSchema"]["required"] == ["city", "country"]
    assert decls[1]["parametersJsonSchema"]["additionalProperties"] is False  # the JSON Schema field takes it
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    for choice, expected in [(ToolChoice("auto"), {"mode": "AUTO"}), (ToolChoice("none"), {"mode": "NONE"}),
                             (ToolChoice("tool", "final_result"),
                              {"mode": "ANY", "allowedFunctionNames": ["final_result"]})]:
        body = adapter().build_chat(ChatRequest("m", [Message.user("q")], tools=tools, tool_choice=choice),
                                    config()).json()
        assert body["toolConfig"]["functionCallingConfig"] == expected


def test_tool_call_history_with_names_ids_and_signature():
    call = ToolCall("c1", "get_weather", {"city": "Paris"}, extra={"thoughtSignature": "U0lH"})
    messages = [
        Message.user("weather?"),
        Message.assistant([call]),
        Message.tool("c1", "sunny"),  # no name: taken from the matching call
        Message(Role.TOOL, [ToolResult("c2", "boom", name="other", is_error=True)]),
        Message.user("thanks"),
    ]
    contents = adapter().build_chat(ChatRequest("m", messages), config()).json()["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}, "thoughtSignature": "U0lH"}]}
    # consecutive user-side messages merge into one content: all responses answer the one model turn
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}, "id": "c1"}},
        {"functionResponse": {"name": "other", "response": {"error": "boom"}, "id": "c2"}},
        {"text": "thanks"},
    ]}
    assert len(contents) == 3


def _model_turn(model: str, calls: list[ToolCall]) -> list[dict]:
    messages = [Message.user("weather?"), Message.assistant(calls), *(Message.tool(c.id, "sunny") for c in calls)]
    return adapter().build_chat(ChatRequest(model, messages), config()).json()["contents"][1]["parts"]


def test_a_call_without_a_signature_gets_geminis_stand_in():
    """Gemini 3 refuses a model turn whose first function call is unsigned (a history from another
    provider, a client that dropped the signature); its documented stand-in skips that check. A
    turn Gemini signed keeps its own signature (parallel calls after the first come unsigned), and
    Gemini 1.x/2.x, which check nothing, are sent no stand-in."""
    foreign = [ToolCall("toolu_1", "get_weather", {"city": "Paris"}), ToolCall("toolu_2", "get_weather", {"city": "Rome"})]
    parts = _model_turn("gemini-3-pro-preview", foreign)
    assert [p.get("thoughtSignature") for p in parts] == ["skip_thought_signature_validator", None]
    signed = [ToolCall("c1", "get_weather", {"city": "Paris"}, extra={"thoughtSignature": "U0lH"}),
              ToolCall("c2", "get_weather", {"city": "Rome"})]
    assert [p.get("thoughtSignature") for p in _model_turn("gemini-3-pro-preview", signed)] == ["U0lH", None]
    for older in ("gemini-2.5-flash", "gemini-2.0-flash", "gemini-1.5-pro"):
        assert all("thoughtSignature" not in p for p in _model_turn(older, foreign))


def test_tool_result_without_name_or_call_is_refused():
    with pytest.raises(InvalidRequestError, match="needs the function name"):
        adapter().build_chat(ChatRequest("m", [Message.user("q"), Message.tool("nope", "x")]), config())


def test_reasoning_signatures_go_back_on_their_parts():
    parts = [Reasoning("thinking...", signature="VEhPVUdIVA==", provider="gemini"),
             Reasoning("", signature="VEVYVA==", provider="gemini"), Text("answer"),
             Reasoning("claude thoughts", signature="anthropic-sig", provider="anthropic")]
    contents = adapter().build_chat(ChatRequest("m", [Message.user("q"), Message.assistant(parts)]),
                                    config()).json()["contents"]
    assert contents[1]["parts"] == [
        {"text": "thinking...", "thought": True, "thoughtSignature": "VEhPVUdIVA=="},
        {"text": "answer", "thoughtSignature": "VEVYVA=="},
    ]


def test_trailing_text_signature_attaches_to_the_text_before_it():
    parts = [Text("{\"city\": \"Mexico City\"}"), Reasoning("", signature="RU5E", provider="gemini")]
    contents = adapter().build_chat(ChatRequest("m", [Message.user("q"), Message.assistant(parts)]),
                                    config()).json()["contents"]
    assert contents[1]["parts"] == [{"text": "{\"city\": \"Mexico City\"}", "thoughtSignature": "RU5E"}]


def test_structured_output_uses_response_json_schema():
    recorded = cassette(GOOGLE + "test_google_recursive_schema_native_output_gemini_2_5.yaml")[0].request_json
    schema = recorded["generationConfig"]["responseJsonSchema"]
    req = ChatRequest("gemini-2.5-flash", [Message.user("tree")], response_format=ResponseFormat(schema=schema))
    gen = adapter().build_chat(req, config()).json()["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    sent = gen["responseJsonSchema"]
    # the recursive definition stays a $ref; the root is inlined
    assert sent["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    assert sent["$defs"]["TreeNode"]["required"] == ["value"]

    json_mode = ChatRequest("m", [Message.user("x")], response_format=ResponseFormat(type="json_object"))
    assert adapter().build_chat(json_mode, config()).json()["generationConfig"] == {
        "responseMimeType": "application/json"}


def test_reasoning_config_to_thinking_config():
    def thinking(model: str, reasoning: ReasoningConfig) -> dict:
        req = ChatRequest(model, [Message.user("x")], reasoning=reasoning)
        return adapter().build_chat(req, config()).json()["generationConfig"]["thinkingConfig"]

    assert thinking("gemini-2.5-flash", ReasoningConfig(budget_tokens=2048)) == {
        "includeThoughts": True, "thinkingBudget": 2048}
    # the shared effort table: "low" is the same 2048-token budget as on Anthropic and Bedrock Claude
    assert thinking("gemini-2.5-pro", ReasoningConfig(effort="low")) == {"includeThoughts": True, "thinkingBudget": 2048}
    assert thinking("gemini-3-pro-preview", ReasoningConfig(effort="high")) == {
        "includeThoughts": True, "thinkingLevel": "high"}


def test_attachments_inline_and_by_uri():
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 10
    msg = Message.user([Text("what is this?"), Attachment(type="image", media_type="image/png", data=png),
                        Attachment(type="pdf", media_type="application/pdf", data=b"%PDF-1.4"),
                        Attachment(type="audio", media_type="audio/wav", data=b"RIFF....WAVE")])
    parts = adapter().build_chat(ChatRequest("m", [msg]), config()).json()["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    assert parts[2]["inlineData"]["mimeType"] == "application/pdf"
    assert base64.b64decode(parts[3]["inlineData"]["data"]) == b"RIFF....WAVE"

    uploaded = Attachment(type="pdf", media_type="application/pdf", fetch="provider",
                          url="https://generativelanguage.googleapis.com/v1beta/files/abc123")
    body = adapter().build_chat(ChatRequest("m", [Message.user([uploaded])]), config()).json()
    assert body["contents"][0]["parts"][0] == {"fileData": {"mimeType": "application/pdf", "fileUri": uploaded.url}}


def test_provider_fetched_web_url_is_refused_on_the_gemini_api_but_not_on_vertex():
    web = Attachment(type="image", media_type="image/png", fetch="provider", url="https://example.com/cat.png")
    req = ChatRequest("m", [Message.user([web])])
    with pytest.raises(InvalidRequestError, match='fetch="local"'):
        adapter().build_chat(req, config())
    recorded = cassette(GOOGLE + "test_google_url_input[AudioUrl].yaml")[0].request_json
    audio = Attachment(type="audio", media_type="audio/wav", fetch="provider",
                       url="https://cdn.openai.com/API/docs/audio/alloy.wav")
    body = adapter().build_chat(ChatRequest("gemini-2.0-flash", [Message.user([Text(
        recorded["contents"][0]["parts"][0]["text"]), audio])]), config(VERTEX)).json()
    sent = body["contents"][0]["parts"][1]["fileData"]
    want = recorded["contents"][0]["parts"][1]["fileData"]
    assert (sent["fileUri"], sent["mimeType"]) == (want["file_uri"], want["mime_type"])


def test_recorded_image_and_pdf_requests_match():
    for name, kind in [("test_google_model_image_url_input.yaml", "image"),
                       ("test_google_model_document_url_input.yaml", "pdf")]:
        download, call = cassette(GOOGLE + name)
        recorded = call.request_json["contents"][0]["parts"]
        att = Attachment(type=kind, media_type=recorded[1]["inlineData"]["mimeType"], data=download.response.body)
        built = adapter().build_chat(ChatRequest("gemini-2.0-flash", [Message.user([Text(recorded[0]["text"]), att])]),
                                     config()).json()["contents"][0]["parts"]
        assert built[0] == recorded[0]
        assert built[1]["inlineData"]["mimeType"] == recorded[1]["inlineData"]["mimeType"]
        # the recorded SDK sent URL-safe base64, we send the standard alphabet: the API takes both
        assert base64.b64decode(built[1]["inlineData"]["data"]) == \
            signature_bytes(recorded[1]["inlineData"]["data"]) == download.response.body


def test_extra_body_merges_one_level():
    req = ChatRequest("m", [Message.user("x")], temperature=0.1,
                      extra_body={"generationConfig": {"topK": 3}, "safetySettings": [{"category": "X"}]})
    body = adapter().build_chat(req, config()).json()
    assert body["generationConfig"] == {"temperature": 0.1, "topK": 3}
    assert body["safetySettings"] == [{"category": "X"}]


# --------------------------------------------------------------------------- responses


def _parse(name: str, index: int = -1, model: str = "m"):
    return adapter().parse_chat(cassette(name)[index].response, ChatRequest(model, [Message.user("x")]))


def test_text_response():
    r = _parse(GOOGLE + "test_google_model.yaml")
    assert r.content == "Hello! How can I help you today?"
    assert r.finish_reason == "stop" and r.metadata.raw_finish_reason == "STOP"
    assert r.model == "gemini-2.5-flash" and r.provider == "gemini"
    assert r.metadata.response_id == "bzlXaa_EE_aHqtsPi_zw8Ao"
    # candidates 9 + thoughts 34 = output 43; totals match Gemini's totalTokenCount (52)
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.reasoning_tokens) == (9, 43, 34)
    assert r.usage.total_tokens == 52


def test_tool_call_response():
    r = _parse(GOOGLE + "test_google_tool_output.yaml", 1)
    [call] = r.tool_calls
    assert call.name == "final_result"
    assert call.arguments == {"city": "Mexico City", "country": "Mexico"}
    assert call.id  # generated: gemini-2.0 sends none
    assert r.finish_reason == "tool_calls" and r.metadata.raw_finish_reason == "STOP"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (47, 8)


def test_tool_call_keeps_gemini_id_and_signature():
    it = cassette(GOOGLE_NEW + "test_structured_output/test_native_output_with_function_tools.yaml")[0]
    r = adapter().parse_chat(it.response, ChatRequest("m", [Message.user("x")]))
    [call] = r.tool_calls
    raw = it.response.json()["candidates"][0]["content"]["parts"][0]
    assert call.id == raw["functionCall"]["id"] == "w71i0cbt"
    assert call.extra == {"thoughtSignature": raw["thoughtSignature"]}


def test_thinking_response():
    r = _parse(GOOGLE + "test_google_model_thinking_part.yaml", 0)
    reasoning, text = r.parts
    assert isinstance(reasoning, Reasoning) and reasoning.text.startswith("**A Safe Street-Crossing Guide")
    assert reasoning.signature  # the signature Gemini put on the answer's first part is kept
    assert isinstance(text, Text) and text.text.startswith("Crossing the street safely")
    assert r.usage.reasoning_tokens == 1001 and r.usage.output_tokens == 1737


def test_structured_output_text_is_the_json():
    r = _parse(GOOGLE + "test_google_native_output.yaml")
    assert json.loads(r.content) == {"city": "Mexico City", "country": "Mexico"}


def test_cached_tokens():
    r = _parse(GOOGLE_NEW + "test_cache/test_google_model_cached_content.yaml", 1)
    assert r.content == "Paris."
    assert (r.usage.input_tokens, r.usage.cached_tokens, r.usage.output_tokens, r.usage.reasoning_tokens) == \
        (3520, 3512, 44, 42)
    assert (r.usage.audio_input_tokens, r.usage.cached_audio_tokens) == (0, 0)   # its cache is text


def cached_audio_answer(**usage_changes: object) -> dict[str, object]:
    """The recorded cached-content answer, its cache (3512 tokens) an audio file: the shape Gemini
    gives a prompt whose cached part is audio (promptTokensDetails count the cache too)."""
    recorded = cassette(GOOGLE_NEW + "test_cache/test_google_model_cached_content.yaml")[1].response.json()
    recorded["usageMetadata"].update({
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}, {"modality": "AUDIO", "tokenCount": 3512}],
        "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 3512}], **usage_changes})
    return recorded


def test_cached_audio_is_counted_apart_from_the_prompts_audio():
    """Gemini bills cached audio at its own cached rate: the parser keeps the cache's audio
    (``cacheTokensDetails``) beside the prompt's (which includes it)."""
    answer = cached_audio_answer()
    r = adapter().parse_chat(HttpResponse(200, {}, json.dumps(answer).encode()), ChatRequest("m", [Message.user("x")]))
    assert (r.usage.input_tokens, r.usage.cached_tokens, r.usage.audio_input_tokens, r.usage.cached_audio_tokens) == \
        (3520, 3512, 3512, 3512)


def test_a_cache_split_by_modality_without_its_total_is_still_a_cache_hit():
    """An answer with ``cacheTokensDetails`` but no ``cachedContentTokenCount`` (python-genai
    #795) was billed as if nothing came from the cache."""
    answer = cached_audio_answer()
    del answer["usageMetadata"]["cachedContentTokenCount"]   # type: ignore[attr-defined]
    r = adapter().parse_chat(HttpResponse(200, {}, json.dumps(answer).encode()), ChatRequest("m", [Message.user("x")]))
    assert (r.usage.cached_tokens, r.usage.cached_audio_tokens) == (3512, 3512)


def test_finish_reasons_length_and_safety():
    r = _parse(GOOGLE + "test_google_model_max_tokens.yaml")
    assert r.finish_reason == "length" and r.content == "The capital of France is"
    r = _parse(GOOGLE + "test_google_model_max_tokens_thinking_model_empty_response.yaml")
    assert r.finish_reason == "length" and r.parts == []
    r = _parse(GOOGLE + "test_google_model_safety_settings.yaml")
    assert r.finish_reason == "content_filter" and r.metadata.raw_finish_reason == "SAFETY" and r.parts == []


def test_blocked_prompt_raises_content_filter():
    with pytest.raises(ContentFilterError, match="MODEL_ARMOR") as info:
        _parse(GOOGLE + "test_google_model_armor_prompt_template_text_gets_blocked.yaml", 1)
    assert info.value.code == "MODEL_ARMOR"


@pytest.mark.parametrize(("raw", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("BLOCKLIST", "content_filter"), ("SPII", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "other"), ("LANGUAGE", "content_filter"),
])
def test_finish_reason_mapping(raw: str, expected: str):
    body = json.dumps({"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": raw}]})
    r = adapter().parse_chat(HttpResponse(200, {}, body.encode()), ChatRequest("m", [Message.user("x")]))
    assert (r.finish_reason, r.metadata.raw_finish_reason) == (expected, raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("OTHER", "error"), ("NO_IMAGE", "error"), ("FINISH_REASON_UNSPECIFIED", "error"), ("LANGUAGE", "content_filter"),
])
def test_a_stop_with_nothing_said_is_never_an_empty_answer(raw: str, expected: str):
    """No text, call or image, and a reason other than STOP: a failed answer (the engine raises
    it with Gemini's reason) or a filter's stop, which every server surface names as such, never the
    empty "other" that Chat Completions, Responses and Messages could only relay as a plain stop."""
    body = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "hm", "thought": True}]},
                                       "finishReason": raw}]})
    r = adapter().parse_chat(HttpResponse(200, {}, body.encode()), ChatRequest("m", [Message.user("x")]))
    assert (r.finish_reason, r.metadata.raw_finish_reason, r.content) == (expected, raw, "")


def test_not_json_is_malformed():
    with pytest.raises(MalformedResponseError):
        adapter().parse_chat(HttpResponse(200, {}, b"<html>"), ChatRequest("m", [Message.user("x")]))


def test_a_snake_case_thinking_amount_in_extra_body_replaces_the_built_one():
    """The API takes ``thinking_level`` as well as ``thinkingLevel``: a caller's snake_case level
    (or budget) went out beside the built camelCase one, two levels in one body, the built "high"
    beside the caller's "low". The caller's replaces it, whichever spelling either is in."""
    for reasoning, given in ((ReasoningConfig(effort="high"), {"thinking_level": "low"}),
                             (ReasoningConfig(budget_tokens=4096), {"thinking_budget": 512}),
                             (ReasoningConfig(budget_tokens=4096), {"thinking_level": "low"})):
        req = ChatRequest("gemini-3-pro-preview", [Message.user("x")], reasoning=reasoning,
                          extra_body={"generationConfig": {"thinkingConfig": given}})
        thinking = adapter().build_chat(req, config()).json()["generationConfig"]["thinkingConfig"]
        assert thinking == {"includeThoughts": True, **given}, (reasoning, given)


def test_an_effort_is_a_thinking_level_the_gemini_3_model_takes():
    """Gemini 3 Pro takes thinkingLevel low or high only (3.1 Pro no minimal; Flash all four):
    ``reasoning_effort="medium"`` went to gemini-3-pro as "medium", a 400. It goes as the next
    level up (never less thinking than asked), and each model's own levels as they are."""
    def level(model: str, effort: str) -> str:
        req = ChatRequest(model, [Message.user("x")], reasoning=ReasoningConfig(effort=effort))  # type: ignore[arg-type]
        thinking = adapter().build_chat(req, config()).json()["generationConfig"]["thinkingConfig"]
        assert "thinkingBudget" not in thinking and thinking["includeThoughts"] is True
        return thinking["thinkingLevel"]

    assert [level("gemini-3-pro-preview", e) for e in ("minimal", "low", "medium", "high")] == [
        "low", "low", "high", "high"]
    assert [level("gemini-3.1-pro-preview", e) for e in ("minimal", "low", "medium", "high")] == [
        "low", "low", "medium", "high"]
    assert [level("gemini-3-flash-preview", e) for e in ("minimal", "low", "medium", "high")] == [
        "minimal", "low", "medium", "high"]


def test_a_thinking_level_in_extra_body_replaces_the_built_budget_and_keeps_the_thoughts():
    """A caller's ``thinkingConfig`` in ``extra_body`` replaced the built one whole (its thoughts
    went unreturned), and beside a ``reasoning`` budget it would have gone with both
    thinkingLevel and thinkingBudget: a 400. The caller's level now replaces the built budget."""
    req = ChatRequest("gemini-3-pro-preview", [Message.user("x")], reasoning=ReasoningConfig(budget_tokens=4096),
                      extra_body={"generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}}})
    assert adapter().build_chat(req, config()).json()["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True, "thinkingLevel": "low"}
    snake = dataclasses.replace(req, extra_body={"generationConfig": {"thinkingConfig": {"thinking_level": "high"}}})
    assert adapter().build_chat(snake, config()).json()["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True, "thinking_level": "high"}
    effort = ChatRequest("gemini-3-pro-preview", [Message.user("x")], reasoning=ReasoningConfig(effort="high"),
                         extra_body={"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}})
    assert adapter().build_chat(effort, config()).json()["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True, "thinkingBudget": 1024}
    # without reasoning, the caller's thinkingConfig goes as given
    plain = ChatRequest("gemini-3-flash-preview", [Message.user("x")],
                        extra_body={"generationConfig": {"thinkingConfig": {"thinkingLevel": "minimal"}}})
    assert adapter().build_chat(plain, config()).json()["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "minimal"}
