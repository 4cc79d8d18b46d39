"""``openai-responses/...`` targets: OpenAI's own answer relayed unchanged but for the model
name (recorded traffic replayed by a stand-in on 127.0.0.1), built-in tools passed upstream,
and ``previous_response_id`` handled by the gateway across providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from cloverleaf._config import ProviderSettings
from tests.wire import cassette

from .conftest import Live, settings, start_live, stop_live
from .replay import Replay

R = "pydantic-ai/tests/models/cassettes/test_openai_responses/"
STREAM = R + "test_openai_responses_thinking_part_iter.yaml"
WHOLE = R + "test_openai_responses_model_simple_response.yaml"
OTHER = R + "test_openai_responses_system_prompt.yaml"


@contextmanager
def _relay(**more: Any) -> Iterator[tuple[Live, Replay]]:
    replay = Replay()
    s = settings(env={"OPENAI_API_KEY": "sk-test"},
                 providers={"openai-responses": ProviderSettings("openai-responses",
                                                                 base_url=f"{replay.url}/openai")},
                 routes={"gpt": {"targets": ["openai-responses/gpt-5"]}}, **more)
    live = start_live(s)
    try:
        yield live, replay
    finally:
        stop_live(live)
        replay.close()


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[Live, Replay]]:
    with _relay() as pair:
        yield pair


def _sse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def _renamed(event: dict[str, Any], model: str) -> dict[str, Any]:
    if isinstance(event.get("response"), dict):
        event = {**event, "response": {**event["response"], "model": model, "previous_response_id": None}}
    return event


def test_stream_events_reach_the_client_unchanged_but_for_the_model(relay: tuple[Live, Replay]) -> None:
    live, replay = relay
    replay.load("openai", STREAM)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "gpt", "input": "How do I cross the street?", "stream": True,
                                             "reasoning": {"effort": "low", "summary": "auto"}})
    assert r.status_code == 200
    upstream = _sse(cassette(STREAM)[0].response.body.decode())
    assert _sse(r.text) == [_renamed(e, "gpt") for e in upstream]
    final = upstream[-1]["response"]
    with httpx.Client(base_url=live.url, timeout=30) as http:
        stored = http.get(f"/v1/responses/{final['id']}").json()
    assert stored == _renamed(upstream[-1], "gpt")["response"]


def test_whole_answer_relayed_and_builtin_tools_go_upstream(relay: tuple[Live, Replay]) -> None:
    live, replay = relay
    replay.load("openai", WHOLE)
    tools = [{"type": "web_search", "search_context_size": "low"},
             {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}, "strict": False}]
    r = live.openai().responses.with_raw_response.create(model="gpt", input="What is the capital of France?",
                                                         tools=tools)  # type: ignore[arg-type]
    recorded = cassette(WHOLE)[0].response.json()
    assert r.http_response.json() == {**recorded, "model": "gpt", "previous_response_id": None}
    sent = replay.received["openai"][-1]
    assert sent["tools"] == tools and "previous_response_id" not in sent


def test_previous_response_id_across_providers(relay: tuple[Live, Replay]) -> None:
    """Begun on the fake provider, continued on OpenAI's Responses API, and back: each
    provider gets the whole conversation from the gateway's store."""
    live, replay = relay
    client = live.openai()
    first = client.responses.create(model="fake/echo", input="Remember the word kiwi.")
    replay.load("openai", OTHER)
    second = client.responses.create(model="gpt", input="What is the capital of France?",
                                     previous_response_id=first.id)
    sent = replay.received["openai"][-1]
    assert "previous_response_id" not in sent
    assert json.dumps(sent["input"]).count("kiwi") == 2  # the user turn and the echo answer
    assert second.previous_response_id == first.id and second.output_text
    third = client.responses.create(model="fake/echo", input="And the word?", previous_response_id=second.id)
    assert third.output_text == "And the word?"
    history = live.fake.requests[-1].json["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant", "user"]
    assert history[3]["content"] == second.output_text


def test_a_reused_upstream_id_is_not_stored_twice(relay: tuple[Live, Replay]) -> None:
    live, replay = relay
    replay.queues["openai"] = [cassette(STREAM)[0].response]  # the id the first test stored
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "gpt", "input": "again", "stream": True})
    last = _sse(r.text)[-1]
    assert last["type"] == "error" and last["code"] == "duplicate_response_id"
    assert "response.completed" not in [e["type"] for e in _sse(r.text)], "never completed unless stored"


