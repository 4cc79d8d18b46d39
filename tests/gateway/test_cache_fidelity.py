"""Every cache hit equals what the upstream said: whatever earlier callers did with their own
copies, whichever way (whole or streamed) the answer was stored and is asked for again, and
never a failed call for an entry that cannot be replayed (a miss, and the entry dropped)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf._config import Settings
from cloverleaf._types import (
    ChatRequest,
    ChatResponse,
    Citation,
    Message,
    Reasoning,
    ResponseMetadata,
    StreamEvent,
    Text,
    ToolCall,
    Usage,
)
from cloverleaf.gateway.cache import CacheHit, ResponseCache, parse_cache
from cloverleaf.gateway.cache.codec import CachedAnswer, MalformedEntry, loads
from cloverleaf.streams.accumulate import StreamAccumulator

from .openai_mock import OpenAIMock
from .redis_support import fresh_prefix, redis_url

MODEL = "mock/gpt-test"
TOOL = {"name": "get_w", "description": "the weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    yield m
    m.close()


def make_client(tmp_path: Path, mock: OpenAIMock, cache: dict[str, Any]) -> cloverleaf.Client:
    s = Settings(providers={"mock": mock.provider()}, cache=cache, env={"MOCK_KEY": "k"}, gateway=True,
                 store={"url": f"sqlite:///{tmp_path / 'calls.db'}"}, max_retries=0)
    return cloverleaf.Client(s)


# --------------------------------------------------------------------------- callers' edits


def test_a_callers_edits_to_its_answer_never_reach_the_memory_cache(tmp_path: Path, mock: OpenAIMock) -> None:
    """An SDK caller owns the response it got: editing it in place (a tool call's arguments, a
    part's text, metadata, usage; a streamed event's usage) changed what the memory cache
    served every later caller."""
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        first = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        upstream_said = (first.tool_calls[0].arguments == {}, first.tool_calls[0].id)
        first.tool_calls[0].arguments["x"] = 999
        first.parts.append(Text("added"))
        first.metadata.headers["x-mine"] = "1"
        second = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        assert second.metadata.extra["cache"] == "hit"
        assert (second.tool_calls[0].arguments == {}, second.tool_calls[0].id) == upstream_said
        assert len(second.parts) == 1 and "x-mine" not in second.metadata.headers
        second.tool_calls[0].arguments["y"] = [1]
        second.tool_calls[0].name = "other"
        second.usage.input_tokens = 12345
        third = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        assert third.tool_calls[0].arguments == {} and third.tool_calls[0].name == "get_w"
        assert third.usage.input_tokens == first.usage.input_tokens == 10

        text = "".join(e.text or "" for e in client.stream(MODEL, "stream me", temperature=0))
        for event in client.stream(MODEL, "stream me", temperature=0):   # a hit: edit what it gave
            if event.usage is not None:
                event.usage.output_tokens = 999
            if event.type == "text" and event.text:
                event.text = "changed"
        again = list(client.stream(MODEL, "stream me", temperature=0))
        assert "".join(e.text or "" for e in again) == text
        assert all(e.usage is None or e.usage.output_tokens != 999 for e in again)
        assert mock.chats == 2


# --------------------------------------------------------------------------- whole <-> streamed

#: Answers with every part kind and every field a response part carries, as providers give them.
ANSWERS = {
    "openai refusal": ChatResponse(
        [Text("I can't help with that.", extra={"refusal": True})], "gpt-4o", "openai", finish_reason="content_filter",
        usage=Usage(9, 6), metadata=ResponseMetadata(response_id="chatcmpl-1", raw_finish_reason="stop",
                                                     extra={"refusal": "I can't help with that."})),
    "anthropic thinking": ChatResponse(
        [Reasoning("Let me think.", signature="sig-1", provider="anthropic"),
         Reasoning("", redacted="opaque-encrypted", provider="anthropic"),
         Text("Paris", citations=[Citation("char_location", "Paris is the capital", 0, "Atlas", 0, 20)]),
         Text(" is the capital.")],
        "claude", "anthropic", finish_reason="stop", usage=Usage(20, 8),
        metadata=ResponseMetadata(response_id="msg_1", raw_finish_reason="end_turn")),
    "gemini signed call": ChatResponse(
        [Reasoning("I should call the tool.", provider="gemini", extra={"thought": True}),
         ToolCall("get_w_0", "get_w", {"city": "Paris"}, raw_arguments='{"city": "Paris"}',
                  extra={"thoughtSignature": "c2lnbmVkIGNhbGw="})],
        "gemini-3-pro", "gemini", finish_reason="tool_calls", usage=Usage(11, 5),
        metadata=ResponseMetadata(raw_finish_reason="STOP")),
    "responses items": ChatResponse(
        [Reasoning("", signature=None, redacted="enc-1", provider="openai",
                   extra={"reasoning_details": [{"type": "reasoning.encrypted", "index": 0}]}),
         Text("Calling.", extra={"item_id": "msg_1", "phase": "commentary"}),
         ToolCall("call_1", "get_w", {}, raw_arguments="", extra={"item_id": "fc_1"})],
        "gpt-5", "openai", finish_reason="tool_calls", usage=Usage(30, 12),
        metadata=ResponseMetadata(response_id="resp_1", raw_finish_reason="completed")),
}
#: Fields of a part only a request sets (a prompt-cache mark): no answer carries them.
REQUEST_ONLY = {"cache_control"}


def test_the_samples_set_every_field_an_answer_part_has() -> None:
    """A field added to a part must be added to a sample above, so a replay cannot lose it silently."""
    for kind in (Text, Reasoning, ToolCall):
        default = {f.name: f.default for f in dataclasses.fields(kind)}
        unset = {name for name in default if name not in REQUEST_ONLY and not any(
            getattr(p, name) not in (None, "", default[name]) for a in ANSWERS.values() for p in a.parts
            if isinstance(p, kind))}
        assert not unset, f"no sample answer sets {kind.__name__}.{', '.join(sorted(unset))}"


def live_events(resp: ChatResponse) -> list[StreamEvent]:
    """Events a provider's stream decoder would have given for ``resp`` (each part's fields on
    its events, the refusal and finish on ``done``), written here, apart from the code tested."""
    out: list[StreamEvent] = []
    for i, part in enumerate(resp.parts):
        if isinstance(part, Reasoning):
            out.append(StreamEvent("reasoning", text=part.text, extra=part.extra))
            out.append(StreamEvent("reasoning", signature=part.signature, redacted=part.redacted))
        elif isinstance(part, Text):
            out += [StreamEvent("citation", index=i, citation=c) for c in part.citations or ()]
            out.append(StreamEvent("text", text=part.text, index=i, extra=part.extra))
        elif isinstance(part, ToolCall):
            out.append(StreamEvent("tool_call_delta", index=i, id=part.id, name=part.name, extra=part.extra))
            out.append(StreamEvent("tool_call_delta", index=i, arguments=part.raw_arguments))
    extra = {"refusal": resp.refusal} if resp.refusal else None
    return [*out, StreamEvent("usage", usage=dataclasses.replace(resp.usage)),
            StreamEvent("done", finish_reason=resp.finish_reason, raw_finish_reason=resp.metadata.raw_finish_reason,
                        model=resp.model, id=resp.metadata.response_id, extra=extra)]


def accumulated(events: list[StreamEvent], resp: ChatResponse) -> ChatResponse:
    """What a client that assembles the streamed events itself ends up with."""
    acc = StreamAccumulator(resp.model, resp.provider)
    for event in events:
        acc.add(dataclasses.replace(event, response=None))
    return acc.response()


def backend_cache(tmp_path: Path, url: str) -> ResponseCache:
    return ResponseCache(parse_cache({"mode": "exact", "url": url}), engine=None)


async def round_trip(cache: ResponseCache, resp: ChatResponse, events: list[StreamEvent] | None,
                     stream: bool) -> CacheHit:
    plan = cache.plan(MODEL, ChatRequest(model="", messages=[Message.user("q")], temperature=0), None, "k")
    assert plan is not None
    await cache.store(plan, resp, events)
    hit = await cache.lookup(plan, stream=stream)
    assert hit is not None
    return hit


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_answer_stored_whole_streams_back_as_the_upstream_would_have(tmp_path: Path, name: str,
                                                                        backend: str) -> None:
    """A refusal's mark, a reasoning part's signature, redacted data and extras, a Gemini call's
    thought signature, a Responses item id: all reach the replayed stream's events, so a client
    assembling them gets the answer the upstream gave, finish reason and refusal included."""
    resp = ANSWERS[name]
    url = "memory" if backend == "memory" else f"sqlite:///{tmp_path / 'c.db'}"

    async def run() -> None:
        cache = backend_cache(tmp_path, url)
        try:
            hit = await round_trip(cache, resp, None, stream=True)
            assert hit.events is not None and hit.events[-1].response is hit.response
            streamed = accumulated(hit.events, resp)
            assert streamed.parts == resp.parts
            assert (streamed.finish_reason, streamed.metadata.raw_finish_reason, streamed.metadata.response_id) == (
                resp.finish_reason, resp.metadata.raw_finish_reason, resp.metadata.response_id)
            assert streamed.refusal == resp.refusal and streamed.usage == resp.usage
            assert hit.response.parts == resp.parts
        finally:
            await cache.aclose()

    asyncio.run(run())


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_answer_stored_from_a_stream_comes_back_whole_and_streamed(tmp_path: Path, name: str,
                                                                      backend: str) -> None:
    """The reverse: a streamed answer (its events and the response assembled from them) is
    served whole with every part as it was, and streamed again with the same events."""
    live = ANSWERS[name]
    url = "memory" if backend == "memory" else f"sqlite:///{tmp_path / 'c.db'}"

    async def run() -> None:
        kept = live_events(live)
        assembled = accumulated(kept, live)
        assert assembled.parts == live.parts     # the events above are a faithful stream of it
        cache = backend_cache(tmp_path, url)
        try:
            whole = await round_trip(cache, assembled, kept, stream=False)
            assert whole.response.parts == live.parts and whole.response.refusal == live.refusal
            again = await round_trip(cache, assembled, kept, stream=True)
            assert again.events is not None and accumulated(again.events, live).parts == live.parts
        finally:
            await cache.aclose()

    asyncio.run(run())


# --------------------------------------------------------------------------- malformed entries

DAMAGE = {
    "usage null": lambda doc: doc["response"].__setitem__("usage", None),
    "parts null": lambda doc: doc["response"].__setitem__("parts", None),
    "a part's text a number": lambda doc: doc["response"]["parts"][0].__setitem__("text", 5),
    "events not a list": lambda doc: doc.__setitem__("events", {"a": 1}),
    "an event's text a number": lambda doc: doc.__setitem__("events", [{"__t": "StreamEvent", "type": "text",
                                                                         "text": 5}]),
    "response a string": lambda doc: doc.__setitem__("response", "hello"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_codec_refuses_an_entry_not_shaped_as_an_answer(damage: str) -> None:
    from cloverleaf.gateway.cache.codec import dumps

    doc = json.loads(dumps(CachedAnswer(ChatResponse([Text("hi")], "m", "p"), [StreamEvent("text", text="hi")])))
    DAMAGE[damage](doc)
    with pytest.raises(MalformedEntry):
        loads(json.dumps(doc))


def damaged(blob: bytes) -> bytes:
    doc = json.loads(blob)
    doc["response"]["usage"] = None      # e.g. written by a build whose usage was optional
    return json.dumps(doc).encode()


class Store:
    """Where one backend's entries are, to damage them in place."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.kind = backend
        self.prefix = fresh_prefix()
        self.url = {"memory": "memory", "sqlite": f"sqlite:///{tmp_path / 'cache.db'}"}.get(backend) or redis_url()

    def cache(self) -> dict[str, Any]:
        return {"mode": "exact", "url": self.url, "prefix": self.prefix}

    def damage(self, client: cloverleaf.Client) -> None:
        if self.kind == "memory":
            backend = client.gateway.cache.backend
            for key, (expires, answer) in list(backend._entries.items()):
                backend._entries[key] = (expires, dataclasses.replace(answer, response=dataclasses.replace(
                    answer.response, usage=None)))
        elif self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as db:
                for key, blob in db.execute("SELECT key, blob FROM cache_entries").fetchall():
                    db.execute("UPDATE cache_entries SET blob = ? WHERE key = ?", (damaged(blob), key))
        else:
            import redis

            r = redis.Redis.from_url(self.url)
            for key in r.scan_iter(match=self.prefix + "e:*"):
                r.set(key, damaged(r.get(key)), keepttl=True)
            r.close()

    def cleanup(self) -> None:
        if self.kind == "redis":
            import redis

            r = redis.Redis.from_url(self.url)
            for key in r.scan_iter(match=self.prefix + "*"):
                r.delete(key)
            r.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
