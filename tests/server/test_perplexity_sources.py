"""Perplexity's sources reach the server's Chat Completions clients where Perplexity puts them:
top-level ``citations`` and ``search_results`` of the answer, and of a stream's last chunks. A
mock Perplexity behind a live server, read with the official OpenAI SDK (which keeps fields it
does not know on the object), as a client written for Perplexity reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

CITATIONS = ["https://en.wikipedia.org/wiki/Paris", "https://www.paris.fr/"]
SEARCH_RESULTS = [{"title": "Paris - Wikipedia", "url": CITATIONS[0], "date": None},
                  {"title": "Paris.fr", "url": CITATIONS[1], "date": "2025-01-02"}]
SOURCES = {"citations": CITATIONS, "search_results": SEARCH_RESULTS}
USAGE = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
ASK: Any = [{"role": "user", "content": "Capital of France? cite sources"}]


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"perplexity": ProviderSettings("perplexity", base_url=upstream.url)}
    server = start_live(settings(providers=providers, env={"PERPLEXITY_API_KEY": "pplx-mock"}))
    yield server
    stop_live(server)


@pytest.fixture(autouse=True)
def fresh_queue(upstream: Upstream) -> None:
    with upstream.lock:
        upstream.replies.clear()


def _whole(**sources: Any) -> Reply:
    body = {"id": "p", "model": "sonar", "created": 1, "object": "chat.completion", **sources,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris [1][2]."},
                         "finish_reason": "stop"}], "usage": USAGE}
    return Reply(body=json.dumps(body).encode())


def _streamed(**sources: Any) -> Reply:
    head = {"id": "p", "model": "sonar", "created": 1, "object": "chat.completion.chunk", **sources}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Paris [1][2]."},
                                    "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": USAGE}]
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"data: {json.dumps(c)}\n\n".encode() for c in [*chunks, "[DONE]"]])


def test_the_answers_sources_are_top_level_fields(live: Live, upstream: Upstream) -> None:
    upstream.queue(_whole(**SOURCES))
    resp = live.openai().chat.completions.create(model="perplexity/sonar", messages=ASK)
    assert resp.choices[0].message.content == "Paris [1][2]."
    assert resp.model_extra == SOURCES


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_streams_last_chunks_carry_the_sources(live: Live, upstream: Upstream, include_usage: bool) -> None:
    upstream.queue(_streamed(**SOURCES))
    options: Any = {"include_usage": True} if include_usage else None
    chunks = list(live.openai().chat.completions.create(model="perplexity/sonar", messages=ASK, stream=True,
                                                        stream_options=options))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris [1][2]."
    finish = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finish.choices[0].finish_reason == "stop" and finish.model_extra == SOURCES
    assert chunks[-1].model_extra == SOURCES   # the last chunk, whichever it is
    assert (chunks[-1].usage is not None) is include_usage
    assert all(not c.model_extra for c in chunks if c is not finish and c is not chunks[-1])


def test_an_answer_without_sources_has_no_such_fields(live: Live, upstream: Upstream) -> None:
    upstream.queue(_whole(), _streamed())
    whole = live.openai().chat.completions.create(model="perplexity/sonar", messages=ASK)
    assert not whole.model_extra
    streamed = list(live.openai().chat.completions.create(model="perplexity/sonar", messages=ASK, stream=True))
    assert all(not c.model_extra for c in streamed)
