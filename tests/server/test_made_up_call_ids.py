"""A client's own tool loop through the server, on an upstream that sends tool calls without ids
(Gemini's OpenAI-compatible endpoint), driven by the official OpenAI SDK, streamed and not: each
turn's call reaches the client with an id of its own, so the history the client sends back holds
no id twice and continues on Claude (which refuses a repeated ``tool_use`` id). The server used
to make up ``call_0`` for every turn."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._types import StreamEvent
from cloverleaf.server.anthropic_stream import MessageStreamEncoder
from cloverleaf.server.openai_stream import ChatChunkEncoder
from tests.providers.test_made_up_call_ids import (
    assert_replayable_on_claude,
    claude_answer,
    id_less_call,
    id_less_stream,
)

from ..sdk.upstream import Upstream
from .conftest import Live
from .two_upstreams import sent

TOOLS: Any = [{"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}]


def _turn(client: Any, messages: list[Any], stream: bool) -> dict[str, Any]:
    """One model turn through the server: the assistant message as the client keeps it."""
    if not stream:
        message = client.chat.completions.create(model="oai/gemini-2.5-flash", messages=messages,
                                                 tools=TOOLS).choices[0].message
        return message.model_dump(exclude_none=True)  # type: ignore[no-any-return]
    calls: dict[int, dict[str, Any]] = {}
    for chunk in client.chat.completions.create(model="oai/gemini-2.5-flash", messages=messages, tools=TOOLS,
                                                stream=True):
        for delta in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            call = calls.setdefault(delta.index, {"id": delta.id, "type": "function",
                                                  "function": {"name": "", "arguments": ""}})
            call["function"]["name"] += delta.function.name or ""
            call["function"]["arguments"] += delta.function.arguments or ""
    return {"role": "assistant", "tool_calls": [calls[i] for i in sorted(calls)]}


@pytest.mark.parametrize("answer_ids", [("answer-1", "answer-2"), ("chatcmpl-7", "chatcmpl-7")],
                         ids=["own-ids", "one-reused-id"])   # Ollama's /v1 numbers answers below 999
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_clients_tool_loop_gets_an_id_per_call_and_continues_on_claude(
        two_upstreams_live: Live, upstream: Upstream, stream: bool, answer_ids: tuple[str, str]) -> None:
    client = two_upstreams_live.openai()
    messages: list[Any] = [{"role": "user", "content": "What time is it, twice?"}]
    for answer_id in answer_ids:
        upstream.queue(id_less_stream(answer_id) if stream else id_less_call(answer_id))
        turn = _turn(client, messages, stream)
        [call] = turn["tool_calls"]
        assert call["id"] and call["function"]["name"] == "get_time"
        messages += [turn, {"role": "tool", "tool_call_id": call["id"], "content": "noon"}]
    ids = [m["tool_calls"][0]["id"] for m in messages if m.get("tool_calls")]
    assert len(set(ids)) == 2, ids
    upstream.queue(claude_answer())
    final = client.chat.completions.create(model="anth/claude-sonnet-4-5", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "It is noon."
    assert_replayable_on_claude(sent(upstream))


def test_the_encoders_make_an_id_per_answer_for_an_event_without_one() -> None:
    """Events reaching an encoder without an id (not through an engine, whose accumulator gives
    one): each answer's call gets its own, not ``call_0`` / ``toolu_0`` every time."""
    def chat_id(answer: str) -> str:
        encoder = ChatChunkEncoder(response_id=answer, model="m", created=1, include_usage=False)
        frame = encoder.encode(StreamEvent("tool_call_delta", index=0, name="get_time"))
        assert frame is not None
        return str(json.loads(frame.decode()[len("data: "):])["choices"][0]["delta"]["tool_calls"][0]["id"])

    def messages_id(answer: str) -> str:
        encoder = MessageStreamEncoder(message_id=answer, model="m")
        frame = encoder.encode(StreamEvent("tool_call_delta", index=0, name="get_time"))
        assert frame is not None
        start = next(line for line in frame.decode().splitlines() if "content_block_start" in line
                     and line.startswith("data: "))
        return str(json.loads(start[len("data: "):])["content_block"]["id"])

    for made in (chat_id, messages_id):
        assert made("answer-1") != made("answer-2") and made("answer-1") == made("answer-1")
