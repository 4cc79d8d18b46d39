"""A call whose usage or cost is unknown is never counted as free.

An answer without a ``usage`` object has ``usage.reported`` False and ``cost`` None; the gateway
settles it as it settles an interrupted call: its token estimate stays booked against tpm and its
budgets are charged the reservation. The call record keeps that charge apart from ``cost``
(``charged``), so spend reports agree with the budget ledger and say how many calls had no cost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._errors import AllTargetsFailed, RateLimitExceeded, StreamInterrupted

from .conftest import Harness, chat_request, upstream
from .openai_mock import OpenAIMock


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    m.report_usage = False
    yield m
    m.close()


def client(tmp_path: Path, mock: OpenAIMock, **settings: Any) -> cloverleaf.Client:
    models = [ModelEntry("priced", "m", "mock", input_cost_per_1k=0.01, output_cost_per_1k=0.01)]
    s = Settings(providers={"mock": mock.provider()}, models=models, routes={"r": {"targets": ["priced"]}},
                 env={"MOCK_KEY": "k"}, gateway=True, store={"url": f"sqlite:///{tmp_path / 'calls.db'}"},
                 max_retries=0, **settings)
    return cloverleaf.Client(s)


def test_an_answer_without_usage_is_charged_its_reservation(tmp_path: Path, mock: OpenAIMock) -> None:
    with client(tmp_path, mock, budgets={"r": {"limit_usd": 100.0}}) as c:
        resp = c.chat("r", "hi", max_tokens=100)
        assert resp.usage.reported is False and resp.cost is None
        [status] = asyncio.run(c.gateway.budgets.status())   # memory state: any loop may read it
        assert status.spent_usd > 0.0                        # not the made-up $0 it was
        c.gateway.store.flush()
        [record] = c.gateway.store.recent_calls()
        assert record.cost is None and record.charged == pytest.approx(status.spent_usd)
        [row] = c.gateway.store.spend("route")
        assert row.cost == pytest.approx(status.spent_usd) and row.unknown_cost == 1


def test_an_answer_without_usage_keeps_its_token_estimate_booked(tmp_path: Path, mock: OpenAIMock) -> None:
    # each call is estimated at 100 output tokens and more: tpm 250 admits two, whatever they say they used
    limits = {"target:priced": {"tpm": 250, "max_wait": 0}}
    with client(tmp_path, mock, limits=limits) as c:
        for _ in range(2):
            assert c.chat("r", "hi", max_tokens=100).usage.reported is False
        with pytest.raises(AllTargetsFailed, match="tpm"):
            c.chat("r", "hi", max_tokens=100)
    assert mock.chats == 2


async def test_an_interrupted_stream_records_what_its_budget_was_charged(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    upstream(gw).script.reset_after(2)
    with pytest.raises(StreamInterrupted):
        async for _ in gw.astream("r", chat_request("one two three four five six", max_tokens=1000)):
            pass
    [status] = await gw.budgets.status()
    assert status.spent_usd > 0.0
    gw.store.flush()
    [record] = gw.store.recent_calls()
    assert record.status == "interrupted" and record.cost is None
    assert record.charged == pytest.approx(status.spent_usd)
    [row] = gw.store.spend("route")
    assert row.cost == pytest.approx(status.spent_usd) and row.unknown_cost == 1


async def test_a_failure_that_billed_nothing_is_not_of_unknown_cost(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500"]}}, budgets={"r": {"limit_usd": 1.0}})
    with pytest.raises(Exception):  # noqa: B017 - the point is the report
        await gw.achat("r", chat_request(max_tokens=1000))
    gw.store.flush()
    [row] = gw.store.spend("route")
    assert row.cost == 0.0 and row.unknown_cost == 0


def test_an_ollama_embedding_without_a_token_count_is_not_free(tmp_path: Path) -> None:
    """Ollama without ``prompt_eval_count`` (a real HTTP upstream here): the usage is estimated
    from the input and unreported, so the call has no made-up $0 cost and its tokens stay booked
    against tpm (each call is estimated at 26 tokens: a tpm of 40 admits one)."""
    from cloverleaf._config import ProviderSettings
    from tests.sdk.upstream import Reply, Upstream

    up = Upstream()
    up.queue(*[Reply(body=b'{"model": "nomic-embed-text", "embeddings": [[0.5, 0.25]]}') for _ in range(2)])
    models = [ModelEntry("emb", "nomic-embed-text", "ol", input_cost_per_1k=0.01)]
    s = Settings(providers={"ol": ProviderSettings("ol", kind="ollama", base_url=up.url)}, models=models,
                 limits={"target:emb": {"tpm": 40, "max_wait": 0}}, gateway=True, max_retries=0,
                 store={"url": f"sqlite:///{tmp_path / 'calls.db'}"})
    try:
        with cloverleaf.Client(s) as c:
            resp = c.embed("emb", "x" * 100)
            assert resp.usage.reported is False and resp.usage.input_tokens == 26 and resp.cost is None
            with pytest.raises(RateLimitExceeded, match="tpm"):
                c.embed("emb", "x" * 100)
    finally:
        up.close()
    assert len(up.seen) == 1


def _anthropic_cut_after_output() -> bytes:
    """Anthropic's stream: message_start (the input count: 500), 600 characters of text, then
    the connection drops before message_delta (the output count) and message_stop."""
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 500, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Good answer " * 50}},
    ]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def test_a_stream_cut_after_its_input_count_books_what_it_used(tmp_path: Path) -> None:
    """Anthropic reported 500 input tokens, then the stream broke before the output count: the
    call is booked at no less than those 500 and the output estimated from the 600 characters
    received (about 150 tokens) — not at the admission's rough estimate of a 1-word prompt — and
    its record says so, unreported (cost unknown), never a reported 0."""
    from cloverleaf._config import ProviderSettings
    from tests.sdk.upstream import Reply, Upstream

    up = Upstream()
    up.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=[_anthropic_cut_after_output()],
                   end="close"))
    s = Settings(providers={"anth": ProviderSettings("anth", kind="anthropic", base_url=up.url, api_key="sk-ant")},
                 limits={"anth": {"tpm": 100_000, "max_wait": 0}}, routes={"r": {"targets": ["anth/claude-sonnet-4-5"]}},
                 gateway=True, max_retries=0, store={"url": f"sqlite:///{tmp_path / 'calls.db'}"})
    try:
        with cloverleaf.Client(s) as c:
            with pytest.raises(StreamInterrupted) as info:
                for _ in c.stream("r", "hi", max_tokens=100):
                    pass
            used = info.value.stream_usage
            assert used.reported is False and (used.input_tokens, used.output_tokens) == (500, 151)
            gw = c.gateway
            booked = asyncio.run(gw.state.usage("provider:anth:tpm", gw.clock.now()))
            assert booked == 651    # the 500 reported and the 151 received, not the estimate (~110)
            gw.store.flush()
            [record] = gw.store.recent_calls()
            assert record.status == "interrupted" and record.cost is None
            assert (record.input_tokens, record.output_tokens) == (500, 151)
    finally:
        up.close()


async def test_a_stream_cut_after_output_without_a_budget_is_of_unknown_cost_at_its_target(harness: Harness) -> None:
    """Closed by its consumer (Ctrl-C in `cloverleaf chat`, a client hanging up on serve) or broken
    upstream, after output: nothing was reserved, so nothing was charged, and the record had no
    target, no cost and no charge. `spend` showed $0 under "-" with no call of unknown cost."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}})
    agen = gw.astream("r", chat_request("one two three four five six", max_tokens=1000))
    assert (await agen.__anext__()).type == "text"
    await agen.aclose()  # type: ignore[attr-defined]
    upstream(gw).script.reset_after(2)
    with pytest.raises(StreamInterrupted):
        async for _ in gw.astream("r", chat_request("one two three four five six", max_tokens=1000)):
            pass
    gw.store.flush()
    records = gw.store.recent_calls()
    assert sorted(r.status for r in records) == ["cancelled", "interrupted"]
    assert all(r.target == "fake/echo" and r.provider == "fake" and r.cost is None for r in records)
    for by, group in (("model", "fake/echo"), ("provider", "fake"), ("route", "r")):
        [row] = gw.store.spend(by)
        assert (row.group, row.calls, row.unknown_cost) == (group, 2, 2), by


async def test_a_stream_cancelled_before_output_is_not_of_unknown_cost(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500"]}})
    with pytest.raises(Exception):  # noqa: B017 - the point is the report
        async for _ in gw.astream("r", chat_request(max_tokens=1000)):
            pass
    gw.store.flush()
    [row] = gw.store.spend("route")
    assert row.unknown_cost == 0
