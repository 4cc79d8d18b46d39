"""Fault injection over real HTTP: a flaky OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf._errors import AllTargetsFailed, InvalidRequestError, StreamInterrupted
from cloverleaf._types import StreamEvent
from cloverleaf.gateway import Gateway, SystemClock

from .conftest import Harness, chat_request
from .flaky_upstream import FlakyUpstream

KEY = "sk-flaky-test-key-0123456789"
ANSWER = "word0 word1 word2 word3 word4 word5"


@pytest.fixture
def flaky() -> Iterator[FlakyUpstream]:
    server = FlakyUpstream().start()
    yield server
    server.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gateway(harness: Harness, flaky: FlakyUpstream, routes: dict[str, object], **kwargs: object) -> Gateway:
    providers = {
        "flaky": ProviderSettings(name="flaky", kind="openai", base_url=flaky.base_url, api_key_env="FLAKY_KEY",
                                  timeout=1.0),
        "dead": ProviderSettings(name="dead", kind="openai", base_url=f"http://127.0.0.1:{_closed_port()}/v1",
                                 api_key_env="FLAKY_KEY"),
    }
    settings = harness.settings(routes=routes, providers=providers, env={"FLAKY_KEY": KEY}, **kwargs)  # type: ignore[arg-type]
    return harness.gateway(settings, clock=SystemClock())


async def test_500_falls_back_to_next_target(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"]}})
    flaky.then("status", status=500)
    resp = await gw.achat("r", chat_request())
    assert resp.text == ANSWER and resp.metadata.target == "flaky/model-b"
    assert [r["model"] for r in flaky.requests] == ["model-a", "model-b"]


async def test_429_with_retry_after_is_retried_on_the_same_target(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"], "retries": 1}})
    flaky.then("status", status=429, headers={"retry-after": "0"})
    resp = await gw.achat("r", chat_request())
    assert resp.metadata.target == "flaky/model-a"
    assert [r["model"] for r in flaky.requests] == ["model-a", "model-a"]
    assert resp.metadata.attempts[0].error.retry_after == 0


async def test_an_error_marked_x_should_retry_false_is_not_retried_but_falls_back(harness: Harness,
                                                                                 flaky: FlakyUpstream) -> None:
    """The upstream's own ``x-should-retry: false`` is followed as the SDK's transport follows
    it: no same-target retry, though the route's table still moves the call on."""
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"], "retries": 2}})
    flaky.then("status", status=500, headers={"x-should-retry": "false"})
    resp = await gw.achat("r", chat_request())
    assert [r["model"] for r in flaky.requests] == ["model-a", "model-b"]
    assert resp.metadata.target == "flaky/model-b" and resp.metadata.attempts[0].error.should_retry is False


async def test_an_error_marked_x_should_retry_true_is_retried_within_the_routes_retries(harness: Harness,
                                                                                      flaky: FlakyUpstream) -> None:
    """``x-should-retry: true`` retries what the table would not (a 400), as the SDK does; an
    error that is never a reason to fall back is still raised once the retries are spent."""
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"], "retries": 1}})
    flaky.then("status", status=400, headers={"x-should-retry": "true"})
    resp = await gw.achat("r", chat_request())
    assert [r["model"] for r in flaky.requests] == ["model-a", "model-a"] and resp.metadata.target == "flaky/model-a"
    flaky.then("status", status=400, headers={"x-should-retry": "true"}, times=2)
    with pytest.raises(InvalidRequestError):
        await gw.achat("r", chat_request())
    assert [r["model"] for r in flaky.requests[2:]] == ["model-a", "model-a"]


