"""OpenAI Chat Completions adapter: replayed real responses, and requests checked against
the requests the real API accepted (same recordings)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cloverleaf._errors import MalformedResponseError
from cloverleaf._http import HttpResponse
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from cloverleaf.streams.call_ids import answer_salt, made_up_call_id
from tests.providers._openai_replay import PA, adapter, config, interaction, replay_chat

OA = f"{PA}/test_openai"

COUNTRY_TOOL = Tool("get_user_country", parameters={"additionalProperties": False, "properties": {},
                                                     "type": "object"})
CITY_SCHEMA = {"properties": {"city": {"type": "string"}, "country": {"type": "string"}},
               "required": ["city", "country"], "type": "object"}


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Remove differences that do not change meaning: pydantic-ai's ``n: 1``/``stream:
    false``/empty tool descriptions, a text-only content list vs a string, and an absent
    assistant ``content`` vs ``null``."""
    body = {k: v for k, v in body.items() if not (k == "n" and v == 1) and not (k == "stream" and v is False)}
    msgs = []
    for m in body.get("messages", []):
        m = dict(m)
        content = m.get("content")
        if isinstance(content, list) and all(p.get("type") == "text" and "cache_control" not in p for p in content):
            m["content"] = "".join(p["text"] for p in content)
        if m["role"] == "assistant":
            m.setdefault("content", None)
        msgs.append(m)
    body["messages"] = msgs
    for tool in body.get("tools", []):
        if tool["function"].get("description") == "":
            del tool["function"]["description"]
    fmt = body.get("response_format", {}).get("json_schema")
    if fmt:
        fmt.pop("description", None)
    return body