def test_builtin_tool_on_another_provider_is_400(relay: tuple[Live, Replay]) -> None:
    live, _ = relay
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "fake/echo", "input": "x", "tools": [{"type": "web_search"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools[0].type"


def test_an_answer_without_openais_copy_is_rendered_by_the_gateway() -> None:
    """A relayed route whose answer comes without the upstream's own events (a cache hit
    replays neutral events): the gateway's own encoder renders it, completed and valid."""
    from cloverleaf._types import StreamEvent, Usage
    from cloverleaf.server.responses.passthrough import PassthroughEncoder
    from cloverleaf.server.responses.stream import ResponsesStreamEncoder
    from cloverleaf.server.responses.wire import parse_request
    from tests.translation.harness import fold_responses, validate_responses_event

    req = parse_request({"model": "gpt", "input": "hi"})
    enc = PassthroughEncoder(req, ResponsesStreamEncoder(req, response_id="resp_1", model="gpt", created_at=1))
    raw = enc.start()
    for ev in (StreamEvent("usage", usage=Usage(3, 2)), StreamEvent("text", text="cached answer"),
               StreamEvent("done", finish_reason="stop")):
        raw += enc.encode(ev) or b""
    final = enc.complete(2)
    raw += enc.finish()
    events = _sse(raw.decode())
    for event in events:
        validate_responses_event(event)
    assert fold_responses(events) == final and final["output"][0]["content"][0]["text"] == "cached answer"
    assert enc.usage.input_tokens == 3 and final["usage"]["input_tokens"] == 3


WITH_ITEMS = R + "test_openai_responses_image_url_input.yaml"
STREAM_WITH_ITEMS = R + "test_openai_responses_streaming_usage.yaml"
#: what an agent that keeps its own history sends back after a web search and a computer action
BUILTIN_INPUT: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer in French."},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Find the capital, then look."}]},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "capital of France"}},
    {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
     "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]},
    {"type": "computer_call", "id": "cu_1", "call_id": "call_1", "status": "completed",
     "action": {"type": "screenshot"}, "pending_safety_checks": []},
    {"type": "computer_call_output", "call_id": "call_1",
     "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,iVBORw0KGgo="}},
]


def test_builtin_items_in_input_reach_openai_verbatim_after_the_rebuilt_history(relay: tuple[Live, Replay]) -> None:
    """The Agents SDK sends every earlier output item back: built-in tool items go upstream
    exactly as sent and in their place, after the history the gateway rebuilt, and only this
    request's instructions go as ``instructions``; ``input_items`` lists them as sent."""
    live, replay = relay
    client = live.openai()
    first = client.responses.create(model="fake/echo", input="Remember the word kiwi.")
    replay.load("openai", WITH_ITEMS)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "gpt", "input": BUILTIN_INPUT, "instructions": "Be brief.",
                                             "previous_response_id": first.id})
    assert r.status_code == 200, r.text
    recorded = cassette(WITH_ITEMS)[0].response.json()
    assert r.json() == {**recorded, "model": "gpt", "previous_response_id": first.id}
    sent = replay.received["openai"][-1]
    assert sent["input"] == [{"role": "user", "content": "Remember the word kiwi."},
                             {"role": "assistant", "content": "Remember the word kiwi."}, *BUILTIN_INPUT]
    assert sent["instructions"] == "Be brief." and "previous_response_id" not in sent

    assert client.responses.input_items.list(recorded["id"]).data  # the official SDK reads the listing
    with httpx.Client(base_url=live.url, timeout=30) as http:
        listed = http.get(f"/v1/responses/{recorded['id']}/input_items", params={"order": "asc"}).json()
    mine = [item for item in listed["data"] if item["type"] in ("web_search_call", "computer_call",
                                                               "computer_call_output")]
    sent_builtin = BUILTIN_INPUT[2:3] + BUILTIN_INPUT[4:]
    assert mine == [*sent_builtin[:-1], {**sent_builtin[-1], "id": mine[-1]["id"]}]  # as sent, given an id
    assert mine[-1]["id"].startswith("item_") and [item["type"] for item in listed["data"]][-4:] == \
        ["web_search_call", "message", "computer_call", "computer_call_output"]


def test_builtin_items_in_a_streamed_request_reach_openai_verbatim(relay: tuple[Live, Replay]) -> None:
    live, replay = relay
    replay.load("openai", STREAM_WITH_ITEMS)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "gpt", "input": BUILTIN_INPUT, "stream": True})
    assert r.status_code == 200
    upstream = _sse(cassette(STREAM_WITH_ITEMS)[0].response.body.decode())
    assert _sse(r.text) == [_renamed(e, "gpt") for e in upstream]
    sent = replay.received["openai"][-1]
    assert sent["input"] == BUILTIN_INPUT and sent["stream"] is True
    assert sent["instructions"] is None  # the developer message stays in input, not folded in twice


