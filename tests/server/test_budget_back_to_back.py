"""A virtual key's budget under calls sent back to back on one connection, and by a few clients
at once, through the server and the official openai SDK: the server settles a call (charges
its real cost, gives back the rest of its reservation) just after the answer is sent, so the
next call is often admitted before that. It is admitted against the reservation still held,
which is never less than the call's cost, so the key never spends past its budget and a call
after the budget is spent gets a 402 — with the counters in memory, in Redis, or in the store
(``[state] budgets = "store"``). A provider that bills past what the call reserved (output
beyond ``max_tokens``) is charged what it billed: the budget is passed by that call's excess,
and every call after it gets a 402. Measured by a mock upstream that reports a known usage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from cloverleaf._config import ModelEntry, ProviderSettings

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

#: $1 per 1,000 tokens in and out: an answer of 5 + 15 tokens costs $0.02
PRICE = ModelEntry(name="metered", provider="mock", identifier="m-1", input_cost_per_1k=1.0, output_cost_per_1k=1.0)
BUDGET = 0.31
MAX_TOKENS = 20


class FixedUsage:
    """An OpenAI-compatible upstream whose every answer reports ``prompt`` + ``completion`` tokens."""

    def __init__(self) -> None:
        self.prompt, self.completion, self.calls = 5, 15, 0
        self._lock = threading.Lock()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with up._lock:
                    up.calls += 1
                out = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m-1",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "ok"}}],
                                  "usage": {"prompt_tokens": up.prompt, "completion_tokens": up.completion,
                                            "total_tokens": up.prompt + up.completion}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def cost(self) -> float:
        return (self.prompt + self.completion) / 1000

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def upstream() -> Iterator[FixedUsage]:
    up = FixedUsage()
    yield up
    up.close()


def _server(up: FixedUsage, state: dict[str, Any]) -> Live:
    return start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER, "MOCK_KEY": "k"}, models=[PRICE], state=state,
                               providers={"mock": ProviderSettings("mock", kind="openai", base_url=up.url,
                                                                   api_key_env="MOCK_KEY")}))


def _redis() -> dict[str, Any]:
    from ..gateway.redis_support import fresh_prefix, redis_url

    return {"url": redis_url(), "prefix": fresh_prefix()}


@pytest.fixture(params=[pytest.param(lambda: {}, id="memory"),
                        pytest.param(lambda: {"budgets": "store"}, id="store"),
                        pytest.param(_redis, id="redis", marks=pytest.mark.redis)])
def live(request: pytest.FixtureRequest, upstream: FixedUsage) -> Iterator[Live]:
    server = _server(upstream, request.param())
    yield server
    stop_live(server)


def _spend_down(live: Live, key: str, clients: int) -> list[int | str]:
    """Each client sends calls back to back on its own connection until one is refused."""
    outcomes: list[int | str] = []

    def client() -> None:
        sdk = live.openai(key)
        for n in range(30):
            try:
                sdk.chat.completions.create(model="metered", max_tokens=MAX_TOKENS,
                                            messages=[{"role": "user", "content": f"q{n}"}])
            except openai.APIStatusError as refused:
                outcomes.append(refused.status_code)
                return
            outcomes.append("ok")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _spent(live: Live, key_id: str) -> float:
    live.state.backend.store.flush()
    with live.http(MASTER) as http:
        return float(http.get(f"/admin/keys/{key_id}").json()["spent"])


@pytest.mark.parametrize("clients", [1, 4])
def test_back_to_back_calls_never_spend_past_the_budget(live: Live, upstream: FixedUsage, clients: int) -> None:
    key = create_key(live, name=f"tight-{clients}", budget=BUDGET)
    outcomes = _spend_down(live, key["key"], clients)
    # a client refused while others' reservations were held may find room once they settled:
    # one client then spends what is left, back to back, until it too is refused
    _spent(live, key["id"])   # a read that waits for every answered call's settlement
    outcomes += _spend_down(live, key["key"], 1)
    answered = outcomes.count("ok")
    assert answered >= 5 and upstream.calls == answered
    assert [o for o in outcomes if o != "ok"] == [402] * (clients + 1)
    assert _spent(live, key["id"]) == pytest.approx(answered * upstream.cost)
    assert answered * upstream.cost <= BUDGET
    with pytest.raises(openai.APIStatusError) as after:
        live.openai(key["key"]).chat.completions.create(model="metered", max_tokens=MAX_TOKENS,
                                                        messages=[{"role": "user", "content": "one more"}])
    assert after.value.status_code == 402 and upstream.calls == answered


def test_a_call_billed_past_its_reservation_passes_the_budget_by_its_excess_only(live: Live,
                                                                                 upstream: FixedUsage) -> None:
    """Output past ``max_tokens`` (what README's reservation assumes no provider bills): the
    call is charged what the provider billed; the overspend is that call's excess over its
    reservation, and nothing is sent after it."""
    upstream.completion = 200                    # $0.205 a call, on a reservation of less
    key = create_key(live, name="overrun", budget=BUDGET)
    outcomes = _spend_down(live, key["key"], 1)
    answered = outcomes.count("ok")
    spent = _spent(live, key["id"])
    assert outcomes[-1] == 402 and upstream.calls == answered == 2
    assert spent == pytest.approx(answered * upstream.cost) and BUDGET < spent < BUDGET + upstream.cost