def assert_same_request(built: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert normalise(built) == normalise(recorded)


# --------------------------------------------------------------------------- replayed responses


def test_plain_text_response() -> None:
    req = ChatRequest("gpt-4o", [Message.user("What is the capital of France?")])
    resp = replay_chat("openai", f"{OA}/test_valid_response.yaml", req)
    recorded = interaction(f"{OA}/test_valid_response.yaml").response.json()
    assert resp.text == recorded["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert resp.finish_reason == "stop" and resp.metadata.raw_finish_reason == "stop"
    assert resp.model == recorded["model"] == "gpt-4o-2024-08-06"
    assert resp.provider == "openai"
    assert resp.metadata.response_id == recorded["id"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (14, 7)
    assert resp.tool_calls == []


def test_tool_call_response_and_follow_up() -> None:
    path = f"{OA}/test_openai_tool_output.yaml"
    req = ChatRequest("gpt-4o", [Message.user("What is the largest city in the user country?")],
                      tools=[COUNTRY_TOOL], tool_choice=ToolChoice("required"))
    first = replay_chat("openai", path, req, 0)
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    recorded_id = interaction(path, 0).response.json()["choices"][0]["message"]["tool_calls"][0]["id"]
    assert (call.name, call.arguments, call.id) == ("get_user_country", {}, recorded_id)
    second = replay_chat("openai", path, req, 1)
    [final] = second.tool_calls
    assert final.name == "final_result"
    assert final.arguments == {"city": "Mexico City", "country": "Mexico"}
    assert (second.usage.input_tokens, second.usage.output_tokens) == (89, 36)


def test_structured_output_json_schema_text() -> None:
    path = f"{OA}/test_openai_native_output.yaml"
    fmt = ResponseFormat("json_schema", schema=CITY_SCHEMA, name="result", strict=False)
    req = ChatRequest("gpt-4o", [Message.user("What is the largest city in the user country?")],
                      tools=[COUNTRY_TOOL], tool_choice=ToolChoice("auto"), response_format=fmt)
    resp = replay_chat("openai", path, req, 1)
    assert resp.text == '{"city":"Mexico City","country":"Mexico"}'
    assert resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (92, 15)


def test_reasoning_model_usage_counts_reasoning_tokens() -> None:
    req = ChatRequest("o3-mini", [Message.user("hello")], max_tokens=100)
    resp = replay_chat("openai", f"{OA}/test_max_completion_tokens[o3-mini].yaml", req)
    assert resp.text == "Hello there! How can I help you today?"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.reasoning_tokens) == (7, 87, 64)
    assert resp.reasoning is None  # Chat Completions never returns OpenAI reasoning text


@pytest.mark.parametrize(("path", "expected"), [
    ("test_audio_as_binary_content_input.yaml", "The name mentioned in the audio is Marcelo."),
    ("test_document_as_binary_content_input.yaml", 'The main content of the document is "Dummy PDF file."'),
    ("test_image_url_input_force_download.yaml", "This vegetable is a potato."),
])
def test_attachment_answers(path: str, expected: str) -> None:
    req = ChatRequest("gpt-4o", [Message.user("describe")])
    assert replay_chat("openai", f"{OA}/{path}", req).text == expected


def test_missing_tool_call_id_is_generated() -> None:
    """Gemini's OpenAI-compatible endpoint sends ``"id": ""``; we must still give an id, this
    answer's own (not ``call_0``, which every turn of a tool loop would repeat)."""
    path = f"{OA}/test_compatible_api_with_tool_calls_without_id.yaml"
    history = [Message.user("time?")]
    resp = replay_chat("chat_completions", path, ChatRequest("gemini-2.5-pro", history), 0)
    [call] = resp.tool_calls
    assert call.name == "get_current_time" and call.arguments == {}
    # the recorded answer's id, with the mark of the conversation it answers
    assert call.id == made_up_call_id(answer_salt("3SE-aKjdCcCEz7IPxpqjCA", history), 0)


def test_non_chat_body_is_malformed() -> None:
    req = ChatRequest("gpt-4o", [Message.user("hi")])
    with pytest.raises(MalformedResponseError):
        replay_chat("openai", f"{OA}/test_invalid_response.yaml", req)


# --------------------------------------------------------------------------- requests vs recordings


def test_build_matches_recorded_tool_loop_stream_request() -> None:
    path = f"{OA}/test_run_stream_sync_streams_real_model.yaml"
    tool = Tool("get_capital", parameters={"additionalProperties": False, "properties": {"country": {"type": "string"}},
                                           "required": ["country"], "type": "object"}, strict=True)
    req = ChatRequest(
        "gpt-4o-mini",
        [Message.user("What is the capital of the UK? Use the tool, then answer."),
         Message.assistant([ToolCall("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"},
                                     raw_arguments='{"country":"UK"}')]),
         Message.tool("call_ZR5UUuTt3pf61kjwAJIYdVMj", "London")],
        tools=[tool], tool_choice=ToolChoice("auto"), stream=True,
    )
    http = adapter("openai").build_chat(req, config("openai"))
    assert http.url == "https://api.openai.com/v1/chat/completions"
    assert http.stream is True
    assert http.headers["Authorization"] == "Bearer sk-test-secret"
    assert_same_request(http.json(), interaction(path, 1).request_json)


def test_build_matches_recorded_structured_output_request() -> None:
    path = f"{OA}/test_openai_native_output.yaml"
    fmt = ResponseFormat("json_schema", schema=CITY_SCHEMA, name="result", strict=False)
    req = ChatRequest(
        "gpt-4o",
        [Message.user("What is the largest city in the user country?"),
         Message.assistant([ToolCall("call_PkRGedQNRFUzJp2R7dO7avWR", "get_user_country", {}, raw_arguments="{}")]),
         Message.tool("call_PkRGedQNRFUzJp2R7dO7avWR", "Mexico")],
        tools=[COUNTRY_TOOL], tool_choice=ToolChoice("auto"), response_format=fmt,
    )
    built = adapter("openai").build_chat(req, config("openai")).json()
    assert_same_request(built, interaction(path, 1).request_json)


def test_build_matches_recorded_json_object_request() -> None:
    path = f"{OA}/test_openai_prompted_output.yaml"
    recorded = interaction(path, 0).request_json
    req = ChatRequest("gpt-4o", [Message.system(recorded["messages"][0]["content"]),
                                 Message.user("What is the largest city in the user country?")],
                      tools=[COUNTRY_TOOL], tool_choice=ToolChoice("auto"), response_format=ResponseFormat("json_object"))
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), recorded)


