"""What an upstream answered reaches the server's clients as it said it, streamed or not: a mock
Anthropic (and OpenAI) upstream behind a live server, driven by the official OpenAI and Anthropic
SDKs. Each test is a translation fault once found between the two APIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

SSE = {"content-type": "text/event-stream"}
CONFIGURED_BETA = "output-128k-2025-02-19"
NO_ARGS = {"type": "object", "properties": {}}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"anth": ProviderSettings("anth", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock",
                                          extra={"beta": CONFIGURED_BETA}),
                 "oai": ProviderSettings("oai", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def message(content: list[dict[str, Any]], stop_reason: str | None, **fields: Any) -> dict[str, Any]:
    """An Anthropic ``Message`` as the API answers it."""
    return {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5},
            **fields}


def reply(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers={"content-type": "application/json", **(headers or {})},
                 body=json.dumps(body).encode())


def stream(*events: dict[str, Any]) -> Reply:
    """An Anthropic SSE stream: ``message_start`` (an empty message), the given events, ``message_stop``."""
    events = ({"type": "message_start", "message": message([], None)}, *events, {"type": "message_stop"})
    return Reply(headers=SSE, chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


def sent(upstream: Upstream) -> dict[str, Any]:
    """The body of the last request the upstream received."""
    return json.loads(upstream.seen[-1].body)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- tool calls


NO_ARGUMENT_CALL = (
    {"type": "content_block_start", "index": 0,
     "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_time", "input": {}}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 12}},
)


def test_a_no_argument_tool_call_has_json_arguments_streamed_or_not(live: Live, upstream: Upstream) -> None:
    """Claude streams a no-argument call as one empty fragment; OpenAI clients read ``"{}"`` (what
    the whole answer gives, and what OpenAI sends), on Chat Completions and on Responses."""
    client = live.openai()
    tools: Any = [{"type": "function", "function": {"name": "get_time", "parameters": NO_ARGS}}]
    ask: Any = [{"role": "user", "content": "time?"}]
    upstream.queue(reply(message([{"type": "tool_use", "id": "toolu_01", "name": "get_time", "input": {}}],
                                 "tool_use")))
    whole = client.chat.completions.create(model="anth/claude-sonnet-4-5", tools=tools, messages=ask)
    upstream.queue(stream(*NO_ARGUMENT_CALL))
    with client.chat.completions.stream(model="anth/claude-sonnet-4-5", tools=tools, messages=ask) as s:
        streamed = s.get_final_completion()
    upstream.queue(stream(*NO_ARGUMENT_CALL))
    with client.responses.stream(model="anth/claude-sonnet-4-5", input="time?", tools=[
            {"type": "function", "name": "get_time", "parameters": NO_ARGS, "strict": False}]) as r:
        events = list(r)
        response = r.get_final_response()
    done = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    item = response.output[0]
    assert item.type == "function_call"
    arguments = [whole.choices[0].message.tool_calls[0].function.arguments,  # type: ignore[index, union-attr]
                 streamed.choices[0].message.tool_calls[0].function.arguments,  # type: ignore[index, union-attr]
                 item.arguments, *done]
    assert arguments == ["{}"] * 4
    assert streamed.choices[0].finish_reason == "tool_calls"


def test_arguments_an_openai_compatible_upstream_streams_as_an_object_reach_every_client_as_json_text(
        live: Live, upstream: Upstream) -> None:
    """Some OpenAI-compatible servers stream ``arguments`` as the object; every endpoint's client
    gets its JSON text (Chat Completions' ``arguments``, Anthropic's ``partial_json``, Responses'
    argument events), with the whole answer: not the object, then a broken or dropped stream."""
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    chunks = [{"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
              {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    body = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    upstream.queue(*[Reply(headers=SSE, chunks=body) for _ in range(3)])
    with live.openai().chat.completions.stream(model="oai/gpt-4o", messages=HI) as s:
        chat = s.get_final_completion()
    with live.anthropic().messages.stream(model="oai/gpt-4o", max_tokens=10, messages=HI) as m:
        message = m.get_final_message()
    with live.openai().responses.stream(model="oai/gpt-4o", input="hi") as r:
        events = list(r)
        response = r.get_final_response()
    assert chat.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'  # type: ignore[index]
    assert chat.choices[0].finish_reason == "tool_calls"
    assert message.content[0].input == {"city": "Paris"} and message.stop_reason == "tool_use"  # type: ignore[union-attr]
    done = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    assert done == [response.output[0].arguments] == ['{"city":"Paris"}']  # type: ignore[union-attr]
    assert response.status == "completed"


# --------------------------------------------------------------------------- stop reasons

CITY = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
        "additionalProperties": False}


def test_structured_output_through_the_forced_tool_ends_the_turn(live: Live, upstream: Upstream) -> None:
    """A Claude model without native JSON output answers through the forced json_response tool
    (stop_reason tool_use); the client gets the JSON as text, so the turn ended: end_turn."""
    client = live.anthropic()
    ask: Any = {"model": "anth/claude-3-5-sonnet-20241022", "max_tokens": 100,
                "messages": [{"role": "user", "content": "city?"}],
                "output_config": {"format": {"type": "json_schema", "schema": CITY}}}
    upstream.queue(reply(message([{"type": "tool_use", "id": "toolu_1", "name": "json_response",
                                   "input": {"name": "Tokyo"}}], "tool_use")))
    whole = client.messages.create(**ask)
    assert sent(upstream)["tool_choice"] == {"type": "tool", "name": "json_response"}
    upstream.queue(stream(
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"name": "Tokyo"}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}))
    with client.messages.stream(**ask) as s:
        streamed = s.get_final_message()
    for answer in (whole, streamed):
        assert [b.type for b in answer.content] == ["text"]
        assert json.loads(answer.content[0].text) == {"name": "Tokyo"}  # type: ignore[union-attr]
        assert answer.stop_reason == "end_turn"


# --------------------------------------------------------------------------- thinking in tool loops


def test_openai_client_tool_loop_with_reasoning_effort_on_claude(live: Live, upstream: Upstream) -> None:
    """Chat Completions cannot carry Claude's thinking signature back, so turn 2 of a tool loop has
    a tool_use turn without thinking: sent with thinking on, Anthropic refuses it ("a final
    assistant message must start with a thinking block"); it is sent without thinking instead."""
    client = live.openai()
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    upstream.queue(reply(message([
        {"type": "thinking", "thinking": "I should look it up.", "signature": "EqQBCkYIBxgCKkD-signature"},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}], "tool_use")))
    first = client.chat.completions.create(model="anth/claude-sonnet-4-5", messages=messages, tools=tools,
                                           reasoning_effort="low")
    assert sent(upstream)["thinking"]["type"] == "enabled"
    messages.append(first.choices[0].message.model_dump(exclude_none=True))   # what the SDK gives back
    messages.append({"role": "tool", "tool_call_id": first.choices[0].message.tool_calls[0].id,  # type: ignore[index]
                     "content": "sunny"})
    upstream.queue(reply(message([{"type": "text", "text": "Sunny."}], "end_turn")))
    second = client.chat.completions.create(model="anth/claude-sonnet-4-5", messages=messages, tools=tools,
                                            reasoning_effort="low")
    body = sent(upstream)
    assert "thinking" not in body
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]
    assert second.choices[0].message.content == "Sunny."