@pytest.mark.parametrize("stream", [False, True])
def test_an_entry_that_cannot_be_replayed_is_a_miss_and_is_dropped(tmp_path: Path, mock: OpenAIMock,
                                                                   caplog: pytest.LogCaptureFixture, backend: str,
                                                                   stream: bool) -> None:
    """An entry that decodes but is not a well-formed answer failed every call that asked
    (a TypeError; HTTP 500 through the server) until its TTL ran out. Now the provider answers,
    the entry is replaced by that answer, and one warning says so, without the prompt."""
    store = Store(backend, tmp_path)
    prompt = "my secret question"

    def ask(client: cloverleaf.Client) -> tuple[str, str | None]:
        if stream:
            events = list(client.stream(MODEL, prompt, temperature=0))
            resp = events[-1].response
            assert resp is not None
            return "".join(e.text or "" for e in events), resp.metadata.extra.get("cache")
        resp = client.chat(MODEL, prompt, temperature=0)
        return resp.content, resp.metadata.extra.get("cache")

    try:
        with make_client(tmp_path, mock, store.cache()) as client:
            first, _ = ask(client)
            store.damage(client)
            with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway.cache"):
                second, how = ask(client)
            assert (how, mock.chats) == ("miss", 2) and second.startswith("answer 2 to:")
            assert ask(client) == (second, "hit") and mock.chats == 2    # the new answer took its place
    finally:
        store.cleanup()
    said = [r.getMessage() for r in caplog.records if r.name == "cloverleaf.gateway.cache"]
    assert len(said) == 1 and "could not be replayed" in said[0] and prompt not in said[0], said
    assert first.startswith("answer 1 to:")
