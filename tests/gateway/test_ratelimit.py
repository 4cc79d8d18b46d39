"""Rolling-window rpm/tpm limits: never exceeded, also under 200 concurrent calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf._errors import PermissionDeniedError, RateLimitExceeded
from cloverleaf.gateway import ManualClock
from cloverleaf.gateway.state import Bucket
from cloverleaf.gateway.state.memory import MemoryState

from .conftest import Harness, chat_request, upstream


def _record_upstream_times(gw: Any, clock: ManualClock) -> list[float]:
    """Wrap the fake upstream so every request it receives is stamped with the manual clock."""
    up = upstream(gw)
    times: list[float] = []
    original = up.plan

    def plan(*args: Any, **kwargs: Any) -> Any:
        times.append(clock.now())
        return original(*args, **kwargs)

    up.plan = plan
    return times


def _max_in_any_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("max_wait", [300.0, 20.0])
async def test_200_concurrent_calls_never_exceed_60_rpm(harness: Harness, max_wait: float) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, limits={"fake": {"rpm": 60, "tpm": 0, "max_wait": max_wait}})
    times = _record_upstream_times(gw, clock)

    async def one(i: int) -> str:
        try:
            return (await gw.achat("fake/echo", chat_request(f"call {i}"))).text
        except RateLimitExceeded:
            return "limited"

    tasks = [asyncio.ensure_future(one(i)) for i in range(200)]
    await clock.drive(*tasks)
    results = [t.result() for t in tasks]
    ok = [r for r in results if r != "limited"]
    assert len(times) == len(ok)
    assert _max_in_any_window(times) <= 60
    if max_wait == 300.0:
        assert sorted(ok) == sorted(f"call {i}" for i in range(200))  # everyone waited their turn
        assert _max_in_any_window(times) == 60
    else:
        assert 60 <= len(ok) < 200  # the first minute's worth plus what fits in 20 s of waiting


async def test_token_estimates_are_reconciled_with_reported_usage(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, limits={"fake": {"rpm": 0, "tpm": 1000, "max_wait": 0}})
    totals = []
    for i in range(5):  # each estimate (~400 tokens) alone would allow only two calls a minute
        resp = await gw.achat("fake/echo", chat_request(f"short {i}", max_tokens=400))
        totals.append(resp.usage.total_tokens)
    assert await gw.state.usage("provider:fake:tpm", clock.now()) == sum(totals)


async def test_estimate_blocks_while_in_flight(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, limits={"fake": {"rpm": 0, "tpm": 1000, "max_wait": 0}})
    state = gw.state
    grant = await state.take([Bucket("provider:fake:tpm", 1000, 900)], clock.now(), 0)
    assert grant.granted
    with pytest.raises(RateLimitExceeded) as info:
        await gw.achat("fake/echo", chat_request("no room", max_tokens=400))
    # the slot returns a window plus the upstream margin (1 s by default) after its admission
    assert info.value.kind == "tpm" and info.value.retry_after == pytest.approx(61.0)
    assert upstream(gw).requests == []


async def test_full_target_limit_falls_back_or_raises_as_configured(harness: Harness) -> None:
    limits = {"target:fake/echo": {"rpm": 1, "tpm": 0, "max_wait": 0}}
    gw = harness.gateway(routes={"fb": {"targets": ["fake/echo", "fake/other"]},
                                 "strict": {"targets": ["fake/echo", "fake/other"], "fallback_on_rate_limit": False}},
                         limits=limits)
    assert (await gw.achat("fb", chat_request())).metadata.target == "fake/echo"
    second = await gw.achat("fb", chat_request())
    assert second.metadata.target == "fake/other"
    assert isinstance(second.metadata.attempts[0].error, RateLimitExceeded)
    with pytest.raises(RateLimitExceeded) as info:
        await gw.achat("strict", chat_request())
    assert info.value.scope == "target:fake/echo"


async def test_waiting_for_room_sleeps_on_the_clock(harness: Harness) -> None:
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, limits={"fake": {"rpm": 2, "tpm": 0, "max_wait": 120}})
    for _ in range(3):
        await gw.achat("fake/echo", chat_request())
    assert clock.now() == pytest.approx(61.0)  # the third call waited for the first slot (window + margin)


async def test_star_is_the_default_provider_table_not_a_per_model_cap(harness: Harness) -> None:
    """``[limits."*"]`` stands in for each provider without a table of its own: a provider with
    its own table is not also capped per model by it, and one without is capped as a whole."""
    limits = {"fake": {"rpm": 20, "tpm": 0, "max_wait": 0}, "*": {"rpm": 3, "tpm": 0, "max_wait": 0}}
    gw = harness.gateway(limits=limits)
    results = await asyncio.gather(*(gw.achat("fake/echo", chat_request()) for _ in range(10)))
    assert len(results) == 10 and len(upstream(gw).requests) == 10
    star_only = harness.gateway(limits={"*": {"rpm": 3, "tpm": 0, "max_wait": 0}})
    for model in ("fake/echo", "fake/other", "fake/echo"):
        await star_only.achat(model, chat_request())
    with pytest.raises(RateLimitExceeded) as info:            # the provider's total, across its models
        await star_only.achat("fake/third", chat_request())
    assert info.value.scope == "provider:fake"


async def test_a_call_that_waited_for_its_routes_room_is_not_refused_by_its_target_limit(
        harness: Harness) -> None:
    """A provider limit with room and a shorter max_wait counts only the wait it adds: the call
    that waited out its route's window goes (it used to be refused after the wait)."""
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         limits={"route:r": {"rpm": 1, "tpm": 0, "max_wait": 120},
                                 "fake": {"rpm": 1000, "tpm": 0, "max_wait": 1}})
    await gw.achat("r", chat_request())
    resp = await gw.achat("r", chat_request("waited"))
    assert resp.text == "waited" and clock.now() == pytest.approx(61.0)   # window + margin


