"""Tool calls an OpenAI-compatible server sends without ids (Gemini's OpenAI-compatible endpoint
sends ``"id": ""``, as recorded in ``test_compatible_api_with_tool_calls_without_id``) get ids of
our making, unique per answer: a tool loop's history used to hold ``call_0`` once per turn, which
Anthropic refuses on a fallback ("tool_use ids must be unique") and which OpenAI cannot pair
results with."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, StreamEvent
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.providers._openai_replay import adapter
from tests.sdk.upstream import Reply, Upstream

SSE = {"content-type": "text/event-stream"}
ANTHROPIC_ID_MAX = 64


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return "noon"


def id_less_call(answer_id: str) -> Reply:
    """A whole answer calling ``get_time`` with ``"id": ""``, as Gemini's endpoint sends it."""
    return Reply(body=json.dumps({
        "id": answer_id, "object": "chat.completion", "created": 1748902365, "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [
            {"id": "", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\":\"UTC\"}"}}]}}],
        "usage": {"prompt_tokens": 35, "completion_tokens": 12, "total_tokens": 47}}).encode())


def id_less_stream(answer_id: str | None) -> Reply:
    """The same call streamed, its fragments without ids (and the chunks without one when
    ``answer_id`` is None)."""
    head = {"id": answer_id} if answer_id else {}
    chunks = [
        {"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "type": "function", "function": {"name": "get_time", "arguments": ""}}]}},
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"zone\":\"UTC\"}"}}]}},
        {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
    ]
    lines = [f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'created': 1, 'model': 'gemini-2.5-flash', 'choices': [c]})}\n\n"
             for c in chunks]
    return Reply(headers=SSE, chunks=[line.encode() for line in [*lines, "data: [DONE]\n\n"]])


