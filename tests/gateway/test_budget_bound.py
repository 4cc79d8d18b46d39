"""Budgets hold for any tokenizer: 200 concurrent CJK calls never spend past the limit.

The provider here counts every UTF-8 byte of the prompt as a token — the most any real
tokenizer can (byte-level BPE on text it has never seen) and three times what a CJK
character usually costs. Under the old reservation (characters ÷ 4) 200 such calls against
a $0.10 budget overspent it by 125%; the reservation is now the prompt's UTF-8 length, so
the spend stays within the limit, in one process and across two processes sharing Redis.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import Gateway, ManualClock, SystemClock
from cloverleaf.gateway.estimate import input_token_bound

from .conftest import FAKE_PRICED, Harness, chat_request, upstream
from .redis_support import fresh_prefix, redis_url, wait_for

REPO = Path(__file__).resolve().parents[2]
CJK = "预算必须是上限" * 572                     # 4,004 characters, 12,012 UTF-8 bytes
LIMIT = 0.10
MAX_TOKENS = 100
# fake/echo: $1/M input, $2/M output; the provider bills one token per byte
USAGE = {"input_tokens": len(CJK.encode()), "output_tokens": MAX_TOKENS}
CALL_COST = (len(CJK.encode()) * 1 + MAX_TOKENS * 2) / 1e6


def test_items_relayed_as_sent_are_in_the_bound() -> None:
    """A Responses request's built-in tool items travel in ``extra_body`` (relayed verbatim to
    OpenAI's Responses API): their text counts by its bytes, a screenshot as an image, by the
    model's rule (the largest of them for a model it does not know)."""
    from dataclasses import replace

    from cloverleaf.gateway.image_bounds import UNKNOWN, rule_for

    image_tokens = UNKNOWN.most     # an image's bound at a model it does not know

    bare = chat_request("next step?")
    shot = "data:image/png;base64," + "A" * 2_000_000
    computer = replace(bare, extra_body={"input": [
        {"type": "computer_call_output", "call_id": "call_1",
         "output": {"type": "computer_screenshot", "image_url": shot}},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": [CJK]}]})
    extra = input_token_bound(computer) - input_token_bound(bare)
    assert extra >= image_tokens + len(CJK.encode())
    assert extra < image_tokens + len(CJK.encode()) + 1_000     # not the screenshot's 2 MB of base64
    remote = replace(bare, extra_body={"input": [{"type": "input_image", "image_url": "https://example.com/a.png"}]})
    assert input_token_bound(remote) - input_token_bound(bare) >= image_tokens
    computer_use = rule_for("computer-use-preview").most
    assert input_token_bound(computer, "computer-use-preview") - input_token_bound(bare) == \
        extra - image_tokens + computer_use
    low = replace(bare, extra_body={"input": [{"type": "input_image", "image_url": "https://example.com/a.png",
                                               "detail": "low"}]})
    assert input_token_bound(low, "gpt-4o-mini") - input_token_bound(bare) < 3_000   # 2,833 + its text


def test_embedding_token_ids_are_in_the_bound() -> None:
    """Pre-tokenised embedding input bills one token an id: it reserved ~64 tokens whatever its
    size, so calls of 2,000 ids each spent past a budget that had room for one."""
    from cloverleaf._types import EmbeddingRequest
    from cloverleaf.gateway.estimate import input_bound

    ids = EmbeddingRequest(model="m", inputs=[], token_ids=[[100] * 2000, [7] * 500])
    bound = input_bound("embed", ids)
    assert isinstance(bound, int) and bound >= 2500
    both = EmbeddingRequest(model="m", inputs=[CJK], token_ids=[[1] * 10])
    assert input_bound("embed", both) >= len(CJK.encode()) + 10


async def test_embeddings_sent_as_token_ids_never_overspend_a_budget(harness: Harness) -> None:
    """Two calls of 2,000 ids against a $0.006 budget: each reserves ~$0.004 (input bounded at
    the dearest rate, $2/M), the first spends what the fake provider reports for its ids, and
    the second is refused before anything is sent (under the old ~64-token reservation it was
    admitted)."""
    from cloverleaf._types import EmbeddingRequest

    gw = harness.gateway(clock=SystemClock(), routes={"e": {"targets": ["fake/echo"]}},
                         budgets={"e": {"limit_usd": 0.006}})
    req = EmbeddingRequest(model="e", inputs=[], token_ids=[[100] * 2000])
    await gw.aembed("e", req)
    sent = len(upstream(gw).requests)
    with pytest.raises(BudgetExceeded):
        await gw.aembed("e", req)
    assert len(upstream(gw).requests) == sent


def test_the_bound_covers_a_token_per_byte() -> None:
    assert input_token_bound(chat_request(CJK)) >= len(CJK.encode())
    assert input_token_bound(chat_request("ascii " * 100)) >= 600


async def _fire(gw: Gateway, calls: int) -> dict[str, int]:
    async def one() -> bool:
        try:
            await gw.achat("r", chat_request(CJK, max_tokens=MAX_TOKENS))
            return True
        except BudgetExceeded:
            return False

    results = await asyncio.gather(*(one() for _ in range(calls)))
    return {"ok": sum(results), "refused": len(results) - sum(results), "upstream": len(upstream(gw).requests)}


async def test_two_hundred_concurrent_cjk_calls_never_overspend(harness: Harness) -> None:
    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"]}},
                         budgets={"r": {"limit_usd": LIMIT}})
    upstream(gw).script.reply(text="好", usage=USAGE, times=200)
    counts = await _fire(gw, 200)
    spent, reserved = await gw.state.budget_usage("route:r|total") or (0.0, 0.0)
    assert counts["ok"] == counts["upstream"] > 0 and counts["ok"] + counts["refused"] == 200
    assert spent == pytest.approx(counts["ok"] * CALL_COST) and reserved == pytest.approx(0.0)
    assert spent <= LIMIT                                          # 0 overspend
    gw.store.flush()
    assert gw.store.budget_usage("route:r", "total")[0] == pytest.approx(spent)   # and the ledger agrees


def worker(url: str, prefix: str, calls: int, db: str) -> None:
    """One process: a gateway on the shared Redis fires ``calls`` concurrent CJK calls at
    the shared budget once every worker is ready; prints its counts."""
    import redis.asyncio as aioredis

    from cloverleaf.gateway.state.redis import RedisState

    async def run() -> dict[str, Any]:
        settings = Settings(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": LIMIT}},
                            providers=FAKE_PRICED,
                            store={"url": f"sqlite:///{db}"}, gateway=True, max_retries=0, env={}, timeout=10.0,
                            connect_timeout=2.0)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=ManualClock(start=1000.0), state=RedisState(url, prefix=prefix))
        upstream(gw).script.reply(text="好", usage=USAGE, times=calls)
        signals = aioredis.Redis.from_url(url)
        try:
            await signals.rpush(prefix + "ready", "1")
            for _ in range(90):   # short blocking reads: the test Redis drops a read idle for 5 s
                if await signals.blpop([prefix + "go"], timeout=2):
                    break
            else:
                raise AssertionError("the test never said go")
            counts: dict[str, Any] = await _fire(gw, calls)
            counts["spent"] = (await gw.state.budget_usage("route:r|total") or (0.0, 0.0))[0]
            return counts
        finally:
            await signals.aclose()
            await gw.aclose()
            engine.close()

    print(json.dumps(asyncio.run(run())))


@pytest.mark.redis
def test_two_processes_sharing_redis_never_overspend_with_cjk_calls(tmp_path: Path) -> None:
    import redis

    url, prefix = redis_url(), fresh_prefix()
    code = ("import sys; from tests.gateway.test_budget_bound import worker; "
            "worker(sys.argv[1], sys.argv[2], 100, sys.argv[3])")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, prefix, str(tmp_path / f"w{i}.db")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    signals = redis.Redis.from_url(url, decode_responses=True)
    try:
        for _ in procs:
            assert wait_for(signals, prefix + "ready"), "a worker did not start"
        signals.rpush(prefix + "go", "1", "1")
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for key in signals.scan_iter(match=prefix + "*"):
            signals.delete(key)
        signals.close()
    paid = sum(o["ok"] for o in outputs)
    assert [o["upstream"] for o in outputs] == [o["ok"] for o in outputs]
    assert sum(o["ok"] + o["refused"] for o in outputs) == 200 and paid > 0
    assert paid * CALL_COST <= LIMIT                               # 0 overspend, across processes
    assert max(o["spent"] for o in outputs) == pytest.approx(paid * CALL_COST)   # one shared counter


def sent_cap(gw: Gateway) -> int | None:
    body = upstream(gw).requests[-1].json
    return body.get("max_completion_tokens") or body.get("max_tokens")  # type: ignore[no-any-return]


async def test_a_call_without_max_tokens_is_capped_at_what_it_reserved(harness: Harness) -> None:
    """Its reservation counted the route's output allowance; the provider is told the same
    bound, so an answer cannot run past it and spend more than was reserved."""
    from cloverleaf._types import ReasoningConfig

    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"], "output_estimate": 300},
                                                      "open": {"targets": ["fake/echo"]}},
                         budgets={"r": {"limit_usd": 1.0}})
    mine = chat_request("hello")
    await gw.achat("r", mine)
    assert sent_cap(gw) == 300 and mine.max_tokens is None          # the caller's request is left as it was
    await gw.achat("r", chat_request("think first", reasoning=ReasoningConfig(budget_tokens=1000)))
    assert sent_cap(gw) == 1300                                       # the allowance on top of the thinking budget
    async for _ in gw.astream("r", chat_request("streamed")):
        pass
    assert sent_cap(gw) == 300
    await gw.achat("r", chat_request("my own bound", max_tokens=50))
    assert sent_cap(gw) == 50
    await gw.achat("open", chat_request("nothing metered"))
    assert sent_cap(gw) is None                                       # no budget, no token limit: not capped