async def test_key_limits_reject_at_once(harness: Harness) -> None:
    gw = harness.gateway()
    ctx = CallContext(key=KeyPolicy("k_team", rpm=2))
    for _ in range(2):
        await gw.achat("fake/echo", chat_request(), ctx)
    with pytest.raises(RateLimitExceeded) as info:
        await gw.achat("fake/echo", chat_request(), ctx)
    assert info.value.scope == "key:k_team"
    assert len(upstream(gw).requests) == 2


async def test_a_keys_changed_limits_apply_from_its_next_call(harness: Harness) -> None:
    """A (route, key) pair's buckets are worked out once and looked up per call: a key whose
    limits change (the server verifies it anew, with a new policy) must get its new buckets,
    not the old pair's — tighter ones at once, looser ones too."""
    gw = harness.gateway()
    await gw.achat("fake/echo", chat_request(), CallContext(key=KeyPolicy("k_moving", rpm=5)))
    with pytest.raises(RateLimitExceeded) as info:      # tightened to what it has used
        await gw.achat("fake/echo", chat_request(), CallContext(key=KeyPolicy("k_moving", rpm=1)))
    assert info.value.scope == "key:k_moving"
    await gw.achat("fake/echo", chat_request(), CallContext(key=KeyPolicy("k_moving", rpm=2)))
    with pytest.raises(RateLimitExceeded):               # tokens now: the tpm bucket is new, and small
        await gw.achat("fake/echo", chat_request(max_tokens=50), CallContext(key=KeyPolicy("k_moving", rpm=10, tpm=40)))
    await gw.achat("fake/echo", chat_request(), CallContext(key=KeyPolicy("k_moving")))   # no limits left
    assert len(upstream(gw).requests) == 3


async def test_a_tpm_given_to_a_key_later_counts_no_estimate_of_before(harness: Harness) -> None:
    """A key with only an rpm: its calls' token estimates (a large ``max_tokens``) are never
    settled against a tpm it does not have. Given a tpm later, its window starts empty (as in
    Redis, and as before the two-lane windows), not from estimates of 10,000 tokens for calls
    that used 8: such a key was refused for a minute after the change."""
    gw = harness.gateway()
    await gw.achat("fake/echo", chat_request(max_tokens=10_000), CallContext(key=KeyPolicy("k_grows", rpm=10)))
    await gw.achat("fake/echo", chat_request(max_tokens=100), CallContext(key=KeyPolicy("k_grows", rpm=10, tpm=5000)))
    assert len(upstream(gw).requests) == 2


async def test_a_keys_own_limits_do_not_stop_its_route_limit_from_waiting(harness: Harness) -> None:
    """A key with rpm/tpm of its own used to make the whole admission refuse rather than wait:
    the route's max_wait counted for keyless calls only."""
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         limits={"route:r": {"rpm": 1, "tpm": 0, "max_wait": 120}})
    ctx = CallContext(key=KeyPolicy("k_roomy", rpm=1000, tpm=10_000_000))
    await gw.achat("r", chat_request(), ctx)
    resp = await gw.achat("r", chat_request("waited"), ctx)
    assert resp.text == "waited" and clock.now() == pytest.approx(61.0)   # window + margin


