"""A NUL character (``\\u0000``, which JSON allows) in client text that reaches a stored text
column: PostgreSQL refuses NUL in text, so such a call's record was dropped after the provider
had been called (its tokens and cost lost to spend and traces), and ``/v1/responses`` answered
500. ``model`` is refused with a 400 naming it on every endpoint (no model is named so); any
other client string is either refused with a 400 or its record is kept, with the NUL written as
U+FFFD — never a 500, never a lost record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Live, settings, start_live, stop_live

pytestmark = pytest.mark.postgres

ANTHROPIC = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def pg_live() -> Iterator[Live]:
    from ..gateway.stores import fresh_postgres_database

    with fresh_postgres_database() as url:
        live = start_live(settings(store={"url": url}))
        try:
            yield live
        finally:
            stop_live(live)


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/v1/chat/completions", {"model": "fake/e\u0000cho", "messages": [{"role": "user", "content": "hi"}]}, {}),
    ("/v1/messages", {"model": "fake/e\u0000cho", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
     ANTHROPIC),
    ("/v1/messages/count_tokens", {"model": "fake/e\u0000cho", "messages": [{"role": "user", "content": "hi"}]},
     ANTHROPIC),
    ("/v1/embeddings", {"model": "fake/e\u0000mb", "input": "hi"}, {}),
    ("/v1/responses", {"model": "fake/e\u0000cho", "input": "hi"}, {}),
    ("/v1/images/generations", {"model": "fake/i\u0000mg", "prompt": "a cat"}, {}),
])
def test_a_nul_in_the_model_is_a_400_naming_model_before_anything_is_sent(
        pg_live: Live, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    sent = len(pg_live.fake.requests) if hasattr(pg_live.fake, "requests") else None
    with pg_live.http() as http:
        r = http.post(path, json=body, headers=headers)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "model" in err["message"] and "NUL" in err["message"]
    if sent is not None:
        assert len(pg_live.fake.requests) == sent


def _calls(live: Live) -> int:
    live.state.backend.store.flush()
    return len(live.state.backend.store.recent_calls(limit=1000))


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/v1/chat/completions", {"model": "fake/echo", "user": "u\u0000ser",
                              "messages": [{"role": "user", "content": "h\u0000i"}]}, {}),
    ("/v1/chat/completions", {"model": "fake/echo", "metadata": {"k\u0000": "v\u0000"},
                              "messages": [{"role": "user", "content": "hi"}]}, {}),
    ("/v1/chat/completions", {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": "f\u0000", "parameters": {}}}]},
     {}),
    ("/v1/messages", {"model": "fake/echo", "max_tokens": 5, "metadata": {"user_id": "u\u0000"},
                      "messages": [{"role": "user", "content": "h\u0000i"}]}, ANTHROPIC),
    ("/v1/responses", {"model": "fake/echo", "input": "h\u0000i", "instructions": "b\u0000e",
                       "user": "u\u0000", "metadata": {"k": "v\u0000"}}, {}),
    ("/v1/responses", {"model": "fake/echo", "input": "hi", "previous_response_id": "resp_\u0000"}, {}),
])
def test_a_nul_in_other_client_text_is_a_400_or_kept_never_a_500_or_a_lost_record(
        pg_live: Live, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    before = _calls(pg_live)
    dropped = pg_live.state.backend.store.writer.dropped
    with pg_live.http() as http:
        r = http.post(path, json=body, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["error"]["message"]
        return
    assert _calls(pg_live) == before + 1   # a flush counts every call answered before it
    assert pg_live.state.backend.store.writer.dropped == dropped