def _recorded_part(path: str, kind: str) -> dict[str, Any]:
    return next(p for p in interaction(path).request_json["messages"][0]["content"] if p["type"] == kind)


def test_build_matches_recorded_audio_request() -> None:
    path = f"{OA}/test_audio_as_binary_content_input.yaml"
    audio = base64.b64decode(_recorded_part(path, "input_audio")["input_audio"]["data"])
    req = ChatRequest("gpt-4o-audio-preview", [Message.user([
        Text("Whose name is mentioned in the audio?"),
        Attachment(type="audio", media_type="audio/mpeg", data=audio)])])
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), interaction(path).request_json)


def test_build_matches_recorded_pdf_request() -> None:
    path = f"{OA}/test_document_as_binary_content_input.yaml"
    data_url = _recorded_part(path, "file")["file"]["file_data"]
    pdf = base64.b64decode(data_url.split(",", 1)[1])
    req = ChatRequest("gpt-4o", [Message.user([
        Text("What is the main content on this document?"),
        Attachment(type="pdf", media_type="application/pdf", data=pdf, filename="filename.pdf")])])
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), interaction(path).request_json)


def test_build_matches_recorded_inline_image_request() -> None:
    path = f"{OA}/test_image_url_input_force_download.yaml"
    url = _recorded_part(path, "image_url")["image_url"]["url"]
    media, b64 = url[5:].split(";base64,")
    req = ChatRequest("gpt-4.1-nano", [Message.user([
        Text("What is this vegetable?"), Attachment(type="image", media_type=media, data=base64.b64decode(b64))])])
    built = adapter("openai").build_chat(req, config("openai")).json()
    recorded = interaction(path).request_json
    assert built["messages"][0]["content"][1] == recorded["messages"][0]["content"][1]
    assert built["messages"][0]["content"][0]["type"] == "text"


def test_build_matches_recorded_image_after_tool_result() -> None:
    path = f"{OA}/test_image_url_tool_response.yaml"
    img = "https://t3.ftcdn.net/jpg/00/85/79/92/360_F_85799278_0BBGV9OAdQDTLnKwAPBCcg1J7QtiieJY.jpg"
    req = ChatRequest(
        "gpt-4o",
        [Message.user("What food is in the image you can get from the get_image tool?"),
         Message.assistant([ToolCall("call_4hrT4QP9jfojtK69vGiFCFjG", "get_image", {}, raw_arguments="{}")]),
         Message.tool("call_4hrT4QP9jfojtK69vGiFCFjG", "See file bd38f5"),
         Message.user([Text("This is file bd38f5:"), Attachment(type="image", url=img, fetch="provider")])],
        tools=[Tool("get_image", parameters={"additionalProperties": False, "properties": {}, "type": "object"})],
        tool_choice=ToolChoice("auto"),
    )
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), interaction(path, 1).request_json)


def test_o1_mini_system_prompt_becomes_user_turn() -> None:
    """o1-mini rejects both ``system`` and ``developer`` (recorded 400s); the accepted
    recording sends the system prompt as a user turn."""
    path = f"{OA}/test_system_prompt_role_o1_mini.yaml"
    req = ChatRequest("o1-mini", [Message.system("You are a helpful assistant."),
                                  Message.user("What's the capital of France?")])
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), interaction(path).request_json)


def test_reasoning_model_uses_max_completion_tokens_and_effort() -> None:
    path = f"{OA}/test_max_completion_tokens[o3-mini].yaml"
    req = ChatRequest("o3-mini", [Message.user("hello")], max_tokens=100, temperature=0.3)
    built = adapter("openai").build_chat(req, config("openai")).json()
    assert_same_request(built, interaction(path).request_json)  # temperature dropped: o3-mini rejects it
    effort = adapter("openai").build_chat(
        ChatRequest("o3-mini", [Message.user("x")], reasoning=ReasoningConfig(effort="high")), config("openai")).json()
    assert effort["reasoning_effort"] == "high"
    assert interaction(f"{OA}/test_openai_model_thinking_part.yaml", 1).request_json["reasoning_effort"] == "high"