async def test_a_token_limit_caps_an_uncapped_call_too(harness: Harness) -> None:
    from cloverleaf._context import CallContext, KeyPolicy

    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"], "output_estimate": 200}},
                         limits={"r": {"tpm": 100_000}})
    await gw.achat("r", chat_request("hello"))
    assert sent_cap(gw) == 200
    plain = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"], "output_estimate": 200}})
    await plain.achat("r", chat_request("hello"), CallContext(key=KeyPolicy("k1", tpm=100_000)))
    assert sent_cap(plain) == 200
    await plain.achat("r", chat_request("hello"), CallContext(key=KeyPolicy("k2", rpm=10)))
    assert sent_cap(plain) is None                                    # requests counted, not tokens


async def test_only_the_calls_own_token_limits_cap_it(harness: Harness) -> None:
    """A tpm limit on another route (or a table that sets only rpm, whose tpm defaults to
    100,000) does not cap a call that nothing meters in tokens: its answer is not cut at the
    output estimate. A tpm on the provider or the target the call goes to does."""
    routes = {"limited": {"targets": ["fake/echo"]}, "open": {"targets": ["fake/echo"], "output_estimate": 200}}
    gw = harness.gateway(clock=SystemClock(), routes=routes, limits={"limited": {"rpm": 100}})
    await gw.achat("open", chat_request("long answer please"))
    assert sent_cap(gw) is None
    await gw.achat("limited", chat_request("hello"))
    assert sent_cap(gw) == 4096                                       # its own table's default tpm meters it
    for scope in ("fake", "fake/echo"):                               # the provider's, then the target's
        metered = harness.gateway(clock=SystemClock(), routes=routes, limits={scope: {"tpm": 100_000}})
        await metered.achat("open", chat_request("hello"))
        assert sent_cap(metered) == 200


