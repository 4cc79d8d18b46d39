"""Perplexity through the OpenAI adapter: an answer's sources, top-level ``citations`` (the URLs
its ``[1]`` markers number) and ``search_results`` (title, url, date), as its API documents them
and sends them on every chunk of a stream, are kept in ``metadata.extra``; they were dropped, and
the markers pointed at nothing."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, Message
from tests.providers._openai_replay import accumulate, adapter, decode_stream

CITATIONS = ["https://en.wikipedia.org/wiki/Paris", "https://www.paris.fr/"]
SEARCH_RESULTS = [{"title": "Paris - Wikipedia", "url": CITATIONS[0], "date": None},
                  {"title": "Paris.fr", "url": CITATIONS[1], "date": "2025-01-02"}]
USAGE = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11, "search_context_size": "low"}
REQ = ChatRequest("sonar", [Message.user("Capital of France? cite sources")])


def _answer(**sources: Any) -> dict[str, Any]:
    return {"id": "p", "model": "sonar", "created": 1, "object": "chat.completion", **sources,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris [1][2]."},
                         "finish_reason": "stop"}], "usage": USAGE}


def test_an_answers_sources_are_kept() -> None:
    body = _answer(citations=CITATIONS, search_results=SEARCH_RESULTS)
    resp = adapter("perplexity").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), REQ)
    assert resp.text == "Paris [1][2]." and resp.finish_reason == "stop"
    assert resp.metadata.extra["citations"] == CITATIONS
    assert resp.metadata.extra["search_results"] == SEARCH_RESULTS


def test_a_streamed_answers_sources_are_kept() -> None:
    head = {"id": "p", "model": "sonar", "created": 1, "object": "chat.completion.chunk",
            "citations": CITATIONS, "search_results": SEARCH_RESULTS}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Paris [1][2]."},
                                    "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": USAGE}]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    events = decode_stream("perplexity", body, REQ)
    assert events[-1].type == "done" and events[-1].extra == {"citations": CITATIONS, "search_results": SEARCH_RESULTS}
    resp = accumulate("perplexity", events, REQ)
    assert resp.text == "Paris [1][2]." and resp.metadata.extra["citations"] == CITATIONS
    assert resp.metadata.extra["search_results"] == SEARCH_RESULTS


def test_an_answer_without_sources_has_none() -> None:
    resp = adapter("perplexity").parse_chat(HttpResponse(200, {}, json.dumps(_answer()).encode()), REQ)
    assert "citations" not in resp.metadata.extra and "search_results" not in resp.metadata.extra
    # a field that is not a list is not a source list: left out rather than passed on
    odd = adapter("perplexity").parse_chat(HttpResponse(200, {}, json.dumps(_answer(citations="x")).encode()), REQ)
    assert "citations" not in odd.metadata.extra
