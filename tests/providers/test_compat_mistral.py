"""Mistral through the OpenAI adapter: list-shaped content with ``thinking`` parts (Magistral),
tools with images, prompt-cache usage, and the dialect (no ``stream_options``; tool-call ids of
nine letters and digits)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, Message, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from cloverleaf.providers.openai.tool_ids import short_id
from tests.providers._openai_replay import PA, adapter, config, interaction, recorded_chunks, replay_chat, replay_stream
from tests.sdk.upstream import Reply, Upstream

MI = f"{PA}/test_mistral"


def test_thinking_content_list_becomes_reasoning_then_text() -> None:
    path = f"{MI}/test_mistral_model_thinking_part.yaml"
    resp = replay_chat("mistral", path, ChatRequest("magistral-medium-latest", [Message.user("river?")]), 1)
    content = interaction(path, 1).response.json()["choices"][0]["message"]["content"]
    thinking = "".join(t["text"] for t in content[0]["thinking"])
    assert isinstance(resp.parts[0], Reasoning) and resp.parts[0].text == thinking
    assert isinstance(resp.parts[1], Text) and resp.text == content[1]["text"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (664, 747)


def test_streamed_thinking_and_usage_in_finish_chunk() -> None:
    path = f"{MI}/test_mistral_model_thinking_part_iter.yaml"
    req = ChatRequest("magistral-medium-latest", [Message.user("How do I cross the street?")], stream=True)
    events, resp = replay_stream("mistral", path, req)
    thinking, text = [], []
    for chunk in recorded_chunks(path):
        content = chunk["choices"][0]["delta"].get("content")
        if isinstance(content, str):
            text.append(content)
        elif isinstance(content, list):
            thinking.extend(t["text"] for item in content for t in item.get("thinking", []))
    assert resp.reasoning == "".join(thinking) and resp.text == "".join(text)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (10, 232)
    assert events[-1].type == "done" and resp.finish_reason == "stop"


def test_stream_request_omits_stream_options() -> None:
    req = ChatRequest("mistral-large-latest", [Message.user("x")], stream=True)
    body = adapter("mistral").build_chat(req, config("mistral")).json()
    assert body["stream"] is True and "stream_options" not in body
    assert interaction(f"{MI}/test_mistral_model_thinking_part_iter.yaml").request_json.keys() == {
        "messages", "model", "stream"}


def test_tool_call_then_image_answer_with_top_p() -> None:
    path = f"{MI}/test_image_as_binary_content_tool_response.yaml"
    tool = Tool("get_image", parameters={"additionalProperties": False, "properties": {}, "type": "object"})
    req = ChatRequest("pixtral-12b-latest", [Message.user("What fruit is in the image you can get from the get_image tool?")],
                      tools=[tool], tool_choice=ToolChoice("auto"), top_p=1.0)
    built = adapter("mistral").build_chat(req, config("mistral")).json()
    recorded = interaction(path, 0).request_json
    assert (built["tools"], built["tool_choice"], built["top_p"]) == (
        [{"type": "function", "function": {k: v for k, v in recorded["tools"][0]["function"].items() if v != ""}}],
        recorded["tool_choice"], recorded["top_p"])
    first = replay_chat("mistral", path, req, 0)
    [call] = first.tool_calls
    assert (call.name, call.arguments, first.finish_reason) == ("get_image", {}, "tool_calls")
    assert "kiwi" in replay_chat("mistral", path, req, 1).text.lower()


def test_prompt_cache_usage() -> None:
    path = f"{MI}/test_mistral_history_uses_prompt_cache.yaml"
    resp = replay_chat("mistral", path, ChatRequest("mistral-large-latest", [Message.user("probe")]), 1)
    assert (resp.text, resp.usage.input_tokens, resp.usage.cached_tokens) == ("cache probe two.", 268, 224)


# --------------------------------------------------------------------------- tool-call ids

MISTRAL_ID = re.compile(r"[a-zA-Z0-9]{9}")
WEATHER = Tool("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def _history(*ids: str) -> ChatRequest:
    """A tool loop per id (begun on OpenAI, Anthropic, Mistral...), continued on Mistral."""
    messages = [Message.user("Weather in Paris and Rome?")]
    for n, call_id in enumerate(ids):
        messages.append(Message.assistant([ToolCall(call_id, "get_weather", {"city": f"c{n}"})]))
        messages.append(Message("tool", parts=[ToolResult(call_id, f"sunny {n}")]))
    return ChatRequest("mistral-large-latest", messages, tools=[WEATHER])


def _sent_ids(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    calls = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or ()]
    results = [m["tool_call_id"] for m in body["messages"] if "tool_call_id" in m]
    return calls, results


def test_tool_call_ids_from_other_providers_go_to_mistral_as_nine_alphanumerics() -> None:
    """Mistral answers 400 to ``call_...``/``toolu_...``: each such id is mapped, alike for the
    call and its result, the same way every time; an id Mistral gave is sent as it is."""
    ids = ("call_Xz8d0AbCdEfGhIjKlMnOpQrS", "toolu_01A09q90qw90lq917835lq9", "aB3dE6gH9", "call_0")
    body = adapter("mistral").build_chat(_history(*ids), config("mistral")).json()
    calls, results = _sent_ids(body)
    assert calls == results and all(MISTRAL_ID.fullmatch(i) for i in calls)
    assert len(set(calls)) == 4 and calls[2] == "aB3dE6gH9"
    again = adapter("mistral").build_chat(_history(*ids), config("mistral")).json()
    assert _sent_ids(again) == (calls, results)
    # a longer history maps its earlier ids as before: the turns already sent do not change
    longer = adapter("mistral").build_chat(_history(*ids, "call_next"), config("mistral")).json()
    assert _sent_ids(longer)[0][:4] == calls


def test_other_rows_send_tool_call_ids_unchanged_unless_configured() -> None:
    ids = ("call_Xz8d0AbCdEfGhIjKlMnOpQrS", "toolu_01A09q90qw90lq917835lq9")
    body = adapter("openai").build_chat(_history(*ids), config("openai")).json()
    assert _sent_ids(body) == (list(ids), list(ids))
    # a custom row in front of a Mistral model can ask for Mistral's ids
    custom = adapter("chat_completions").build_chat(
        _history(*ids), config("chat_completions", base_url="http://127.0.0.1:1/v1", mistral_tool_ids=True)).json()
    assert all(MISTRAL_ID.fullmatch(i) for i in _sent_ids(custom)[0])


def test_a_mapped_id_never_clashes_with_another_id_of_the_request() -> None:
    first = short_id("call_a", set())
    assert MISTRAL_ID.fullmatch(first) and short_id("call_a", set()) == first
    other = short_id("call_a", {first})
    assert MISTRAL_ID.fullmatch(other) and other != first
    # a Mistral id in the history that happens to be what call_a would map to: call_a takes another
    body = adapter("mistral").build_chat(_history(first, "call_a"), config("mistral")).json()
    calls, results = _sent_ids(body)
    assert calls == results == [first, other]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def test_a_history_from_openai_continues_on_mistral(upstream: Upstream) -> None:
    """End to end, through a client: the history's OpenAI ids reach Mistral in its form."""
    answer = {"id": "x", "object": "chat.completion", "model": "mistral-large-latest",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny in Paris."},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24}}
    upstream.queue(Reply(body=json.dumps(answer).encode()))
    mistral = ProviderSettings("mistral", base_url=f"{upstream.url}/v1")
    with Client(Settings.load(env={"MISTRAL_API_KEY": "mk-mock"}, providers={"mistral": mistral})) as client:
        resp = client.chat("mistral/mistral-large-latest", _history("call_Xz8d0AbCdEfGhIjKlMnOpQrS").messages,
                           tools=[WEATHER])
    assert resp.text == "Sunny in Paris."
    calls, results = _sent_ids(json.loads(upstream.seen[-1].body))
    assert calls == results and all(MISTRAL_ID.fullmatch(i) for i in calls)
