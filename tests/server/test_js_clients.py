"""What JavaScript clients send to ``cloverleaf serve``, replayed from captured bodies
(tests/fixtures/js_clients, where each file names the client and version that sent it; CI
has no Node). Each test checks the answer has what that client needs to carry on."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

FIXTURES = Path(__file__).parent.parent / "fixtures" / "js_clients"
AI_SDK_TOOL_LOOP = json.loads((FIXTURES / "ai_sdk_responses_tool_loop.json").read_text())
MODEL = "fake/chat"


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("js")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}))
        try:
            yield server
        finally:
            stop_live(server)


@pytest.fixture(scope="module")
def keys(live: Live) -> tuple[str, str]:
    return (create_key(live, name="js-a", allowed_models=["fake/*"])["key"],
            create_key(live, name="js-b", allowed_models=["fake/*"])["key"])


def _post(live: Live, key: str, call: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    headers = {**call["headers"], "authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return http.post("/v1/responses", content=json.dumps(body), headers=headers)


def _completed(r: httpx.Response) -> dict[str, Any]:
    """The finished Response, from a JSON answer or a stream's ``response.completed``."""
    if not r.headers["content-type"].startswith("text/event-stream"):
        return r.json()  # type: ignore[no-any-return]
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    return next(e["response"] for e in events if e["type"] == "response.completed")  # type: ignore[no-any-return]


def _steps(call: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = (json.loads(body) for body in call["requests"])
    first["model"] = second["model"] = MODEL
    return first, second


def _first_step(live: Live, key: str, call: dict[str, Any], reasoning: str | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 1 as the AI SDK sent it, answered with a sentence and a tool call (what Claude does),
    after ``reasoning`` when given; returns the second step's body with the references the SDK
    would make to step 1's items (by kind, in order), and step 1's message."""
    first, second = _steps(call)
    call_id = next(item["call_id"] for item in second["input"] if item.get("type") == "function_call")
    live.fake.script.reply(text="Let me check.", reasoning=reasoning,
                           tool_calls=[{"id": call_id, "name": "weather", "arguments": {"city": "Paris"}}])
    r = _post(live, key, call, first)
    assert r.status_code == 200, r.text
    output = _completed(r)["output"]
    made = {"rs": [i["id"] for i in output if i["type"] == "reasoning"],
            "msg": [i["id"] for i in output if i["type"] == "message"]}
    for ref in (item for item in second["input"] if item.get("type") == "item_reference"):
        ref["id"] = made[ref["id"].split("_", 1)[0]].pop(0)
    return second, next(item for item in output if item["type"] == "message")


@pytest.mark.parametrize("call", ["generateText", "streamText"])
def test_ai_sdk_tool_loop_item_reference_is_the_stored_message(live: Live, keys: tuple[str, str], call: str) -> None:
    """The AI SDK's ``openai(...)`` provider names an earlier step's message by
    ``item_reference`` (``store`` is on by default): it was a 400, so a tool loop whose model
    said anything before calling a tool failed on its second step."""
    sent = AI_SDK_TOOL_LOOP["calls"][call]
    second, message = _first_step(live, keys[0], sent)
    live.fake.script.reply(text="It is 20 degrees in Paris.")
    r = _post(live, keys[0], sent, second)
    assert r.status_code == 200, r.text
    answer = _completed(r)
    assert answer["status"] == "completed"
    assert answer["output"][-1]["content"][0]["text"] == "It is 20 degrees in Paris."
    upstream = live.fake.requests[-1].json["messages"]
    assistant = next(m for m in upstream if m["role"] == "assistant")
    assert assistant["content"] == "Let me check." and assistant["tool_calls"][0]["function"]["name"] == "weather"
    assert message["content"][0]["text"] == "Let me check."


def test_item_reference_found_in_the_store_past_the_cache(live: Live, keys: tuple[str, str]) -> None:
    """Another worker or replica, or a restart, has not cached the response: the store has it."""
    sent = AI_SDK_TOOL_LOOP["calls"]["generateText"]
    second, message = _first_step(live, keys[0], sent)
    store = live.state.responses
    with store._lock:
        holders = next(rows for (_, item_id), rows in store._items.items() if item_id == message["id"])
    for holder in list(holders):
        store._forget(holder)
    assert all(item_id != message["id"] for _, item_id in store._items)
    live.fake.script.reply(text="done")
    r = _post(live, keys[0], sent, second)
    assert r.status_code == 200, r.text
    assert next(m for m in live.fake.requests[-1].json["messages"] if m["role"] == "assistant")["content"] == (
        "Let me check.")


def test_item_reference_to_nothing_stored_for_the_key_is_a_400(live: Live, keys: tuple[str, str]) -> None:
    sent = AI_SDK_TOOL_LOOP["calls"]["generateText"]
    second, _ = _first_step(live, keys[0], sent)
    for key, body in ((keys[1], second), (keys[0], _unknown_reference(second))):   # another key's; none
        r = _post(live, key, sent, body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "input[1].id" and "send the item itself" in error["message"]


def _unknown_reference(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["input"][1]["id"] = "msg_never_made%_"
    return out


def test_ai_sdk_reasoning_item_reference_is_the_stored_reasoning(live: Live, keys: tuple[str, str]) -> None:
    """A reasoning model's loop: step 2 names step 1's reasoning item and its message."""
    sent = AI_SDK_TOOL_LOOP["calls"]["generateText reasoning"]
    second, _ = _first_step(live, keys[0], sent, reasoning="I should look it up.")
    assert [i.get("type") for i in second["input"]].count("item_reference") == 2
    live.fake.script.reply(text="20 degrees.")
    r = _post(live, keys[0], sent, second)
    assert r.status_code == 200, r.text
    assert _completed(r)["output"][-1]["content"][0]["text"] == "20 degrees."
    assistant = next(m for m in live.fake.requests[-1].json["messages"] if m["role"] == "assistant")
    assert assistant["content"] == "Let me check." and assistant["tool_calls"][0]["id"] == (
        second["input"][3]["call_id"])


def test_another_keys_item_of_the_same_id_does_not_hide_the_keys_own(live: Live, keys: tuple[str, str]) -> None:
    """The cache's index of items was keyed by the item's id alone: once another key sent an
    input item of that id (items sent inline keep their ids), the index named that key's
    response, the owner check refused it, and this key's own reference was a 400."""
    sent = AI_SDK_TOOL_LOOP["calls"]["generateText"]
    second, message = _first_step(live, keys[0], sent)
    live.fake.script.reply(text="noted")
    other = {"model": MODEL, "input": [{**message, "content": [{"type": "output_text", "text": "not yours"}]},
                                       {"role": "user", "content": "go on"}]}
    r = _post(live, keys[1], sent, other)
    assert r.status_code == 200, r.text
    live.fake.script.reply(text="done")
    r = _post(live, keys[0], sent, second)
    assert r.status_code == 200, r.text
    assert next(m for m in live.fake.requests[-1].json["messages"] if m["role"] == "assistant")["content"] == (
        "Let me check.")