def test_non_reasoning_model_keeps_max_tokens_and_sampling() -> None:
    req = ChatRequest("gpt-4o-mini", [Message.user("hi")], max_tokens=10, temperature=0.2, top_p=0.9,
                      stop=["\n"], seed=7, user="u1")
    body = adapter("openai").build_chat(req, config("openai")).json()
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop"], body["seed"], body["user"]) == \
        (10, 0.2, 0.9, ["\n"], 7, "u1")
    forced = adapter("openai").build_chat(req, config("openai", max_tokens_field="max_completion_tokens")).json()
    assert forced["max_completion_tokens"] == 10 and "max_tokens" not in forced


def test_user_field_matches_recording() -> None:
    path = f"{OA}/test_user_id.yaml"
    req = ChatRequest("gpt-4o", [Message.user("hello")], user="user_id")
    assert_same_request(adapter("openai").build_chat(req, config("openai")).json(), interaction(path).request_json)


# --------------------------------------------------------------------------- request encoding details


def _body(req: ChatRequest, **extra: Any) -> dict[str, Any]:
    return adapter("openai").build_chat(req, config("openai", **extra)).json()


def test_tool_choice_modes() -> None:
    base = ChatRequest("gpt-4o", [Message.user("x")], tools=[COUNTRY_TOOL])
    for mode in ("auto", "none", "required"):
        base.tool_choice = ToolChoice(mode)  # type: ignore[arg-type]
        assert _body(base)["tool_choice"] == mode
    base.tool_choice = ToolChoice("tool", "get_user_country")
    assert _body(base)["tool_choice"] == {"type": "function", "function": {"name": "get_user_country"}}
    base.parallel_tool_calls = False
    assert _body(base)["parallel_tool_calls"] is False


def test_strict_schema_closes_objects_and_falls_back_when_optional_fields() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}},
                                                     "required": ["b"]}}, "required": ["a"]}
    body = _body(ChatRequest("gpt-4o", [Message.user("x")], response_format=ResponseFormat(schema=schema, name="My Out")))
    js = body["response_format"]["json_schema"]
    assert js["strict"] is True and js["name"] == "My_Out"
    assert js["schema"]["additionalProperties"] is False
    assert js["schema"]["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the caller's schema is not mutated
    optional = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}
    body = _body(ChatRequest("gpt-4o", [Message.user("x")], response_format=ResponseFormat(schema=optional)))
    assert body["response_format"]["json_schema"]["strict"] is False


def _refs_with_siblings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [bad for item in node for bad in _refs_with_siblings(item)]
    if not isinstance(node, dict):
        return []
    here = [node] if "$ref" in node and len(node) > 1 else []
    return here + [bad for value in node.values() for bad in _refs_with_siblings(value)]


def test_strict_schema_inlines_a_described_ref_openai_refuses_beside_keywords() -> None:
    """pydantic writes a described nested model or enum field as ``{"$ref": ..., "description": ...}``;
    OpenAI's strict mode answers that with a 400 ("$ref cannot have keywords {'description'}"), so
    such a reference goes out as the schema it points to, its own keys merged over it (as the
    official SDK's to_strict_json_schema does), in structured output and strict tools alike."""
    import enum

    from pydantic import BaseModel, Field

    from cloverleaf._structured import to_response_format

    class Colour(enum.Enum):
        RED = "red"
        BLUE = "blue"

    class Addr(BaseModel):
        street: str

    class Node(BaseModel):
        label: str
        child: Node | None = Field(description="the next node, if any")

    class City(BaseModel):
        name: str
        addr: Addr = Field(description="the city hall's address")
        colour: Colour = Field(description="the flag's colour")
        tree: Node = Field(description="a recursive structure")

    fmt = to_response_format(City)
    assert fmt is not None and fmt.schema is not None
    js = _body(ChatRequest("gpt-4o", [Message.user("x")], response_format=fmt))["response_format"]["json_schema"]
    assert js["strict"] is True
    assert _refs_with_siblings(js["schema"]) == []
    addr = js["schema"]["properties"]["addr"]
    assert addr["description"] == "the city hall's address" and addr["type"] == "object"
    assert addr["properties"] == {"street": {"title": "Street", "type": "string"}}
    assert addr["required"] == ["street"] and addr["additionalProperties"] is False
    colour = js["schema"]["properties"]["colour"]
    assert colour["enum"] == ["red", "blue"] and colour["description"] == "the flag's colour"
    assert js["schema"]["properties"]["tree"]["properties"]["child"]["anyOf"][0] == {"$ref": "#/$defs/Node"}
    assert "$ref" in fmt.schema["properties"]["addr"]  # the caller's schema is not mutated

    tool = Tool("lookup", parameters=fmt.schema, strict=True)
    fn = _body(ChatRequest("gpt-4o", [Message.user("x")], tools=[tool]))["tools"][0]["function"]
    assert fn["strict"] is True and _refs_with_siblings(fn["parameters"]) == []


