"""OpenAI Chat Completions: a custom (freeform) tool's call and a legacy ``function_call`` are tool
calls, the same whole and streamed, and a custom call goes back in the history as a custom call.
Shapes: ``ChatCompletionMessageCustomToolCall`` and ``function_call`` of the OpenAPI spec
(tests/fixtures/specs/openai-openapi)."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message, ToolCall
from tests.providers._openai_replay import accumulate, adapter, config, decode_stream

GRAMMAR_TOOL = {"type": "custom", "name": "run_sql", "description": "A SQL query.",
                "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "SELECT " /[a-z ]+/'}}
REQ = ChatRequest("gpt-5", [Message.user("How many users?")], extra_body={"tools": [GRAMMAR_TOOL]})
QUERY = 'SELECT count from "users"\n'


def _whole(message: dict[str, Any], finish: str) -> ChatResponse:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None, **message},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
    return adapter("openai").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), REQ)


def _streamed(deltas: list[dict[str, Any]], finish: str) -> ChatResponse:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5"}
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    return accumulate("openai", decode_stream("openai", body, REQ, size=13), REQ)


def test_a_custom_tools_call_is_a_call_with_its_input_whole_and_streamed() -> None:
    """It was read as a function call: no name, no arguments, so the caller could not run it."""
    whole = _whole({"tool_calls": [{"id": "call_1", "type": "custom",
                                    "custom": {"name": "run_sql", "input": QUERY}}]}, "tool_calls")
    streamed = _streamed([{"role": "assistant", "tool_calls": [
                              {"index": 0, "id": "call_1", "type": "custom", "custom": {"name": "run_sql", "input": ""}}]},
                          {"tool_calls": [{"index": 0, "custom": {"input": QUERY[:10]}}]},
                          {"tool_calls": [{"index": 0, "custom": {"input": QUERY[10:]}}]}], "tool_calls")
    for r in (whole, streamed):
        [call] = r.tool_calls
        assert (call.id, call.name, call.arguments, call.extra) == ("call_1", "run_sql", {"input": QUERY},
                                                                    {"type": "custom"})
        assert r.finish_reason == "tool_calls"
    assert whole.tool_calls[0].raw_arguments == streamed.tool_calls[0].raw_arguments


def test_a_custom_call_goes_back_in_the_history_as_a_custom_call() -> None:
    [call] = _whole({"tool_calls": [{"id": "call_1", "type": "custom",
                                     "custom": {"name": "run_sql", "input": QUERY}}]}, "tool_calls").tool_calls
    history = [*REQ.messages, Message.assistant([call]), Message.tool("call_1", "42"),
               Message.assistant([ToolCall("call_2", "weather", {"city": "Oslo"})]),
               Message.tool("call_2", "sunny")]
    sent = adapter("openai").build_chat(ChatRequest("gpt-5", history), config("openai")).json()["messages"]
    assert sent[1]["tool_calls"] == [{"id": "call_1", "type": "custom", "custom": {"name": "run_sql", "input": QUERY}}]
    assert sent[3]["tool_calls"] == [{"id": "call_2", "type": "function",
                                      "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]


def test_a_legacy_function_call_is_a_call_whole_and_streamed() -> None:
    """``finish_reason: "function_call"`` said a tool was called, but the call itself was dropped."""
    whole = _whole({"function_call": {"name": "weather", "arguments": '{"city": "Oslo"}'}}, "function_call")
    streamed = _streamed([{"role": "assistant", "function_call": {"name": "weather", "arguments": ""}},
                          {"function_call": {"arguments": '{"city": '}}, {"function_call": {"arguments": '"Oslo"}'}}],
                         "function_call")
    for r in (whole, streamed):
        [call] = r.tool_calls
        assert (call.name, call.arguments) == ("weather", {"city": "Oslo"}) and call.id
        assert r.finish_reason == "tool_calls"
    assert whole.tool_calls[0].id == streamed.tool_calls[0].id   # the same made-up id


CUSTOM_ITEM = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_9", "name": "run_sql", "input": QUERY,
               "status": "completed"}


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_a_custom_tools_call_on_the_responses_api_whole_and_streamed_and_back() -> None:
    """A ``custom_tool_call`` output item was skipped: the caller never saw the call. Now it is a
    call, the same whole and streamed, and it goes back with its result as OpenAI pairs them."""
    req = ChatRequest("gpt-5", [Message.user("How many users?")], extra_body={"tools": [GRAMMAR_TOOL]})
    response = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5",
                "output": [CUSTOM_ITEM], "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}}
    whole = adapter("openai-responses").parse_chat(HttpResponse(200, {}, json.dumps(response).encode()), req)
    started = {**CUSTOM_ITEM, "input": "", "status": "in_progress"}
    body = _sse({"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
                {"type": "response.output_item.added", "output_index": 0, "item": started},
                {"type": "response.custom_tool_call_input.delta", "output_index": 0, "item_id": "ctc_1",
                 "delta": QUERY[:10]},
                {"type": "response.custom_tool_call_input.delta", "output_index": 0, "item_id": "ctc_1",
                 "delta": QUERY[10:]},
                {"type": "response.custom_tool_call_input.done", "output_index": 0, "item_id": "ctc_1",
                 "input": QUERY},
                {"type": "response.output_item.done", "output_index": 0, "item": CUSTOM_ITEM},
                {"type": "response.completed", "response": response})
    streamed = accumulate("openai-responses", decode_stream("openai-responses", body, req, size=17), req)
    for r in (whole, streamed):
        [call] = r.tool_calls
        assert (call.id, call.name, call.arguments) == ("call_9", "run_sql", {"input": QUERY})
        assert call.extra == {"type": "custom", "item_id": "ctc_1"} and r.finish_reason == "tool_calls"
    assert whole.tool_calls[0].raw_arguments == streamed.tool_calls[0].raw_arguments
    history = [*req.messages, whole.to_message(), Message.tool("call_9", "42")]
    sent = adapter("openai-responses").build_chat(ChatRequest("gpt-5", history), config("openai-responses")).json()
    assert sent["input"][1:] == [{"type": "custom_tool_call", "call_id": "call_9", "name": "run_sql", "input": QUERY},
                                 {"type": "custom_tool_call_output", "call_id": "call_9", "output": "42"}]
