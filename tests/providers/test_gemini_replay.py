"""Multi-turn tool conversations: request N+1 built from response N plus the tool results
must carry the same ``contents`` as the recorded request N+1 (the one Gemini accepted)."""

from __future__ import annotations

from typing import Any

import pytest

from cloverleaf._types import ChatRequest, ChatResponse, Message, Role, Text, ToolResult
from tests.providers.test_gemini_support import GOOGLE, GOOGLE_NEW, adapter, config, decode, normalise_contents
from tests.wire import Interaction, cassette

CONVERSATIONS = [
    GOOGLE + "test_google_tool_output.yaml",                     # gemini-2.0, no call ids
    GOOGLE + "test_google_instructions_only_with_tool_calls.yaml",  # gemini-3, parallel calls, signatures
    GOOGLE_NEW + "test_output/test_google_validated_accepts_strict_incompatible_schema.yaml",
    GOOGLE + "test_google_model_iter_stream.yaml",               # streamed turns
    GOOGLE + "test_google_streaming_tool_call_thought_signature.yaml",
]


def _first_messages(recorded: dict[str, Any]) -> list[Message]:
    messages = []
    if "systemInstruction" in recorded:
        messages.append(Message.system(recorded["systemInstruction"]["parts"][0]["text"]))
    for content in recorded["contents"]:
        assert content["role"] == "user"
        messages.append(Message.user([Text(p["text"]) for p in content["parts"]]))
    return messages


def _response(it: Interaction, model: str) -> ChatResponse:
    if "streamGenerateContent" in it.uri:
        return decode(ChatRequest(model, [], stream=True), [it.response.body])[1]
    return adapter().parse_chat(it.response, ChatRequest(model, []))


def _user_turns(contents: list[dict[str, Any]], calls: list[str]) -> list[Message]:
    """Our messages for the recorded user turns that follow the model turn: the k-th function
    response answers our k-th tool call (its name is left out: the adapter must find it)."""
    messages = []
    answered = 0
    for content in contents:
        assert content["role"] == "user"
        for part in content["parts"]:
            if "functionResponse" in part:
                value = next(iter(part["functionResponse"]["response"].values()))
                messages.append(Message(Role.TOOL, [ToolResult(calls[answered], value)]))
                answered += 1
            else:
                messages.append(Message.user(part["text"]))
    return messages


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_next_request_matches_the_recorded_one(name: str):
    turns = [it for it in cassette(name) if "generativelanguage" in it.uri or "aiplatform" in it.uri]
    first = turns[0].request_json
    model = turns[0].uri.rsplit("/models/", 1)[1].split(":")[0]
    messages = _first_messages(first)
    compared = 0
    for previous, current in zip(turns, turns[1:], strict=False):
        response = _response(previous, model)
        messages.append(response.to_message())
        recorded = current.request_json
        done = len(adapter().build_chat(ChatRequest(model, messages), config()).json()["contents"])
        messages += _user_turns(recorded["contents"][done:], [c.id for c in response.tool_calls])
        built = adapter().build_chat(ChatRequest(model, messages, stream="stream" in current.uri), config()).json()
        assert normalise_contents(built["contents"]) == normalise_contents(recorded["contents"])
        compared += 1
    assert compared == len(turns) - 1 >= 1