async def test_a_full_key_refuses_at_once_though_its_route_may_wait(harness: Harness) -> None:
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         limits={"route:r": {"rpm": 1000, "tpm": 0, "max_wait": 120}})
    ctx = CallContext(key=KeyPolicy("k_one", rpm=1))
    await gw.achat("r", chat_request(), ctx)
    with pytest.raises(RateLimitExceeded) as info:
        await gw.achat("r", chat_request(), ctx)
    assert info.value.scope == "key:k_one" and info.value.retry_after == pytest.approx(61.0)
    assert clock.now() == 0.0 and len(upstream(gw).requests) == 1


async def test_key_allowed_models(harness: Harness) -> None:
    gw = harness.gateway(routes={"smart": {"targets": ["fake/echo"]}})
    ctx = CallContext(key=KeyPolicy("k_1", allowed_models=("fake/*",)))
    assert (await gw.achat("fake/echo", chat_request("ok"), ctx)).text == "ok"
    with pytest.raises(PermissionDeniedError) as info:
        await gw.achat("smart", chat_request(), ctx)
    assert "k_1" in str(info.value) and "smart" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.integers(1, 40), st.floats(0, 90)), min_size=1, max_size=60))
def test_rolling_window_property(ops: list[tuple[float, int, float]]) -> None:
    """Whatever the arrival pattern, amounts and wait bounds: no 60 s window holds more than the limit."""
    state = MemoryState()
    limit = 100.0
    now = 0.0
    admitted: list[tuple[float | None, int]] = []

    async def run() -> None:
        nonlocal now
        for gap, amount, max_wait in ops:
            now += gap
            grant = await state.take([Bucket("k", limit, amount)], now, max_wait)
            if grant.granted:
                assert grant.wait <= max_wait
                admitted.append((grant.at, amount))
            else:
                assert grant.wait > max_wait

    asyncio.run(run())
    for start, _ in admitted:
        assert start is not None
        assert sum(a for t, a in admitted if t is not None and start <= t < start + 60.0) <= limit


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["take", "settle", "release"]), st.floats(0, 20),
                          st.integers(0, 60), st.floats(0, 90)), min_size=1, max_size=80))
def test_running_totals_match_the_log(ops: list[tuple[str, float, int, float]]) -> None:
    """The memory backend keeps each window's sum as it goes (O(1) admission under load);
    whatever happens, it equals the sum of what the window holds."""
    state = MemoryState()
    now = 0.0
    tickets: list[str] = []

    async def run() -> None:
        nonlocal now
        for op, gap, amount, max_wait in ops:
            now += gap
            if op == "take" or not tickets:
                grant = await state.take([Bucket("k:tpm", 100.0, float(amount)), Bucket("k:rpm", 5.0, 1.0)],
                                         now, max_wait)
                if grant.ticket:
                    tickets.append(grant.ticket)
            elif op == "settle":
                await state.settle(tickets.pop(0), {"k:tpm": float(amount)})
            else:
                await state.release(tickets.pop())
            for log in state._logs.values():
                assert log.total == sum(e.amount for e in log.entries)

    asyncio.run(run())