def test_strict_schema_stops_inlining_a_reference_into_itself() -> None:
    schema = {"$defs": {"Node": {"type": "object", "properties": {
                  "next": {"$ref": "#/$defs/Node", "description": "the next one"}}, "required": ["next"]}},
              "type": "object", "properties": {"head": {"$ref": "#/$defs/Node", "description": "first"}},
              "required": ["head"]}
    js = _body(ChatRequest("gpt-4o", [Message.user("x")], response_format=ResponseFormat(schema=schema)))
    out = js["response_format"]["json_schema"]["schema"]
    assert out["properties"]["head"]["description"] == "first"
    assert out["properties"]["head"]["properties"]["next"] == {"$ref": "#/$defs/Node"}
    assert _refs_with_siblings(out) == []


def test_extra_body_is_merged_last() -> None:
    req = ChatRequest("gpt-4o", [Message.user("x")], temperature=0.1,
                      extra_body={"temperature": 0.5, "logprobs": True, "web_search_options": {}})
    body = _body(req)
    assert body["temperature"] == 0.5 and body["logprobs"] is True and body["web_search_options"] == {}


def test_assistant_history_with_text_and_several_tool_calls_and_results() -> None:
    req = ChatRequest("gpt-4o", [
        Message.user("weather in Paris and Rome?"),
        Message.assistant([Text("Checking."), ToolCall("c1", "weather", {"city": "Paris"}),
                           ToolCall("c2", "weather", {"city": "Rome"})]),
        Message(Role.TOOL, [ToolResult("c1", "sunny"), ToolResult("c2", "rain", is_error=True)]),
    ])
    msgs = _body(req)["messages"]
    assert msgs[1] == {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
        {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]}
    assert msgs[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert msgs[3] == {"role": "tool", "tool_call_id": "c2", "content": "Error: rain"}


def test_an_empty_assistant_turn_is_sent_back_as_empty_text_not_null() -> None:
    """A reasoning model cut off by max_tokens answers with empty content; sent back as null (allowed
    only beside tool_calls) it made the next call a 400."""
    empty = Message.assistant([])
    msgs = _body(ChatRequest("gpt-4o", [Message.user("x"), empty, Message.user("go on")]))["messages"]
    assert msgs[1] == {"role": "assistant", "content": ""}
    calls_only = Message.assistant([ToolCall("c1", "weather", {"city": "Paris"})])
    assert _body(ChatRequest("gpt-4o", [Message.user("x"), calls_only]))["messages"][1]["content"] is None


def test_tool_result_with_image_is_followed_by_a_user_turn() -> None:
    img = Attachment(type="image", media_type="image/png", data=b"\x89PNG")
    req = ChatRequest("gpt-4o", [Message(Role.TOOL, [ToolResult("c1", [Text("chart"), img])])])
    msgs = _body(req)["messages"]
    assert msgs[0] == {"role": "tool", "tool_call_id": "c1", "content": "chart"}
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}