def final_answer(text: str = "It is noon.") -> Reply:
    return Reply(body=json.dumps({
        "id": "last", "object": "chat.completion", "created": 1, "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).encode())


def claude_answer() -> Reply:
    return Reply(body=json.dumps({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "It is noon."}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 70, "output_tokens": 5}}).encode())


def anthropic_ids(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    blocks = [b for turn in body["messages"] if isinstance(turn["content"], list) for b in turn["content"]]
    return ([b["id"] for b in blocks if b["type"] == "tool_use"],
            [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"])


def assert_replayable_on_claude(body: dict[str, Any]) -> None:
    """What Anthropic's API checks of a history's tool ids: unique, each result answering a call,
    within its pattern."""
    uses, results = anthropic_ids(body)
    assert len(uses) == 2 and len(set(uses)) == 2, uses
    assert results == uses
    assert all(len(i) <= ANTHROPIC_ID_MAX and i.replace("_", "").replace("-", "").isalnum() for i in uses)


def settings(upstream: Upstream) -> Settings:
    providers = {"gem": ProviderSettings("gem", kind="openai", base_url=f"{upstream.url}/v1", api_key="gk-mock"),
                 "anthropic": ProviderSettings("anthropic", base_url=upstream.url, api_key="sk-ant-mock")}
    store = f"sqlite:///{tempfile.mkdtemp(prefix='cloverleaf-ids-')}/store.db"
    return Settings.load(env={}, providers=providers, max_retries=0, store={"url": store},
                         routes={"timely": {"targets": ["gem/gemini-2.5-flash", "anthropic/claude-sonnet-4-5"]}})


def test_a_run_tools_loop_falls_back_to_claude_with_unique_ids(upstream: Upstream) -> None:
    """Two turns of calls without ids, then the third turn fails over to Claude with the history."""
    upstream.queue(id_less_call("answer-1"), id_less_call("answer-2"),
                   Reply(status=503, body=b'{"error": {"message": "overloaded", "code": 503}}'), claude_answer())
    with Client(settings(upstream)) as client:
        resp = client.chat("timely", "What time is it, twice?", tools=[get_time], run_tools=True)
    assert resp.text == "It is noon."
    openai_turn = json.loads(upstream.seen[2].body)["messages"]
    calls = [m["tool_calls"][0]["id"] for m in openai_turn if m.get("tool_calls")]
    assert len(set(calls)) == 2 and [m["tool_call_id"] for m in openai_turn if m["role"] == "tool"] == calls
    assert_replayable_on_claude(json.loads(upstream.seen[3].body))


def test_a_server_reusing_one_answer_id_still_gives_each_turn_its_own_ids(upstream: Upstream) -> None:
    """Ollama's /v1 numbers its answers ``chatcmpl-`` and a number below 999, vLLM echoes a
    client's ``X-Request-Id``: two turns answered under one id got the same made-up call ids,
    and the history was refused on Claude."""
    upstream.queue(id_less_call("chatcmpl-7"), id_less_call("chatcmpl-7"),
                   Reply(status=503, body=b'{"error": {"message": "overloaded", "code": 503}}'), claude_answer())
    with Client(settings(upstream)) as client:
        resp = client.chat("timely", "What time is it, twice?", tools=[get_time], run_tools=True)
    assert resp.text == "It is noon."
    assert_replayable_on_claude(json.loads(upstream.seen[3].body))


@pytest.mark.parametrize("answer_ids", [("answer-1", "answer-2"), (None, None), ("chatcmpl-7", "chatcmpl-7")])
def test_a_streamed_tool_loop_replays_on_claude_with_unique_ids(upstream: Upstream,
                                                               answer_ids: tuple[str | None, str | None]) -> None:
    """The same loop streamed, with and without answer ids on the chunks."""
    upstream.queue(*(id_less_stream(a) for a in answer_ids), claude_answer())
    history: list[Message] = [Message.user("What time is it, twice?")]
    with Client(settings(upstream)) as client:
        for _ in answer_ids:
            with client.stream("gem/gemini-2.5-flash", history, tools=[get_time]) as stream:
                events = list(stream)
            answer = events[-1].response
            assert answer is not None
            streamed = [ev.id for ev in events if ev.type == "tool_call_delta" and ev.id]
            assert streamed == [c.id for c in answer.tool_calls]   # what a relay sends is what is recorded
            history += [answer.to_message(), Message.tool(answer.tool_calls[0].id, "noon")]
        assert client.chat("anthropic/claude-sonnet-4-5", history, tools=[get_time]).text == "It is noon."
    assert_replayable_on_claude(json.loads(upstream.seen[-1].body))


def test_a_whole_answer_and_its_stream_make_the_same_ids() -> None:
    """One answer id, one call index: the same id parsed whole or streamed (split anywhere)."""
    oa = adapter("chat_completions")
    whole = oa.parse_chat(_response(id_less_call("answer-1")), ChatRequest("g", [Message.user("t")]))
    body = b"".join(id_less_stream("answer-1").chunks or ())
    for cut in range(0, len(body), 7):
        decoder = oa.stream_decoder(ChatRequest("g", [Message.user("t")], stream=True))
        acc = StreamAccumulator("g", "chat_completions")
        for ev in [*decoder.feed(body[:cut]), *decoder.feed(body[cut:]), *decoder.close()]:
            acc.add(ev)
        assert [c.id for c in acc.response().tool_calls] == [c.id for c in whole.tool_calls]
    assert whole.tool_calls[0].id != oa.parse_chat(_response(id_less_call("answer-2")),
                                                   ChatRequest("g", [Message.user("t")])).tool_calls[0].id


def test_one_answer_id_in_two_turns_makes_two_ids_alike_whole_or_streamed() -> None:
    """A server that sends one answer id on every turn: the second turn (whose history holds the
    first turn's call) gets other ids than the first, and each turn's ids are the same parsed
    whole or streamed, and on every fragment of the stream."""
    oa = adapter("chat_completions")
    history: list[Message] = [Message.user("t")]
    ids = []
    for _ in range(2):
        whole = oa.parse_chat(_response(id_less_call("chatcmpl-7")), ChatRequest("g", list(history)))
        decoder = oa.stream_decoder(ChatRequest("g", list(history), stream=True))
        events = [*decoder.feed(b"".join(id_less_stream("chatcmpl-7").chunks or ())), *decoder.close()]
        streamed = [ev.id for ev in events if ev.type == "tool_call_delta" and ev.id]
        assert streamed == [c.id for c in whole.tool_calls]
        ids.append(whole.tool_calls[0].id)
        history += [whole.to_message(), Message.tool(whole.tool_calls[0].id, "noon")]
    assert ids[0] != ids[1]


def test_the_accumulator_gives_an_id_less_call_one_and_stamps_the_event() -> None:
    """A decoder that leaves a call without an id: the accumulator's id is written on the event,
    so a server relaying the event sends the id the answer records; two answers, two ids."""
    ids = []
    for _ in range(2):
        acc = StreamAccumulator("m", "p")
        first = StreamEvent("tool_call_delta", index=0, name="get_time")
        acc.add(first)
        acc.add(StreamEvent("tool_call_delta", index=0, arguments="{}"))
        [call] = acc.response().tool_calls
        assert first.id == call.id
        ids.append(call.id)
    assert ids[0] != ids[1]


def _response(reply: Reply) -> Any:
    from cloverleaf._http import HttpResponse

    return HttpResponse(reply.status, reply.headers, reply.body)
