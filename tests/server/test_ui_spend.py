"""The Spend page's budgets while calls are in flight: spent and reserved as admission sees
them (the state backend's counters, ``[state] budgets = "state"``, the default), and the 402
a call gets when the room is held by others."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from cloverleaf._config import ModelEntry

from .conftest import MASTER, PRICED, Live, create_key, settings, start_live, stop_live
from .ui_support import sign_in

#: never answers (until the caller hangs up); $1 per 1k tokens in and out
PRICED_HANG = ModelEntry(name="priced-hang", identifier="hang", provider="fake", input_cost_per_1k=1.0,
                         output_cost_per_1k=1.0)
BODY = {"model": "hang-route", "max_tokens": 600, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, models=[PRICED_HANG],
                 routes={"hang-route": {"targets": ["priced-hang"]}},
                 budgets={"hang-route": {"limit_usd": 1000.0, "period": "day"}}, timeout=120.0)
    server = start_live(s)
    yield server
    stop_live(server)


def _in_flight(live: Live, key: str) -> socket.socket:
    """A call sent with ``key`` and left hanging upstream (reserved, not settled); closing the
    returned socket hangs up, which cancels it."""
    payload = json.dumps(BODY).encode()
    served = live.fake.served
    sock = socket.create_connection(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (key.encode(), len(payload), payload))
    deadline = time.monotonic() + 15
    while live.fake.served == served:
        assert time.monotonic() < deadline, "the call never reached the upstream"
        time.sleep(0.01)
    return sock


def _row(page: str, scope: str) -> list[str]:
    """The budget row's cells (limit, spent, reserved, left ...) as the page shows them."""
    start = page.index(f"<th scope=\"row\">{scope}")
    row = page[start:page.index("</tr>", start)]
    return re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)


def test_reservations_of_calls_in_flight_show_on_the_spend_page_and_in_the_402(live: Live) -> None:
    """Both the route rows and the key rows read the store's ledger, which the default state
    backend never tells of a reservation: while a call held $0.60 of a key's $1 budget and a
    second call was refused for lack of room, the page said reserved $0 and left $1; and the
    402 called the other call's reservation "reserved for this call"."""
    key = create_key(live, name="spender", budget=1.0, budget_period="day")
    ui = sign_in(live)
    hanging = _in_flight(live, key["key"])
    try:
        page = ui.get("/ui/spend").text
        limit, spent, reserved, left = _row(page, f"key:{key['id']}")
        assert (limit, spent) == ("$1", "$0") and reserved.startswith("$0.6") and left.startswith("$0.3"), _row(
            page, f"key:{key['id']}")
        route_limit, _, route_reserved, _ = _row(page, "route:hang-route")
        assert route_limit == "$1,000.00" and route_reserved == reserved
        refused = httpx.post(f"{live.url}/v1/chat/completions", json=BODY, timeout=30,
                             headers={"authorization": f"Bearer {key['key']}"})
        assert refused.status_code == 402
        message: str = refused.json()["error"]["message"]
        assert "reserved by calls in flight" in message and "this call needs up to $0.6" in message, message
        assert "reserved for this call" not in message
    finally:
        hanging.close()


def test_a_budget_no_call_has_needed_yet_reads_the_ledger(live: Live) -> None:
    """A counter the state backend does not hold (no call with this key since the server
    started) is read from the store: what earlier processes spent is still shown."""
    key = create_key(live, name="old-spender", budget=5.0)
    store = live.state.backend.store
    store.record_spend(f"key:{key['id']}", "total", 1.25)
    store.flush()
    page = sign_in(live).get("/ui/spend").text
    assert _row(page, f"key:{key['id']}")[:3] == ["$5", "$1.25", "$0"]


def test_a_budget_on_a_model_id_is_shown_and_refused_as_the_models() -> None:
    """``[budgets."fake/echo"]`` caps the model by every name that reaches it (README), not a
    route of that name; the page listed it as ``route:fake/echo``. A budget on a route keeps
    its ``route:`` label, and the 402 names each budget as the page does."""
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, models=[PRICED_HANG, PRICED],
                 routes={"hang-route": {"targets": ["priced-hang"]}},
                 budgets={"hang-route": {"limit_usd": 1000.0}, "fake/echo": {"limit_usd": 0.001}})
    server = start_live(s)
    try:
        page = sign_in(server).get("/ui/spend").text
        assert _row(page, "model:fake/echo")[0] == "$0.001" and _row(page, "route:hang-route")[0] == "$1,000.00"
        assert "route:fake/echo" not in page
        refused = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,   # "priced" is a name of fake/echo
                             headers={"authorization": f"Bearer {MASTER}"},
                             json={"model": "priced", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 402, refused.text
        error = refused.json()["error"]
        assert error["scope"] == "model:fake/echo" and "budget 'model:fake/echo'" in error["message"], error
    finally:
        stop_live(server)