# --------------------------------------------------------------------------- stop sequences


def test_the_stop_sequence_that_matched_reaches_anthropic_clients(live: Live, upstream: Upstream) -> None:
    """Anthropic says which stop sequence ended the answer; the client reads the same, streamed or
    not. An OpenAI-style upstream does not say which, so it is null there."""
    client = live.anthropic()
    ask: Any = {"model": "anth/claude-sonnet-4-5", "max_tokens": 50, "stop_sequences": ["STOP", "END"],
                "messages": [{"role": "user", "content": "count"}]}
    upstream.queue(reply(message([{"type": "text", "text": "1, 2, 3"}], "stop_sequence", stop_sequence="END")))
    whole = client.messages.create(**ask)
    assert sent(upstream)["stop_sequences"] == ["STOP", "END"]
    upstream.queue(stream(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "1, 2, 3"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
         "usage": {"output_tokens": 5}}))
    with client.messages.stream(**ask) as s:
        streamed = s.get_final_message()
    for answer in (whole, streamed):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", "END")
        assert answer.content[0].text == "1, 2, 3"  # type: ignore[union-attr]
    upstream.queue(reply({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "1, 2, 3"}}]}))
    relayed = client.messages.create(**{**ask, "model": "oai/gpt-4o"})
    assert sent(upstream)["stop"] == ["STOP", "END"]
    assert (relayed.stop_reason, relayed.stop_sequence) == ("end_turn", None)


# --------------------------------------------------------------------------- errors

QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                   "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}