def test_audio_by_url_or_unknown_format_is_refused() -> None:
    from cloverleaf._errors import InvalidRequestError

    for att in (Attachment(type="audio", url="https://x/a.wav", fetch="provider"),
                Attachment(type="audio", media_type="audio/ogg", data=b"OggS")):
        with pytest.raises(InvalidRequestError):
            _body(ChatRequest("gpt-4o-audio-preview", [Message.user([att])]))
    wav = _body(ChatRequest("gpt-4o-audio-preview", [Message.user([
        Attachment(type="audio", media_type="audio/wav", data=b"RIFF")])]))
    assert wav["messages"][0]["content"][0]["input_audio"] == {"data": "UklGRg==", "format": "wav"}


def test_pdf_by_url_refused_on_openai() -> None:
    from cloverleaf._errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="fetch='local'"):
        _body(ChatRequest("gpt-4o", [Message.user([Attachment(type="pdf", url="https://x/a.pdf", fetch="provider")])]))


def test_stream_request_asks_for_usage() -> None:
    http = adapter("openai").build_chat(ChatRequest("gpt-4o", [Message.user("x")], stream=True), config("openai"))
    assert http.json()["stream_options"] == {"include_usage": True}
    assert http.stream is True


def test_api_key_never_in_repr_of_config() -> None:
    assert "sk-test-secret" not in repr(config("openai"))


def test_system_role_can_be_forced_to_developer() -> None:
    req = ChatRequest("o3", [Message.system("be brief"), Message.user("x")])
    assert _body(req)["messages"][0]["role"] == "system"
    assert _body(req, system_role="developer")["messages"][0] == {"role": "developer", "content": "be brief"}


def test_refusal_becomes_text_with_content_filter_finish() -> None:
    from cloverleaf._http import HttpResponse

    body = (b'{"id":"c1","model":"gpt-4o","choices":[{"index":0,"finish_reason":"stop","message":'
            b'{"role":"assistant","content":null,"refusal":"I can\'t help with that."}}],'
            b'"usage":{"prompt_tokens":9,"completion_tokens":6}}')
    resp = adapter("openai").parse_chat(HttpResponse(200, {}, body), ChatRequest("gpt-4o", []))
    assert resp.text == "I can't help with that." and resp.finish_reason == "content_filter"
    assert resp.metadata.extra["refusal"] == "I can't help with that." and resp.metadata.raw_finish_reason == "stop"


def test_tool_choice_without_tools_is_not_sent_and_required_without_tools_refused() -> None:
    from cloverleaf._errors import InvalidRequestError

    plain = ChatRequest("gpt-4o", [Message.user("x")])
    for mode in ("auto", "none"):
        plain.tool_choice = ToolChoice(mode)  # type: ignore[arg-type]
        assert "tool_choice" not in _body(plain)  # OpenAI answers tool_choice without tools with a 400
    for choice in (ToolChoice("required"), ToolChoice("tool", "get_user_country")):
        plain.tool_choice = choice
        with pytest.raises(InvalidRequestError, match="needs tools"):
            _body(plain)
    unknown = ChatRequest("gpt-4o", [Message.user("x")], tools=[COUNTRY_TOOL], tool_choice=ToolChoice("tool", "nope"))
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        _body(unknown)


def test_history_tool_call_arguments_are_always_valid_json() -> None:
    req = ChatRequest("gpt-4o", [
        Message.user("x"),
        Message.assistant([ToolCall("c1", "ping", {}, raw_arguments=""),  # a no-argument call, streamed
                           ToolCall("c2", "f", {"_raw": '{"a": 1'}, raw_arguments='{"a": 1'),  # cut by max_tokens
                           ToolCall("c3", "g", {"b": 2}, raw_arguments='{"b":2}')]),
        Message(Role.TOOL, [ToolResult("c1", "pong"), ToolResult("c2", "bad"), ToolResult("c3", "ok")]),
    ])
    calls = _body(req)["messages"][1]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ["{}", '{"_raw": "{\\"a\\": 1"}', '{"b":2}']