async def test_long_retry_after_falls_back_at_once(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"], "retries": 3}})
    flaky.then("status", status=429, headers={"retry-after": "3600"})
    resp = await gw.achat("r", chat_request())
    assert [r["model"] for r in flaky.requests] == ["model-a", "model-b"]
    assert resp.metadata.target == "flaky/model-b"


async def test_hang_times_out_and_falls_back_to_another_provider(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "fake/echo"]}})
    flaky.then("hang")
    resp = await gw.achat("r", chat_request("after the hang"))
    assert resp.text == "after the hang" and resp.metadata.target == "fake/echo"
    assert type(resp.metadata.attempts[0].error).__name__ == "ReadTimeout"


async def test_connection_refused_and_malformed_json(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["dead/model-x", "flaky/model-a", "flaky/model-b"]}})
    flaky.then("garbage")
    resp = await gw.achat("r", chat_request())
    assert [type(a.error).__name__ if a.error else "ok" for a in resp.metadata.attempts] == [
        "ConnectError", "MalformedResponseError", "ok"]
    assert resp.text == ANSWER


async def test_stream_reset_before_output_falls_back(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"]}})
    flaky.then("reset", after=0)
    events = [e async for e in gw.astream("r", chat_request())]
    assert "".join(e.text or "" for e in events if e.type == "text") == ANSWER
    assert events[-1].response.metadata.target == "flaky/model-b"


async def test_stream_reset_after_output_is_interrupted_never_repeated(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"]}})
    flaky.then("reset", after=3)
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted):
        async for event in gw.astream("r", chat_request()):
            events.append(event)
    assert "".join(e.text or "" for e in events if e.type == "text") == "word0 word1 word2"
    assert len(flaky.requests) == 1


@pytest.mark.parametrize("after", ["drop-after-done", "stall-after-done"])
async def test_a_stream_complete_at_done_is_ok_whatever_the_connection_does_next(
        harness: Harness, flaky: FlakyUpstream, after: str) -> None:
    """The whole answer, its usage and [DONE], then the upstream drops the connection before the
    chunked body's end, or keeps it open: the call is a success at the reported usage (its record
    and the budget at the real cost, not an interrupted call charged its reservation)."""
    priced = ProviderSettings(name="flaky", kind="openai", base_url=flaky.base_url, api_key_env="FLAKY_KEY",
                              timeout=1.0, input_cost_per_1k=1.0, output_cost_per_1k=2.0)
    settings = harness.settings(routes={"r": {"targets": ["flaky/model-a", "flaky/model-b"]}},
                                providers={"flaky": priced}, env={"FLAKY_KEY": KEY}, budgets={"r": {"limit_usd": 10.0}})
    gw = harness.gateway(settings, clock=SystemClock())
    flaky.then(after)
    events = [e async for e in gw.astream("r", chat_request())]
    done = events[-1].response
    assert "".join(e.text or "" for e in events if e.type == "text") == ANSWER == done.text
    assert done.metadata.target == "flaky/model-a" and len(flaky.requests) == 1
    assert (done.usage.input_tokens, done.usage.output_tokens) == (4, 6)  # what the upstream's usage chunk said
    cost = (4 * 1.0 + 6 * 2.0) / 1000
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert (call.status, call.error_type, call.input_tokens, call.output_tokens) == ("ok", None, 4, 6)
    assert call.cost == pytest.approx(cost)
    [budget] = await gw.budgets.status()
    assert (budget.spent_usd, budget.reserved_usd) == (pytest.approx(cost), 0.0)


async def test_everything_failing_over_http(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "dead/model-x"]}})
    flaky.then("status", status=503)
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("r", chat_request())
    assert [(a.target, a.status) for a in info.value.attempts] == [("flaky/model-a", 503), ("dead/model-x", None)]
    assert KEY not in str(info.value)


def test_sync_gateway_over_http(harness: Harness, flaky: FlakyUpstream) -> None:
    gw = _gateway(harness, flaky, {"r": {"targets": ["flaky/model-a", "flaky/model-b"]}})
    flaky.then("status", status=502)
    assert gw.chat("r", chat_request()).metadata.target == "flaky/model-b"