def test_the_bound_prices_input_at_a_one_hour_cache_write() -> None:
    """Anthropic bills a one-hour cache write at 2x input, above its five-minute write rate:
    a prompt the bound cannot see the caching of must be priced at the dearest."""
    from types import SimpleNamespace

    from cloverleaf._pricing import ModelPrice
    from cloverleaf.gateway.estimate import CostBound

    price = ModelPrice(3.0, 4.0, cached_input=0.3, cache_write=3.75, cache_write_1h=6.0)
    target = SimpleNamespace(price=price, target=None)
    assert CostBound(None)([target], 1_000_000, 0) == pytest.approx(6.0)



PDF_BY_URL = "https://docs.example.com/annual-report.pdf"


def _pdf_request(fetch: str) -> Any:
    from cloverleaf._types import Attachment, ChatRequest, Message, Text

    msg = Message.user([Attachment(PDF_BY_URL, type="pdf", fetch=fetch), Text("Summarise")])  # type: ignore[arg-type]
    return ChatRequest(model="", messages=[msg], max_tokens=100)


@pytest.mark.parametrize("fetch", ["provider", "local"])
async def test_a_document_by_url_is_bounded_by_the_context_window_or_refused(harness: Harness, fetch: str) -> None:
    """A PDF known by its URL has no size before the call (the provider fetches it, or the
    gateway does after reserving), and a 300-page one bills some 300,000 tokens: it was reserved
    as 6,400, so one call could spend past the budget. Now the reservation is the target's
    context window, and with no window known the budget refuses the call before anything is sent."""
    from cloverleaf._config import ModelEntry

    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 0.50}})
    with pytest.raises(BudgetExceeded) as refused:
        await gw.achat("r", _pdf_request(fetch))
    assert refused.value.unsized == ("fake/echo",) and "context_window" in str(refused.value)
    assert upstream(gw).requests == []
    windowed = harness.gateway(routes={"r": {"targets": ["doc-model"]}}, budgets={"r": {"limit_usd": 0.25}},
                               models=[ModelEntry(name="doc-model", identifier="echo", provider="fake",
                                                  context_window=300_000)])
    with pytest.raises(BudgetExceeded) as over:     # the window's 300k tokens, at the bound's $2/M (its output rate)
        await windowed.achat("r", _pdf_request(fetch))
    assert not over.value.unsized and over.value.requested == pytest.approx((300_000 + 100) * 2 / 1e6)
    assert upstream(windowed).requests == []