async def test_a_call_larger_than_the_whole_token_limit_is_refused_at_once(harness: Harness) -> None:
    """Waiting for an empty window and letting it through would put more than the limit in that
    window: such a call is refused before anything is taken, and says no wait will help."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         limits={"r": {"rpm": 100, "tpm": 500, "max_wait": 300}})
    with pytest.raises(RateLimitExceeded) as info:
        await gw.achat("r", chat_request("tell me everything", max_tokens=2000))
    err = info.value
    assert err.never_fits and not err.retryable and err.retry_after is None
    assert err.scope == "route:r" and err.kind == "tpm" and "no wait lets it through" in str(err)
    assert upstream(gw).requests == [] and clock.now() == 0.0                   # sent nothing, waited for nothing
    assert await gw.state.usage("route:r:rpm", clock.now()) == 0.0              # and took nothing
    await gw.achat("r", chat_request("a short one", max_tokens=50))             # a call that fits still goes
    key = KeyPolicy("k_small", tpm=100)
    with pytest.raises(RateLimitExceeded, match="'key:k_small'") as info:
        await gw.achat("fake/echo", chat_request("x" * 2000, max_tokens=10), CallContext(key=key))
    assert info.value.never_fits


async def test_a_target_too_small_for_the_call_falls_back_to_one_that_fits(harness: Harness) -> None:
    from cloverleaf._errors import AllTargetsFailed

    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/small", "fake/big"]},
                                              "only": {"targets": ["fake/small"]}},
                         limits={"target:fake/small": {"tpm": 100, "max_wait": 300}})
    resp = await gw.achat("r", chat_request("needs room", max_tokens=1000))
    assert resp.metadata.target == "fake/big" and clock.now() == 0.0
    assert [a.target for a in resp.metadata.attempts] == ["fake/small", "fake/big"]
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("only", chat_request("needs room", max_tokens=1000))
    assert getattr(info.value.last_error, "never_fits", False)


async def test_a_refusal_for_size_says_when_the_routes_allowance_was_counted(harness: Harness) -> None:
    gw = harness.gateway(clock=ManualClock(), routes={"r": {"targets": ["fake/echo"], "output_estimate": 3000}},
                         limits={"r": {"tpm": 2000}})
    with pytest.raises(RateLimitExceeded, match="output_estimate of 3,000 tokens for a request that sets no max_tokens"):
        await gw.achat("r", chat_request("hi"))
    resp = await gw.achat("r", chat_request("hi", max_tokens=100))      # with its own bound it fits
    assert resp.content


#: 4,000 CJK Extension-B characters: 16,000 UTF-8 bytes, over 4,000 tokens in any byte-level BPE
#: (no tokenizer has merges for them); characters ÷ 4 put them at 1,000
EXT_B = "".join(chr(0x20000 + i) for i in range(4000))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cjk_prompt_larger_than_the_tpm_limit_is_refused_at_once(harness: Harness, stream: bool) -> None:
    """The estimate no longer under-counts non-ASCII text: a call whose prompt alone is more than
    the limit is a ``request_too_large`` at once (it was admitted, twice in one minute, at over
    ten times the limit), while ASCII keeps about four characters a token."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         limits={"r": {"tpm": 3000, "max_wait": 0}})
    req = chat_request(EXT_B, max_tokens=16)
    with pytest.raises(RateLimitExceeded) as info:
        if stream:
            async for _ in gw.astream("r", req):
                pass
        else:
            await gw.achat("r", req)
    assert info.value.never_fits and info.value.kind == "tpm"
    assert upstream(gw).requests == []
    english = "The quick brown fox jumps over the lazy dog. " * 180     # 8,100 ASCII characters
    assert (await gw.achat("r", chat_request(english, max_tokens=16))).content   # ~2,000 tokens: it fits


def test_the_estimate_bounds_non_ascii_text_by_its_bytes_and_keeps_ascii_at_four_characters() -> None:
    from cloverleaf._engine import Engine
    from cloverleaf._estimate import text_tokens

    assert Engine.estimate_tokens(chat_request(EXT_B)) >= len(EXT_B.encode())
    mixed = "naïve café, 東京 😀 " * 50
    ascii_part = sum(c.isascii() for c in mixed)
    other_bytes = len(mixed.encode()) - ascii_part
    assert text_tokens(mixed) >= other_bytes + ascii_part // 4
    assert text_tokens(mixed) <= other_bytes + ascii_part // 4 + 1
    assert text_tokens("x" * 4000) == 1001 and Engine.estimate_tokens(chat_request("x" * 4000)) < 1010


async def test_an_image_counts_for_tpm_by_its_targets_rule_not_a_flat_thousand(harness: Harness) -> None:
    """An image was 1,000 tokens for tpm whatever it bills (up to 48,169 at gpt-4o-mini, the
    most for a model the rules do not know); it counts what the budgets bound it at."""
    from cloverleaf._types import Attachment, ChatRequest, Message, Text

    image = ChatRequest(model="", max_tokens=16, messages=[Message.user([
        Attachment("https://example.com/cat.png", fetch="provider", type="image"), Text("what is it?")])])
    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"unknown": {"targets": ["fake/echo"]},
                                              "mini": {"targets": ["fake/gpt-4o-mini"]},
                                              "omni": {"targets": ["fake/gpt-4o"]}},
                         limits={"unknown": {"tpm": 20_000, "max_wait": 0}, "mini": {"tpm": 20_000, "max_wait": 0},
                                 "omni": {"tpm": 20_000, "max_wait": 0}})
    for route in ("unknown", "mini"):
        with pytest.raises(RateLimitExceeded) as info:
            await gw.achat(route, image)
        assert info.value.never_fits
    assert upstream(gw).requests == []
    await gw.achat("omni", image)     # gpt-4o bills an image at most 1,445 tokens: it fits
