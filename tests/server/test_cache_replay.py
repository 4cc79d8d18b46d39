"""A cached answer streamed to an official SDK client is the stream the upstream would have
sent: a refusal comes back as ``delta.refusal`` with OpenAI's finish reason, a Gemini 3 call
keeps its thought signature (in its id and as ``extra_content``), and an entry that cannot be
replayed is a miss, never an HTTP 500."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live
from .test_gemini_thought_signatures import ASK, CHUNKS, SIGNATURE, TOOLS
from .test_refusal_passthrough import REFUSAL

GEMINI = "gem/gemini-3-pro-preview"


@pytest.fixture(scope="module")
def cache_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache") / "cache.db"


@pytest.fixture(scope="module")
def live(upstream: Upstream, cache_db: Path) -> Iterator[Live]:
    providers = {"up": ProviderSettings("up", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock"),
                 "gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock")}
    server = start_live(settings(providers=providers, cache={"mode": "exact", "url": f"sqlite:///{cache_db}"}))
    yield server
    stop_live(server)


def streamed(live: Live, **kw: Any) -> tuple[str | None, list[Any]]:
    """The cache header and the chunks of a streamed Chat Completions call."""
    with live.openai().chat.completions.with_streaming_response.create(**kw, stream=True) as resp:
        return resp.headers.get("x-cloverleaf-cache"), list(resp.parse())


def stored(cache_db: Path, answer: str) -> list[tuple[str, dict[str, Any]]]:
    """The well-formed entries holding ``answer``, once the server has stored one (it does after
    the response went out)."""
    for _ in range(200):
        with sqlite3.connect(cache_db) as db:
            rows = [(k, json.loads(b)) for k, b in db.execute("SELECT key, blob FROM cache_entries")
                    if answer.encode() in b]
        rows = [(k, doc) for k, doc in rows if doc["response"]["usage"] is not None]
        if rows:
            return rows
        time.sleep(0.05)
    raise AssertionError("the server never stored the answer")


def test_a_cached_refusal_streams_back_as_a_refusal(live: Live, upstream: Upstream, cache_db: Path) -> None:
    """It came back as ordinary content with finish_reason content_filter."""
    upstream.queue(Reply(body=json.dumps(REFUSAL).encode()))
    ask = {"model": "up/gpt-4o", "temperature": 0, "messages": [{"role": "user", "content": "refuse me"}]}
    whole = live.openai().chat.completions.with_raw_response.create(**ask)
    assert whole.headers["x-cloverleaf-cache"] == "miss"
    stored(cache_db, "I can't help with that.")
    how, chunks = streamed(live, **ask)
    assert how == "hit"
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (refusal, content, finishes) == ("I can't help with that.", "", ["stop"])
    assert whole.parse().choices[0].finish_reason == "stop"


def test_a_cached_gemini_call_streams_back_signed(live: Live, upstream: Upstream, cache_db: Path) -> None:
    """A Gemini 3 call cached whole and streamed to the next caller lost its thought signature:
    the client's next turn reached Gemini unsigned, and Gemini refuses that."""
    whole = {**CHUNKS[0], "candidates": [{**CHUNKS[0]["candidates"][0], "finishReason": "STOP"}],
             "usageMetadata": CHUNKS[-1]["usageMetadata"]}
    upstream.queue(Reply(body=json.dumps(whole).encode()))
    ask = {"model": GEMINI, "temperature": 0, "tools": TOOLS, "messages": ASK}
    first = live.openai().chat.completions.create(**ask).choices[0].message.tool_calls
    assert first is not None and "__thsig_" in first[0].id
    stored(cache_db, SIGNATURE[:40])
    how, chunks = streamed(live, **ask)
    [call] = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or () if d.id]
    assert how == "hit" and call.id == first[0].id
    assert call.model_extra.get("extra_content") == {"google": {"thought_signature": SIGNATURE}}


def test_an_entry_that_cannot_be_replayed_is_a_miss_not_a_500(live: Live, upstream: Upstream, cache_db: Path) -> None:
    """It was an HTTP 500 (a TypeError replaying it) on every call until the entry's TTL ran out."""
    answer = {"id": "c2", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Fine."}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    upstream.queue(*(Reply(body=json.dumps(answer).encode()) for _ in range(2)))
    client = live.openai()
    ask = {"model": "up/gpt-4o", "temperature": 0, "messages": [{"role": "user", "content": "damaged entry"}]}
    assert client.chat.completions.with_raw_response.create(**ask).headers["x-cloverleaf-cache"] == "miss"
    with sqlite3.connect(cache_db) as db:
        for key, doc in stored(cache_db, "Fine."):
            doc["response"]["usage"] = None      # e.g. written by a build whose usage was optional
            db.execute("UPDATE cache_entries SET blob = ? WHERE key = ?", (json.dumps(doc).encode(), key))
    again = client.chat.completions.with_raw_response.create(**ask)
    assert again.headers["x-cloverleaf-cache"] == "miss" and again.parse().choices[0].message.content == "Fine."
    stored(cache_db, "Fine.")                    # the new answer took the entry's place
    how, chunks = streamed(live, **ask)
    assert how == "hit" and "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Fine."