def test_an_image_by_url_keeps_its_bound_and_inline_bytes_count() -> None:
    from cloverleaf._types import Attachment, Message
    from cloverleaf.gateway.image_bounds import UNKNOWN

    image_tokens = UNKNOWN.most     # an image's bound at a model it does not know

    bare = input_token_bound(chat_request("look"))
    assert bare is not None

    def bound(att: Attachment) -> int | None:
        return input_token_bound(chat_request("look").__class__(model="", messages=[Message.user([att])]))

    image = bound(Attachment("https://example.com/cat.png", fetch="provider"))
    assert image is not None and image <= bare + image_tokens
    audio = bound(Attachment("data:audio/wav;base64," + "A" * 400_000))
    assert audio is not None and audio >= 300_000     # its bytes count, not a flat 6,400
    # a PDF is bounded by its pages (tests/gateway/test_budget_media.py): with none to count in
    # it, it has no bound of its own, like a document by URL
    assert bound(Attachment("data:application/pdf;base64," + "A" * 400_000)) is None
    assert bound(Attachment(data=b"%PDF-1.7\n" + b"x" * 300_000)) is None


def test_an_inline_image_is_bounded_by_its_pixels_not_its_bytes() -> None:
    """A 1.5 MB screenshot as a data: URL (what every OpenAI client sends), base64 text or bytes
    bills by its pixels, which every provider caps: bounding it by its length made a budgeted
    call reserve for two million tokens and be refused."""
    import base64 as b64

    from cloverleaf._types import Attachment, Message
    from cloverleaf.gateway.image_bounds import UNKNOWN

    image_tokens = UNKNOWN.most     # an image's bound at a model it does not know
    bare = input_token_bound(chat_request("look"))
    assert bare is not None
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1_500_000
    text = b64.b64encode(png).decode()

    def bound(att: Attachment) -> int | None:
        return input_token_bound(chat_request("look").__class__(model="", messages=[Message.user([att])]))

    for att in (Attachment("data:image/png;base64," + text), Attachment(text), Attachment(data=png),
                Attachment(data=png, media_type="image/png"), Attachment("data:;base64," + text)):
        found = bound(att)
        assert found is not None and found <= bare + image_tokens, att.media_type


