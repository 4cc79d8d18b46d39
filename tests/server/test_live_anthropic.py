"""The Anthropic-compatible API, live, through the official ``anthropic`` SDK, backed by the
fake (an OpenAI-shaped provider): the translation works for any backend."""

from __future__ import annotations

import anthropic
import pytest

from .conftest import Live

TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_message_text(open_server: Live) -> None:
    client = open_server.anthropic()
    raw = client.messages.with_raw_response.create(
        model="fake/echo", max_tokens=100, system="be brief",
        messages=[{"role": "user", "content": "hello anthropic client"}])
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "fake/echo"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "hello anthropic client"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert "x-cloverleaf-overhead-ms" in raw.headers
    sent = open_server.fake.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_stream_text(open_server: Live) -> None:
    client = open_server.anthropic()
    with client.messages.stream(model="fake/echo", max_tokens=100,
                                messages=[{"role": "user", "content": "a streamed hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "a streamed hello"
    assert final.content[0].text == "a streamed hello"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_tools_and_tool_result_round_trip(open_server: Live) -> None:
    client = open_server.anthropic()
    msg = client.messages.create(model="fake/tools", max_tokens=200, tools=[TOOL],  # type: ignore[list-item]
                                 tool_choice={"type": "tool", "name": "get_weather"},
                                 messages=[{"role": "user", "content": "weather in Oslo?"}])
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)  # type: ignore[union-attr,index]

    with client.messages.stream(model="fake/tools", max_tokens=200, tools=[TOOL],  # type: ignore[list-item]
                                tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "weather in Oslo?"}]) as stream:
        final = stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert streamed.name == "get_weather" and set(streamed.input) == {"city"}  # type: ignore[union-attr,arg-type]
    assert final.stop_reason == "tool_use"

    follow = client.messages.create(model="fake/echo", max_tokens=100, tools=[TOOL], tool_choice={"type": "none"}, messages=[  # type: ignore[list-item]
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": "get_weather",  # type: ignore[union-attr]
                                           "input": use.input}]},  # type: ignore[union-attr]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "12C"},  # type: ignore[union-attr]
                                     {"type": "text", "text": "and tomorrow?"}]}])
    assert follow.content[0].text == "and tomorrow?"  # type: ignore[union-attr]
    sent = open_server.fake.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2]["tool_call_id"] == use.id  # type: ignore[union-attr]


def test_thinking_stream_from_scripted_reasoning(open_server: Live) -> None:
    open_server.fake.script.reply("The answer is 4.", reasoning="2 plus 2 is 4")
    client = open_server.anthropic()
    with client.messages.stream(model="fake/thinker", max_tokens=2000,
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "2+2?"}]) as stream:
        final = stream.get_final_message()
    kinds = [b.type for b in final.content]
    assert kinds == ["thinking", "text"]
    assert final.content[0].thinking == "2 plus 2 is 4"  # type: ignore[union-attr]
    assert final.content[1].text == "The answer is 4."  # type: ignore[union-attr]


def test_count_tokens(open_server: Live) -> None:
    n = open_server.anthropic().messages.count_tokens(model="fake/echo",
                                                      messages=[{"role": "user", "content": "x" * 400}])
    assert n.input_tokens >= 100


def test_errors_in_anthropic_shape(open_server: Live) -> None:
    client = open_server.anthropic()
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert nf.value.body["type"] == "error"  # type: ignore[index]
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as br:
        client.messages.create(model="fake/echo", max_tokens=10,
                               messages=[{"role": "user", "content": [
                                   {"type": "image", "source": {"type": "url", "url": "/etc/passwd"}}]}])
    assert br.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.RateLimitError) as rl:
        client.messages.create(model="fake/fail-429", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert int(rl.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.UnprocessableEntityError) as un:
        client.messages.create(model="simple/default", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert un.value.body["error"]["provider"] == "simple"  # type: ignore[index]


def test_stream_error_after_output_is_an_error_event(open_server: Live) -> None:
    client = open_server.anthropic()
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="fake/reset-after-2", max_tokens=100,
                                    messages=[{"role": "user", "content": "one two three four five"}]) as stream:
            for _ in stream:
                pass
