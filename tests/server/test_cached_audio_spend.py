"""``GET /admin/spend`` bills a Gemini call whose cached prompt part is audio at the cached audio
rate, streamed or not.

Gemini's usage counts the cache inside the prompt and the prompt's audio cached or not
(``cacheTokensDetails`` says which of the cache was audio). The spend charged the cached audio
as cached text and put its count on fresh text tokens at the audio rate: 2k fresh text, 100k
cached audio and 500 out on Gemini 2.5 Flash came to $0.00625 where Google lists $0.01185.
A mock Gemini upstream behind a live server, called with the official OpenAI SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import MASTER, Live, settings, start_live, stop_live

ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "It is a lecture."}]},
                          "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 102_000, "candidatesTokenCount": 500, "totalTokenCount": 102_500,
                            "cachedContentTokenCount": 100_000,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2_000},
                                                    {"modality": "AUDIO", "tokenCount": 100_000}],
                            "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 100_000}]},
          "modelVersion": "gemini-2.5-flash"}
#: Google's list price: fresh text $0.30/M, cached audio $0.10/M, output $2.50/M
LISTED = (2_000 * 0.30 + 100_000 * 0.10 + 500 * 2.50) / 1e6
ASK: Any = [{"role": "user", "content": "What is the cached recording?"}]


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    # named "gemini", as a user's Gemini entry is: the built-in price table is Gemini's
    providers = {"gemini": ProviderSettings("gemini", kind="gemini", base_url=upstream.url, api_key="gk-mock")}
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, providers=providers))
    yield server
    stop_live(server)


def _spend(live: Live) -> float:
    with live.http(MASTER) as http:
        rows = http.get("/admin/spend", params={"by": "model"}).json()["data"]
    return sum(r["cost"] for r in rows if r["group"] == "gemini/gemini-2.5-flash")


def test_spend_bills_cached_audio_at_the_cached_audio_rate(live: Live, upstream: Upstream) -> None:
    upstream.queue(Reply(body=json.dumps(ANSWER).encode()))
    before = _spend(live)
    resp = live.openai(MASTER).chat.completions.create(model="gemini/gemini-2.5-flash", messages=ASK)
    assert resp.usage is not None and resp.usage.prompt_tokens_details is not None
    assert (resp.usage.prompt_tokens, resp.usage.prompt_tokens_details.cached_tokens) == (102_000, 100_000)
    assert _spend(live) - before == pytest.approx(LISTED)


def test_a_streamed_calls_spend_bills_cached_audio_at_the_cached_audio_rate(live: Live, upstream: Upstream) -> None:
    upstream.queue(Reply(headers={"content-type": "text/event-stream"},
                         chunks=[b"data: " + json.dumps(ANSWER).encode() + b"\r\n\r\n"]))
    before = _spend(live)
    chunks = list(live.openai(MASTER).chat.completions.create(model="gemini/gemini-2.5-flash", messages=ASK,
                                                               stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "It is a lecture."
    assert _spend(live) - before == pytest.approx(LISTED)
