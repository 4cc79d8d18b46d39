"""The Responses API live, through the official ``openai`` SDK: create / stream / retrieve /
delete / input_items, conversation state on the store (SQLite and PostgreSQL), per-key scoping,
retention, built-in tools refused. The provider is the offline fake (an OpenAI Chat
Completions upstream), so every answer here went through a translation."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from cloverleaf._config import ModelEntry
from cloverleaf.server.options import ServerOptions
from tests.gateway.stores import STORE_KINDS, store_url
from tests.translation.harness import validate_responses_event

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live
from .openai_schema import validate

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
SHORT_LIVED = ModelEntry(name="short-lived", identifier="echo", provider="fake", data_retention_days=2)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


#: State tests run on both stores; translation-only tests once, on SQLite.
SQLITE_ONLY = pytest.mark.parametrize("live", ["sqlite"], indirect=True)


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("responses")) as url:
        s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url, "data_retention_days": 30},
                     models=[SHORT_LIVED])
        server = start_live(s, ServerOptions.from_settings({}, s.env))
        try:
            yield server
        finally:
            stop_live(server)


@pytest.fixture(scope="module")
def keys(live: Live) -> tuple[str, str]:
    return (create_key(live, name="alice", allowed_models=["fake/*", "short-lived"])["key"],
            create_key(live, name="bob", allowed_models=["fake/*"])["key"])


def _upstream_messages(live: Live) -> list[dict[str, Any]]:
    """The Chat Completions messages the fake provider received last."""
    return live.fake.requests[-1].json["messages"]  # type: ignore[no-any-return]


def test_create_retrieve_input_items_delete(live: Live, keys: tuple[str, str]) -> None:
    client = live.openai(keys[0])
    raw = client.responses.with_raw_response.create(
        model="fake/echo", input="hello there", instructions="be brief", metadata={"ticket": "42"},
        max_output_tokens=200, temperature=0.5)
    body = raw.http_response.json()
    validate("Response", body)
    r = raw.parse()
    assert (r.status, r.output_text, r.model, r.instructions, r.metadata) == (
        "completed", "hello there", "fake/echo", "be brief", {"ticket": "42"})
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.total_tokens == (
        r.usage.input_tokens + r.usage.output_tokens)
    assert _upstream_messages(live)[0] == {"role": "system", "content": "be brief"}

    again = client.responses.retrieve(r.id)
    assert again.model_dump() == r.model_dump()
    items = client.responses.input_items.list(r.id)
    validate("ResponseItemList", items.model_dump(mode="json", exclude_unset=True))
    assert [(i.type, i.role) for i in items.data] == [("message", "user")]  # type: ignore[union-attr]

    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_stream_event_sequence_and_immediate_continuation(live: Live, keys: tuple[str, str]) -> None:
    """A continuation sent the instant ``response.completed`` arrives finds the response (it is
    stored before that event is written), and the provider receives the whole conversation."""
    client = live.openai(keys[0])
    live.fake.script.reply("The weather is fine.", reasoning="Let me think.",
                           usage={"prompt_tokens": 40, "completion_tokens": 12, "cached_tokens": 30,
                                  "reasoning_tokens": 4})
    types, sequence = [], []
    with client.responses.stream(model="fake/echo", input="How is the weather?") as stream:
        for event in stream:
            types.append(event.type)
            sequence.append(event.sequence_number)
            validate_responses_event(event.model_dump(mode="json", exclude_unset=True, warnings=False))
            if event.type == "response.completed":
                follow = client.responses.create(model="fake/echo", input="And tomorrow?",
                                                 previous_response_id=event.response.id)
        final = stream.get_final_response()
    assert sequence == list(range(len(types)))
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    for kind in ("response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
                 "response.content_part.added", "response.output_text.delta", "response.output_text.done",
                 "response.output_item.done"):
        assert kind in types
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output_text == "The weather is fine."
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 30
    assert final.usage.output_tokens_details.reasoning_tokens == 4
    assert follow.previous_response_id == final.id and follow.output_text == "And tomorrow?"
    sent = _upstream_messages(live)
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "The weather is fine."
    context = client.responses.input_items.list(follow.id, order="asc").data
    assert [i.type for i in context] == ["message", "reasoning", "message", "message"]
    assert context[1].summary[0].text == "Let me think."  # type: ignore[union-attr]
    assert client.responses.retrieve(final.id).output_text == final.output_text


@SQLITE_ONLY
def test_tool_call_and_result_across_turns(live: Live, keys: tuple[str, str]) -> None:
    client = live.openai(keys[0])
    first = client.responses.create(model="fake/echo", input="Weather in Paris?", tools=[WEATHER],
                                    tool_choice={"type": "function", "name": "get_weather"})
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather" and '"city"' in call.arguments
    second = client.responses.create(
        model="fake/echo", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.status == "completed"
    sent = _upstream_messages(live)
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
    listed = client.responses.input_items.list(second.id, order="asc")
    assert [i.type for i in listed.data] == ["message", "function_call", "function_call_output"]


@SQLITE_ONLY
def test_attachments_are_part_of_the_rebuilt_history(live: Live, keys: tuple[str, str]) -> None:
    client = live.openai(keys[0])
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    first = client.responses.create(model="fake/echo", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"}, {"type": "input_image", "image_url": data_url}]}])
    client.responses.create(model="fake/echo", input="and its colour?", previous_response_id=first.id)
    sent = _upstream_messages(live)
    image = sent[0]["content"][1]
    assert image["type"] == "image_url" and base64.b64encode(PNG).decode() in image["image_url"]["url"]


@SQLITE_ONLY
def test_json_schema_output(live: Live, keys: tuple[str, str]) -> None:
    import json

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    r = live.openai(keys[0]).responses.create(
        model="fake/echo", input="a city", text={"format": {"type": "json_schema", "name": "city",
                                                             "schema": schema, "strict": True}})
    value = json.loads(r.output_text)
    assert set(value) == {"city", "population"}
    assert live.fake.requests[-1].json["response_format"]["json_schema"]["schema"] == schema
    assert r.text.format.type == "json_schema"  # type: ignore[union-attr]


@SQLITE_ONLY
def test_max_output_tokens_cut_is_incomplete(live: Live, keys: tuple[str, str]) -> None:
    live.fake.script.reply("a long answer cut short", finish_reason="length")
    r = live.openai(keys[0]).responses.create(model="fake/echo", input="go on", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[-1].status == "incomplete"  # the item the cut answer was writing, as OpenAI marks it
    sent = live.fake.requests[-1].json
    assert 16 in (sent.get("max_completion_tokens"), sent.get("max_tokens"))
    live.fake.script.reply("a long answer cut short", finish_reason="length")
    with live.openai(keys[0]).responses.stream(model="fake/echo", input="go on", max_output_tokens=16) as stream:
        done = [ev.item for ev in stream if ev.type == "response.output_item.done"]
    assert done[-1].status == "incomplete"


def test_another_key_gets_404(live: Live, keys: tuple[str, str]) -> None:
    alice, bob = live.openai(keys[0]), live.openai(keys[1])
    r = alice.responses.create(model="fake/echo", input="private")
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.input_items.list(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="fake/echo", input="x", previous_response_id=r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        live.openai(MASTER).responses.retrieve(r.id)
    assert alice.responses.retrieve(r.id).id == r.id


def test_cancel_says_only_background_responses_can_be(live: Live, keys: tuple[str, str]) -> None:
    """The SDK's ``responses.cancel``: a stored response is a 400 naming the reason (the gateway
    runs no background responses), not a 404 as though it did not exist; another key's is a 404."""
    alice, bob = live.openai(keys[0]), live.openai(keys[1])
    r = alice.responses.create(model="fake/echo", input="done already")
    with pytest.raises(openai.BadRequestError) as info:
        alice.responses.cancel(r.id)
    assert "background" in info.value.message and info.value.body["param"] == "response_id"  # type: ignore[index]
    assert alice.responses.retrieve(r.id).status == "completed"
    with pytest.raises(openai.NotFoundError):
        bob.responses.cancel(r.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.cancel("resp_never_made")


def test_store_false_is_not_kept(live: Live, keys: tuple[str, str]) -> None:
    client = live.openai(keys[0])
    r = client.responses.create(model="fake/echo", input="forget me", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="fake/echo", input="x", previous_response_id=r.id)
    assert info.value.body["code"] == "previous_response_not_found"  # type: ignore[index]


def test_retention_follows_the_entry_then_the_store(live: Live, keys: tuple[str, str]) -> None:
    client = live.openai(keys[0])
    short = client.responses.create(model="short-lived", input="soon gone")
    kept = client.responses.create(model="fake/echo", input="kept longer")
    store = live.state.responses
    now = time.time()
    rows = {r: store._select(r) for r in (short.id, kept.id)}  # what the database holds
    assert rows[short.id].expires_at == pytest.approx(now + 2 * 86400, abs=120)
    assert rows[kept.id].expires_at == pytest.approx(now + 30 * 86400, abs=120)
    assert store.purge_expired(now + 3 * 86400) >= 1
    store._forget(short.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(short.id)
    assert client.responses.retrieve(kept.id).id == kept.id


@SQLITE_ONLY
def test_builtin_tools_are_a_clear_400(live: Live, keys: tuple[str, str]) -> None:
    for tool in ({"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
                 {"type": "computer_use_preview", "display_width": 800, "display_height": 600,
                  "environment": "browser"}):
        with pytest.raises(openai.BadRequestError) as info:
            live.openai(keys[0]).responses.create(model="fake/echo", input="search", tools=[WEATHER, tool])
        body = info.value.body
        assert body["param"] == "tools[1].type" and "openai-responses" in body["message"]  # type: ignore[index]


@SQLITE_ONLY
@pytest.mark.parametrize("body, param", [
    ({"model": "fake/echo"}, "input"),
    ({"model": "fake/echo", "input": []}, "input"),
    ({"model": "fake/echo", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].id"),
    ({"model": "fake/echo", "input": [{"role": "user", "content": [{"type": "input_image",
                                                                    "image_url": "file:///etc/passwd"}]}]},
     "input[0].content[0].image_url"),
    ({"model": "fake/echo", "input": "x", "background": True}, "background"),
    ({"model": "fake/echo", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "fake/echo", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "fake/echo", "input": "x", "colour": "red"}, "colour"),
    ({"model": "fake/echo", "input": "x", "instruction": "Answer in French"}, "instruction"),
    ({"model": "fake/echo", "input": "x", "max_output_token": 5}, "max_output_token"),
    ({"model": "fake/echo", "input": "x", "context_management": [{"type": "compaction"}]}, "context_management"),
    ({"model": "fake/echo", "input": "x", "include": 42}, "include"),
    ({"model": "fake/echo", "input": "x", "include": [42]}, "include[0]"),
    ({"model": "fake/echo", "input": "x", "service_tier": 1}, "service_tier"),
])
def test_bad_requests_name_the_field(live: Live, body: dict[str, Any], param: str) -> None:
    with httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        r = http.post("/v1/responses", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    if param in ("colour", "instruction", "max_output_token"):  # a typo is never silently dropped
        assert r.json()["error"]["code"] == "unknown_field"


@SQLITE_ONLY
def test_fields_documented_as_ignored_are_accepted(live: Live, keys: tuple[str, str]) -> None:
    """What the official SDK, the Agents SDK and Codex send in normal use is not refused."""
    r = live.openai(keys[0]).responses.create(
        model="fake/echo", input="hi", include=["reasoning.encrypted_content"], service_tier="auto",
        prompt_cache_key="thread-1", prompt_cache_retention="24h", max_tool_calls=4, truncation="auto",
        top_logprobs=0, text={"verbosity": "low"}, extra_body={"client_metadata": {"x": "1"}})
    assert r.status == "completed"


@SQLITE_ONLY
def test_error_mid_stream_is_response_failed(live: Live, keys: tuple[str, str]) -> None:
    with httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {keys[0]}"}, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "fake/echo+reset-after-3", "input": "one two three four "
                                             "five six seven eight nine ten", "stream": True})
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    import json

    last = json.loads(events[-1])
    validate_responses_event(last)
    assert last["type"] == "response.failed" and last["response"]["error"]["code"] == "server_error"
    # the message the failure cut short is not reported as whole
    done = [json.loads(e)["item"] for e in events if json.loads(e)["type"] == "response.output_item.done"]
    assert [item["status"] for item in done] == ["incomplete"]
    assert [item["status"] for item in last["response"]["output"]] == ["incomplete"]


def test_expired_responses_are_purged_by_the_stores_cleanup_never_by_a_save(live: Live, keys: tuple[str, str]) -> None:
    """A save only inserts: the purge runs on the gateway's cleanup thread, so a slow or failing
    purge (a backlog, a row another transaction holds) cannot turn a committed save into a 503."""
    client = live.openai(keys[0])
    old = client.responses.create(model="short-lived", input="soon gone")
    store = live.state.responses
    later = time.time() + 3 * 86400
    store._wall = lambda: later            # every save from now on sees the first response expired
    client.responses.create(model="fake/echo", input="a save after its expiry")
    assert store._select(old.id) is not None                      # the request deleted nothing
    live.state.backend.store.cleanup(later, None)                 # the hourly chore does
    assert store._select(old.id) is None