def test_the_bound_uses_the_long_context_rates_a_long_prompt_can_reach() -> None:
    """Gemini 2.5 Pro bills every token at $2.50/$15 once a prompt passes 200k tokens: a
    prompt whose bound passes it reserves at those rates, not the $1.25/$10 of a short one.
    With no bound of its own, Claude Sonnet 4.5's is the 1M-context beta's window."""
    from types import SimpleNamespace

    from cloverleaf._pricing import lookup
    from cloverleaf.gateway.estimate import CostBound

    pro = SimpleNamespace(price=lookup("gemini", "gemini-2.5-pro"), target=None, context_window=1_048_576, key="p")
    # input at the dearest of its rates and the output rate (the bound's rule), of the tier it can reach
    assert CostBound(None)([pro], 100_000, 1_000) == pytest.approx((100_000 * 10 + 1_000 * 10) / 1e6)
    assert CostBound(None)([pro], 300_000, 1_000) == pytest.approx((300_000 * 15 + 1_000 * 15) / 1e6)
    sonnet = SimpleNamespace(price=lookup("anthropic", "claude-sonnet-4-5"), target=None, context_window=200_000,
                             key="s")
    assert CostBound.window(sonnet) == 1_000_000
    assert CostBound(None)([sonnet], None, 0) == pytest.approx(1_000_000 * 22.5 / 1e6)


def test_the_bound_picks_each_calls_tier_though_a_targets_rates_are_worked_out_once() -> None:
    """The bound's rates are looked up per target: one CostBound asked for a short prompt, then a
    long one, then a short one again must price each at the tier it can reach, at the threshold
    itself too (the long tier bills only above it)."""
    from types import SimpleNamespace

    from cloverleaf._pricing import lookup
    from cloverleaf.gateway.estimate import CostBound

    price = lookup("gemini", "gemini-2.5-pro")
    pro = SimpleNamespace(price=price, target=None, context_window=1_048_576, key="p")
    bound = CostBound(None)
    short, long = (100_000 * 10 + 1_000 * 10) / 1e6, (300_000 * 15 + 1_000 * 15) / 1e6
    assert bound([pro], 100_000, 1_000) == pytest.approx(short)
    assert bound([pro], 300_000, 1_000) == pytest.approx(long)
    assert bound([pro], 100_000, 1_000) == pytest.approx(short)
    edge = price.long_context_above
    assert bound([pro], edge, 0) == pytest.approx(edge * 10 / 1e6)
    assert bound([pro], edge + 1, 0) == pytest.approx((edge + 1) * 15 / 1e6)


async def _requested(gw: Gateway, req: Any) -> float:
    """What the call would reserve: the budget is too small for any call, so it says."""
    with pytest.raises(BudgetExceeded) as refused:
        await gw.achat("r", req)
    return refused.value.requested


async def test_a_call_that_can_search_the_web_reserves_for_its_searches(harness: Harness) -> None:
    """Anthropic bills $10 per 1,000 web searches on top of the tokens: a call with the
    web_search tool reserves for its max_uses searches, or for DEFAULT_WEB_SEARCHES without one."""
    from cloverleaf.gateway.estimate import DEFAULT_WEB_SEARCHES

    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["anthropic/claude-sonnet-4-5"],
                                                            "output_estimate": 100}},
                         budgets={"r": {"limit_usd": 0.000001}}, env={"ANTHROPIC_API_KEY": "k"})
    plain = await _requested(gw, chat_request("news?"))
    tool = {"type": "web_search_20250305", "name": "web_search"}
    capped = await _requested(gw, chat_request("news?", extra_body={"tools": [{**tool, "max_uses": 3}]}))
    open_ended = await _requested(gw, chat_request("news?", extra_body={"tools": [tool]}))
    assert 3 * 0.01 < capped - plain < 3 * 0.01 + 0.005                     # the tool's own bytes are input too
    assert open_ended - capped == pytest.approx((DEFAULT_WEB_SEARCHES - 3) * 0.01, abs=0.001)


async def test_a_call_asking_for_priority_processing_reserves_at_the_priority_rates(harness: Harness) -> None:
    """OpenAI bills gpt-5's priority tier $2.50/$20 against $1.25/$10: a call that asks for it
    reserves at those rates (it reserved at the standard ones and overran the budget)."""
    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["openai/gpt-5"], "output_estimate": 10_000}},
                         budgets={"r": {"limit_usd": 0.000001}}, env={"OPENAI_API_KEY": "k"})
    standard = await _requested(gw, chat_request("hi"))
    priority = await _requested(gw, chat_request("hi", extra_body={"service_tier": "priority"}))
    assert priority == pytest.approx(2 * standard, rel=0.01)   # its extra_body adds a few prompt bytes