def test_xai_usage_counts_reasoning_in_output() -> None:
    # xAI counts reasoning apart from completion_tokens but inside total_tokens (docs.x.ai
    # "consumption and rate limits"); our output_tokens must include it, once.
    from cloverleaf._http import HttpResponse

    usage = {"prompt_tokens": 10120, "completion_tokens": 1499, "total_tokens": 14428,
             "prompt_tokens_details": {"cached_tokens": 128}, "completion_tokens_details": {"reasoning_tokens": 2809}}
    body = {"id": "x", "model": "grok-4", "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    resp = adapter("xai").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()),
                                     ChatRequest("grok-4", [Message.user("x")]))
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_tokens) == (10120, 4308, 2809, 128)
    assert u.total_tokens == usage["total_tokens"]


def test_audio_and_cached_tokens_are_parts_of_the_prompt_and_bill_once() -> None:
    """Chat Completions counts ``audio_tokens`` and ``cached_tokens`` inside ``prompt_tokens`` (the
    recorded gpt-4o-audio-preview answer: 44 audio + 20 text = 64) and does not say how much of the
    cache was audio. Priced at gpt-4o-realtime-preview's rates (audio $40, cached audio $2.50),
    the audio the 24 fresh tokens cannot hold (20) was cached audio, never fresh text billed as
    audio or cached audio billed as cached text."""
    from cloverleaf._pricing import ModelPrice, lookup

    recorded = interaction(f"{OA}/test_audio_as_binary_content_input.yaml").response.json()
    recorded["usage"]["prompt_tokens_details"]["cached_tokens"] = 40
    req = ChatRequest("gpt-4o-audio-preview", [Message.user("x")])
    u = adapter("openai").parse_chat(HttpResponse(200, {}, json.dumps(recorded).encode()), req).usage
    assert (u.input_tokens, u.audio_input_tokens, u.cached_tokens, u.cached_audio_tokens) == (64, 44, 40, 0)
    realtime = ModelPrice(input=5.0, output=20.0, cached_input=2.5, audio_input=40.0, cached_audio_input=2.5)
    assert realtime.cost(u) == pytest.approx((24 * 40.0 + 20 * 2.5 + 20 * 2.5 + 9 * 20.0) / 1e6)
    # gpt-4o-audio-preview's own row: audio input at $40, cached or not (no cached rate listed), its
    # cached text at $2.50; gpt-audio, whose audio rates the table does not list, stays unpriced
    audio_row = lookup("openai", "gpt-4o-audio-preview")
    assert audio_row is not None
    assert audio_row.cost(u) == pytest.approx((24 * 40.0 + 20 * 2.5 + 20 * 40.0 + 9 * 10.0) / 1e6)
    assert lookup("openai", "gpt-audio") is None


def test_an_answer_without_usage_has_unknown_usage_not_zero() -> None:
    recorded = interaction(f"{OA}/test_valid_response.yaml").response.json()
    del recorded["usage"]
    req = ChatRequest("gpt-4o", [Message.user("What is the capital of France?")])
    resp = adapter("openai").parse_chat(HttpResponse(200, {}, json.dumps(recorded).encode()), req)
    assert resp.text == "The capital of France is Paris."
    assert resp.usage.reported is False
    assert replay_chat("openai", f"{OA}/test_valid_response.yaml", req).usage.reported is True


def test_strict_schema_inlines_described_refs_of_fields_named_like_keywords() -> None:
    """A field called ``default`` (or ``enum``, ``examples``) is a schema in ``properties``, not
    the keyword: its described ``$ref`` was left as is, which OpenAI refuses."""
    from enum import Enum

    from pydantic import BaseModel, Field

    from cloverleaf.providers.openai.strict import strict_schema

    class Colour(str, Enum):
        red = "red"
        blue = "blue"

    class Palette(BaseModel):
        default: Colour = Field(description="the colour used when none is given")
        examples: Colour = Field(description="another")

    out, ok = strict_schema(Palette.model_json_schema())
    assert ok
    for name in ("default", "examples"):
        assert "$ref" not in out["properties"][name] and out["properties"][name]["enum"] == ["red", "blue"]
