"""Responses API: the items of tools OpenAI runs (a ``web_search_call`` between reasoning items) are
kept from the answer, whole and streamed, and go back in place on the next turn, so the follow-up
request is the one pydantic-ai recorded OpenAI accepting (gpt-5 with ``web_search``). Before, the
search was dropped and the first reasoning item went back without the item that followed it:
OpenAI refuses that ("Item 'rs_...' of type 'reasoning' was provided without its required
following item", recorded in test_openai_responses_thinking_with_modified_history)."""

from __future__ import annotations

import json

import pytest

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message
from tests.providers._openai_replay import PA, adapter, config, interaction, recorded_chunks, replay_stream

RESP = f"{PA}/test_openai_responses"
SEARCH = f"{RESP}/test_openai_responses_model_web_search_tool.yaml"
SEARCH_STREAM = f"{RESP}/test_openai_responses_model_web_search_tool_stream.yaml"
ROW = "openai-responses"
FIRST = [Message.system("You are a helpful assistant."), Message.user("What is the weather in San Francisco today?")]


def _answer(path: str, stream: bool) -> ChatResponse:
    req = ChatRequest("gpt-5", FIRST, stream=stream)
    if stream:
        return replay_stream(ROW, path, req, 0, size=211)[1]
    return adapter(ROW).parse_chat(interaction(path, 0).response, req)


def _next_input(answer: ChatResponse, **extra: object) -> list[dict[str, object]]:
    req = ChatRequest("gpt-5", [*FIRST, answer.to_message(), Message.user("how about Mexico City?")])
    return adapter(ROW).build_chat(req, config(ROW, **extra)).json()["input"]


@pytest.mark.parametrize(("path", "stream"), [(SEARCH, False), (SEARCH_STREAM, True)])
def test_a_search_between_reasoning_items_goes_back_in_place(path: str, stream: bool) -> None:
    answer = _answer(path, stream)
    [kept] = answer.metadata.extra["server_tool_blocks"]
    assert kept["type"] == "web_search_call" and kept["id"].startswith("ws_")
    assert _next_input(answer) == interaction(path, 1).request_json["input"]


def test_the_streamed_answer_keeps_what_the_whole_answer_keeps() -> None:
    """The stream's items are its terminal response's (read without our decoder), sources and all."""
    terminal = recorded_chunks(SEARCH_STREAM, 0)[-1]["response"]
    whole = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(terminal).encode()), ChatRequest("gpt-5", FIRST))
    streamed = _answer(SEARCH_STREAM, True)
    assert streamed.metadata.extra["server_tool_blocks"] == whole.metadata.extra["server_tool_blocks"]
    assert streamed.metadata.extra["server_tool_block_positions"] == [terminal["output"][0]["id"]]
    assert whole.metadata.extra["server_tool_blocks"][0]["action"]["sources"]   # kept as it came


def test_nothing_goes_back_by_id_without_storage() -> None:
    sent = _next_input(_answer(SEARCH, False), store=False)
    assert [i.get("type") for i in sent] == [None, "reasoning", "reasoning", None, None]
    assert all("id" not in i for i in sent)


def test_server_items_go_back_only_to_this_kind_of_row() -> None:
    answer = _answer(SEARCH, False)
    message = answer.to_message()
    message.extra = {**(message.extra or {}), "provider": "anthropic"}
    req = ChatRequest("gpt-5", [*FIRST, message, Message.user("how about Mexico City?")])
    sent = adapter(ROW).build_chat(req, config(ROW)).json()["input"]
    assert "web_search_call" not in [i.get("type") for i in sent]