def test_builtin_item_on_another_provider_is_400(relay: tuple[Live, Replay]) -> None:
    live, _ = relay
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "fake/echo", "input": BUILTIN_INPUT})
        not_an_object = http.post("/v1/responses", json={"model": "gpt", "input": ["x", {"type": 3}]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "input[2].type" and "web_search_call" in error["message"]
    assert "openai-responses/" in error["message"]
    assert not_an_object.status_code == 400 and not_an_object.json()["error"]["param"] == "input[0]"


@pytest.fixture
def fresh_relay() -> Iterator[tuple[Live, Replay]]:
    """A relay whose store has seen none of the recordings (each holds a fixed response id)."""
    with _relay() as pair:
        yield pair


def test_a_later_turn_sends_the_historys_builtin_items_back_in_place(fresh_relay: tuple[Live, Replay]) -> None:
    """The gateway, not OpenAI, keeps the conversation (``previous_response_id`` never goes
    upstream), so a later turn must send the earlier built-in items itself: a
    ``computer_call_output`` without its ``computer_call`` before it, or a reasoning item
    without what followed it, is a 400 at OpenAI. Built-in items go back as they were sent,
    less the ids the gateway gave them; another provider continuing the same conversation gets
    the neutral history, where built-in calls are left out."""
    live, replay = fresh_relay
    replay.load("openai", WITH_ITEMS)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        first = http.post("/v1/responses", json={"model": "gpt", "input": BUILTIN_INPUT})
        assert first.status_code == 200, first.text
        replay.load("openai", WHOLE)
        second = http.post("/v1/responses", json={"model": "gpt", "input": "And now?",
                                                  "previous_response_id": first.json()["id"]})
        assert second.status_code == 200, second.text
        elsewhere = http.post("/v1/responses", json={"model": "fake/echo", "input": "And elsewhere?",
                                                     "previous_response_id": first.json()["id"]})
    sent = replay.received["openai"][-1]["input"]
    builtin = [item for item in sent if item.get("type") in ("web_search_call", "computer_call",
                                                              "computer_call_output")]
    assert builtin == [BUILTIN_INPUT[2], BUILTIN_INPUT[4], BUILTIN_INPUT[5]]   # verbatim: no gateway id
    kinds = [item.get("type", "message") for item in sent]
    assert kinds.index("web_search_call") < kinds.index("computer_call") < kinds.index("computer_call_output")
    assert sent[kinds.index("web_search_call") + 1]["content"] == "Paris."  # the answer after the search
    answer = cassette(WITH_ITEMS)[0].response.json()["output"][-1]["content"][0]["text"]
    assert sent[-2:] == [{"role": "assistant", "content": answer}, {"role": "user", "content": "And now?"}]
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.json()["output"][0]["content"][0]["text"] == "And elsewhere?"


def test_a_cached_answer_is_a_response_of_its_own() -> None:
    """With the response cache on, a repeated question is answered from it, not relayed: the
    hit is rendered by the gateway under a fresh id and stored as such (replaying OpenAI's
    id, already stored by the first call, was a 502 on every hit), streamed or not."""
    with _relay(cache={"mode": "exact"}) as (live, replay):
        client = live.openai()
        for recording, stream in ((WHOLE, False), (STREAM, True)):
            replay.load("openai", recording)       # one answer: a hit that reached OpenAI would be a 500
            question = f"What is the capital of France? (stream={stream})"
            ids, texts = [], []
            for expected in ("miss", "hit"):
                if stream:
                    with client.responses.with_streaming_response.create(
                            model="gpt", input=question, temperature=0, stream=True) as r:
                        assert r.headers["x-cloverleaf-cache"] == expected
                        done = [e for e in r.parse() if e.type == "response.completed"]
                    final = done[0].response
                else:
                    raw = client.responses.with_raw_response.create(model="gpt", input=question, temperature=0)
                    assert raw.headers["x-cloverleaf-cache"] == expected
                    final = raw.parse()
                ids.append(final.id)
                texts.append(final.output_text)
                assert client.responses.retrieve(final.id).output_text == final.output_text   # stored
            body = cassette(recording)[0].response
            relayed = _sse(body.body.decode())[-1]["response"] if stream else body.json()
            assert len(replay.received["openai"]) == 1 and ids[0] == relayed["id"]   # the miss: OpenAI's own
            assert ids[1] != ids[0] and ids[1].startswith("resp_") and texts[1] == texts[0] and texts[0]