def test_a_spent_upstream_quota_is_not_retried_by_the_sdks(live: Live, upstream: Upstream) -> None:
    """OpenAI's insufficient_quota 429 keeps its code and gets no invented Retry-After; the SDKs,
    which retry any 429 by themselves, make one call, not three."""
    upstream.queue(*[reply(QUOTA, status=429) for _ in range(3)])
    before = len(upstream.seen)
    with pytest.raises(openai.RateLimitError) as raised:
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=2).chat.completions.create(
            model="oai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert len(upstream.seen) - before == 1
    assert raised.value.code == "insufficient_quota" and raised.value.type == "insufficient_quota"
    response = raised.value.response
    assert "retry-after" not in response.headers and response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.RateLimitError) as refused:
        anthropic.Anthropic(base_url=live.url, api_key="unused", max_retries=2).messages.create(
            model="oai/gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert len(upstream.seen) - before == 2
    assert refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    upstream.replies.clear()


def test_an_upstream_redirect_is_a_502_that_names_it_and_is_not_retried(live: Live, upstream: Upstream) -> None:
    """A target whose base_url moved (a 301 to https, a new deployment) answers with a redirect the
    gateway does not follow (its key would go along): the client hears where it points, and
    neither the gateway nor the SDK, which retries a 502 by itself, asks again."""
    moved = "https://llm.internal.example/v1/chat/completions"
    redirect = Reply(status=301, headers={"location": moved, "content-type": "text/html"}, body=b"<p>Moved</p>")
    upstream.replies.clear()
    for stream in (False, True):
        upstream.queue(*[redirect] * 3)
        before = len(upstream.seen)
        with pytest.raises(openai.APIStatusError) as raised:
            openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=2).chat.completions.create(
                model="oai/gpt-4o", messages=HI, stream=stream)
        assert len(upstream.seen) - before == 1
        assert raised.value.status_code == 502 and raised.value.code == "upstream_redirected"
        assert moved in raised.value.message and "set base_url to https://llm.internal.example/v1" in raised.value.message
        upstream.replies.clear()


def test_an_upstream_413_stays_a_413(live: Live, upstream: Upstream) -> None:
    """Anthropic's 413 request_too_large reaches the Anthropic SDK as its 413 class (not a 400
    BadRequestError), and OpenAI clients as a 413 in OpenAI's shape."""
    too_large = {"type": "error", "error": {"type": "request_too_large",
                                            "message": "Request exceeds the maximum allowed number of bytes."}}
    upstream.queue(reply(too_large, status=413))
    with pytest.raises(anthropic.RequestTooLargeError) as raised:
        live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=10,
                                         messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 413
    assert raised.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert "maximum allowed number of bytes" in raised.value.message
    upstream.queue(reply(too_large, status=413))
    with pytest.raises(openai.APIStatusError) as relayed:
        live.openai().chat.completions.create(model="anth/claude-sonnet-4-5",
                                              messages=[{"role": "user", "content": "hi"}])
    assert relayed.value.status_code == 413 and not isinstance(relayed.value, openai.BadRequestError)
    assert relayed.value.code == "request_too_large" and relayed.value.type == "invalid_request_error"


# --------------------------------------------------------------------------- beta features

HI: Any = [{"role": "user", "content": "hi"}]
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}


def test_a_clients_betas_reach_an_anthropic_upstream(live: Live, upstream: Upstream) -> None:
    """The Anthropic SDK's betas=[...] (Claude Code's anthropic-beta) join the provider's own beta
    setting on the way to Anthropic's API, from either API's endpoint; other providers ignore them."""
    upstream.queue(reply(message([{"type": "text", "text": "hi"}], "end_turn")))
    live.anthropic().beta.messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                          betas=["context-1m-2025-08-07", "interleaved-thinking-2025-05-14",
                                                 CONFIGURED_BETA])
    assert upstream.seen[-1].headers["anthropic-beta"] == (
        f"{CONFIGURED_BETA},context-1m-2025-08-07,interleaved-thinking-2025-05-14")
    upstream.queue(reply(message([{"type": "text", "text": "hi"}], "end_turn")))
    live.openai().chat.completions.create(model="anth/claude-sonnet-4-5", messages=HI,
                                          extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert upstream.seen[-1].headers["anthropic-beta"] == f"{CONFIGURED_BETA},context-1m-2025-08-07"
    upstream.queue(reply(message([{"type": "text", "text": "hi"}], "end_turn")))
    live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI)
    assert upstream.seen[-1].headers["anthropic-beta"] == CONFIGURED_BETA   # nothing of the last call's
    upstream.queue(reply(COMPLETION))
    live.openai().chat.completions.create(model="oai/gpt-4o", messages=HI,
                                          extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert "anthropic-beta" not in upstream.seen[-1].headers


@pytest.mark.parametrize("value", ["context-1m-2025-08-07, bad name", "a;b", "x" * 65,
                                   ",".join(f"beta-{i}" for i in range(33))])
def test_a_malformed_beta_header_is_a_400_that_says_what_to_send(live: Live, upstream: Upstream, value: str) -> None:
    before = len(upstream.seen)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/messages", json={"model": "anth/claude-sonnet-4-5", "max_tokens": 20, "messages": HI},
                      headers={"anthropic-version": "2023-06-01", "anthropic-beta": value})
        chat = http.post("/v1/chat/completions", json={"model": "anth/claude-sonnet-4-5", "messages": HI},
                         headers={"anthropic-beta": value})
    assert r.status_code == chat.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "anthropic-beta" in error["message"]
    assert "comma-separated" in error["message"] or "at most 32" in error["message"]
    assert chat.json()["error"]["param"] == "anthropic-beta"
    assert len(upstream.seen) == before
