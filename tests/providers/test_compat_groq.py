"""Groq through the OpenAI adapter: recorded chat, structured output, reasoning, streams and errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import InvalidRequestError, NotFoundError
from cloverleaf._types import ChatRequest, Message, ResponseFormat, Tool, ToolChoice
from tests.providers._openai_replay import (
    PA,
    accumulate,
    adapter,
    config,
    decode_stream,
    interaction,
    merged,
    recorded_chunks,
    replay_chat,
    replay_stream,
)

GQ = f"{PA}/test_groq"
TOOL = Tool("get_something_by_name", parameters={"additionalProperties": False, "properties": {"name": {"type": "string"}},
                                                 "required": ["name"], "type": "object"})
CITY = {"additionalProperties": False, "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"], "type": "object"}


def test_chat_with_system_prompt_and_request_shape() -> None:
    path = f"{GQ}/test_groq_model_instructions.yaml"
    recorded = interaction(path).request_json
    req = ChatRequest("llama-3.3-70b-versatile", [Message.system(recorded["messages"][0]["content"]),
                                                  Message.user(recorded["messages"][1]["content"])])
    http = adapter("groq").build_chat(req, config("groq"))
    assert http.url == "https://api.groq.com/openai/v1/chat/completions"
    assert http.json()["messages"] == recorded["messages"]
    resp = replay_chat("groq", path, req)
    assert resp.text == "The capital of France is Paris."
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.finish_reason) == (48, 8, "stop")


def test_structured_output_json_schema() -> None:
    path = f"{GQ}/test_groq_native_output.yaml"
    req = ChatRequest("openai/gpt-oss-120b", [Message.user("What is the largest city in Mexico?")],
                      response_format=ResponseFormat(schema=CITY, name="CityLocation"))
    built = adapter("groq").build_chat(req, config("groq")).json()
    recorded = interaction(path).request_json
    assert built["response_format"]["json_schema"]["schema"] == recorded["response_format"]["json_schema"]["schema"]
    assert built["response_format"]["json_schema"]["strict"] is True
    assert built["model"] == recorded["model"] == "openai/gpt-oss-120b"
    resp = replay_chat("groq", path, req)
    assert resp.text == '{"city":"Mexico City","country":"Mexico"}'
    assert resp.reasoning and "largest city in Mexico" in resp.reasoning  # message.reasoning
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (178, 94)


def test_parsed_reasoning_format() -> None:
    path = f"{GQ}/test_groq_model_thinking_part.yaml"
    resp = replay_chat("groq", path, ChatRequest("deepseek-r1-distill-llama-70b", [Message.user("alfajores")]), 1)
    recorded = interaction(path, 1).response.json()["choices"][0]["message"]
    assert resp.reasoning == recorded["reasoning"]
    assert resp.text == recorded["content"]


def test_tool_call_after_validation_error() -> None:
    path = f"{GQ}/test_tool_use_failed_error.yaml"
    req = ChatRequest("openai/gpt-oss-120b", [Message.user("call it")], tools=[TOOL], tool_choice=ToolChoice("auto"))
    err = adapter("groq").parse_error(interaction(path, 0).response, req.model)
    assert type(err) is InvalidRequestError and err.code == "tool_use_failed" and err.status == 400
    resp = replay_chat("groq", path, req, 1)
    [call] = resp.tool_calls
    assert (call.name, call.arguments, resp.finish_reason) == ("get_something_by_name", {"name": "test"}, "tool_calls")
    assert resp.usage.reasoning_tokens == 22
    cached = replay_chat("groq", path, req, 2)
    assert cached.usage.cached_tokens == 256  # prompt_tokens_details.cached_tokens


def test_404_model_not_found() -> None:
    err = adapter("groq").parse_error(interaction(f"{GQ}/test_tool_regular_error.yaml").response, "non-existent")
    assert type(err) is NotFoundError and err.code == "model_not_found" and "non-existent" in err.message


STREAM = f"{GQ}/test_tool_use_failed_error_streaming.yaml"
SREQ = ChatRequest("openai/gpt-oss-120b", [Message.user("call it")], tools=[TOOL], stream=True)


def test_in_stream_error_event_raises_after_reasoning() -> None:
    """Groq sends ``event: error`` inside a 200 stream when tool validation fails."""
    dec = adapter("groq").stream_decoder(SREQ)
    body = interaction(STREAM, 0).response.body
    head, tail = body.split(b"event: error", 1)
    events = dec.feed(head)
    assert any(e.type == "reasoning" for e in events)
    with pytest.raises(InvalidRequestError) as info:
        dec.feed(b"event: error" + tail)
    assert info.value.code == "tool_use_failed" and info.value.status == 400


def test_streamed_reasoning_then_tool_call_with_usage_in_finish_chunk() -> None:
    events, resp = replay_stream("groq", STREAM, SREQ, 1)
    [call] = resp.tool_calls
    assert (call.name, call.arguments) == ("get_something_by_name", {"name": "example"})
    assert call.id == "fc_bfb39741-3748-4def-9886-a93fc9c64a90"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning", "") for c in recorded_chunks(STREAM, 1) if c["choices"])
    assert resp.reasoning == reasoning
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.reasoning_tokens) == (304, 49, 23)
    assert resp.finish_reason == "tool_calls"


def test_streamed_text_answer() -> None:
    _, resp = replay_stream("groq", STREAM, SREQ, 2)
    assert resp.text == "".join(c["choices"][0]["delta"].get("content") or "" for c in recorded_chunks(STREAM, 2)
                                if c["choices"])
    assert resp.text.endswith("valid call.") and resp.finish_reason == "stop"


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 60_000), max_size=30))
def test_any_split_same_events(cuts: list[int]) -> None:
    body = interaction(STREAM, 1).response.body
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    dec = adapter("groq").stream_decoder(SREQ)
    split = [ev for p in pieces for ev in dec.feed(p)] + dec.close()
    whole = decode_stream("groq", body, SREQ)
    assert merged(split) == merged(whole)
    assert accumulate("groq", split, SREQ).tool_calls == accumulate("groq", whole, SREQ).tool_calls


def test_image_url_input_request_and_answer() -> None:
    from cloverleaf._types import Attachment, Text

    path = f"{GQ}/test_image_url_input.yaml"
    recorded = interaction(path).request_json
    url = recorded["messages"][0]["content"][1]["image_url"]["url"]
    req = ChatRequest("meta-llama/llama-4-scout-17b-16e-instruct", [Message.user([
        Text("What is the name of this fruit?"), Attachment(type="image", url=url, fetch="provider")])])
    assert adapter("groq").build_chat(req, config("groq")).json()["messages"] == recorded["messages"]
    assert "potato" in replay_chat("groq", path, req).text


def test_stream_usage_reported_only_under_x_groq_is_kept() -> None:
    # Recorded without stream_options: Groq puts the counts only in the finish chunk's x_groq.usage.
    path = f"{GQ}/test_groq_model_thinking_part_iter.yaml"
    req = ChatRequest("deepseek-r1-distill-llama-70b", [Message.user("Uruguayan alfajores?")], stream=True)
    events, resp = replay_stream("groq", path, req, 0)
    final = recorded_chunks(path, 0)[-1]
    assert "usage" not in final and final["x_groq"]["usage"]["prompt_tokens"] == 21
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 988)
    assert [e.type for e in events].count("usage") == 1 and events[-1].type == "done"


def test_usage_in_both_places_is_counted_once() -> None:
    # Newer Groq streams repeat the counts at the top level and under x_groq: one usage event.
    events, resp = replay_stream("groq", STREAM, SREQ, 1)
    final = recorded_chunks(STREAM, 1)[-1]
    assert final["usage"]["prompt_tokens"] == final["x_groq"]["usage"]["prompt_tokens"]
    assert [e.type for e in events].count("usage") == 1
    assert resp.usage.input_tokens == final["usage"]["prompt_tokens"]
    # Groq's completion_tokens already include the reasoning (total = prompt + completion)
    assert resp.usage.output_tokens == final["usage"]["completion_tokens"]
    assert resp.usage.reasoning_tokens == final["usage"]["completion_tokens_details"]["reasoning_tokens"]
