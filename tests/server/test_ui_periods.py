"""What the Overview and Spend pages count: exactly "the last N" as the admin API and the CLI
do, a "(none)" row's link listing the calls it counted, unknown costs shown as unknown, and
times said to be UTC."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloverleaf.gateway.store import AttemptRecord, CallRecord
from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import sign_in

OVERVIEW = {"hour": 3600, "day": 86400, "month": 30 * 86400}
SPEND = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400, "quarter": 90 * 86400}
MARGIN = 120.0   # seconds between a seeded call and a period's start: far more than a page takes


def _call(call_id: str, at: float, cost: float | None, **kw: object) -> CallRecord:
    fields: dict[str, object] = {"target": "fake/echo", "provider": "fake", "status": "ok", "latency_ms": 5.0,
                                 "input_tokens": 10, "output_tokens": 5,
                                 "attempts": [AttemptRecord("fake/echo", "fake", True, None, None, 200, 4.0)]}
    fields.update(kw)
    return CallRecord(id=call_id, created_at=at, operation="chat", requested_model="fake/echo", cost=cost,
                      **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """Around the start of every period: a call just inside it and a dearer one just before."""
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    store = server.state.backend.store
    now = time.time()
    for seconds in sorted({*OVERVIEW.values(), *SPEND.values()}):
        store.record_call(_call(f"call_in_{seconds}", now - seconds + MARGIN, 1.0))
        store.record_call(_call(f"call_out_{seconds}", now - seconds - MARGIN, 10.0))
    store.flush()
    yield server
    stop_live(server)


def _truth(live: Live, seconds: int) -> tuple[int, float]:
    """Calls and cost since exactly now - seconds, as /admin/spend (and `cloverleaf spend`) count."""
    with live.http(MASTER) as http:
        rows = http.get("/admin/spend", params={"by": "route", "since": time.time() - seconds}).json()["data"]
    return sum(r["calls"] for r in rows), sum(r["cost"] for r in rows)


def _usd(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


@pytest.mark.parametrize("window", OVERVIEW)
def test_the_overview_counts_exactly_its_period(live: Live, window: str) -> None:
    """"Last 24 hours" was the current hour and the 23 before it: a call 23 h 58 min ago was
    left out, and the Spend page, which started at the top of the hour, counted one 24 h 2 min ago."""
    page = sign_in(live).get("/ui", params={"window": window}).text
    kpis = dict(re.findall(r'<span class="label">([^<]+)</span><span class="value[^"]*">([^<]+)</span>', page))
    calls, cost = _truth(live, OVERVIEW[window])
    assert (int(kpis["Requests"]), _usd(kpis["Spend"])) == (calls, pytest.approx(cost))
    route = page[page.index("<h2>By route</h2>"):]
    cells = re.findall(r'<td class="num[^"]*">([^<]+)</td>', route[:route.index("</tr>", route.index("<tbody>"))])
    assert (int(cells[0]), _usd(cells[-1])) == (calls, pytest.approx(cost))
    # the chart's requests add up to the same total
    chart = re.search(r'<desc id="cd\d+">Total ([\d,]+)', page).group(1)  # type: ignore[union-attr]
    assert int(chart.replace(",", "")) == calls


@pytest.mark.parametrize("period", SPEND)
def test_the_spend_page_counts_exactly_its_period(live: Live, period: str) -> None:
    page = sign_in(live).get("/ui/spend", params={"period": period}).text
    section = page[page.index('id="h-route"'):]
    calls, tokens, spend = re.findall(r'<td class="num">([^<]+)</td>', section[:section.index("</tr>",
                                                                               section.index("<tbody>"))])
    assert (int(calls), _usd(spend)) == (_truth(live, SPEND[period])[0], pytest.approx(_truth(live, SPEND[period])[1]))


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_periods_queries_start_exactly_n_before_now(kind: str, tmp_path: Path) -> None:
    """The same rule at a fixed instant (half past an hour and half a minute), so a call ten
    seconds inside or outside each period tells: every window and period, every grain, on
    both databases."""
    with store_url(kind, tmp_path) as url:
        _check_exact_periods(start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url})))


def _check_exact_periods(server: Live) -> None:
    from cloverleaf.server.ui import queries

    try:
        store, engine = server.state.backend.store, server.state.backend.store.engine
        now = time.time() // 3600 * 3600 - 3600 + 1830.5
        periods = sorted({*OVERVIEW.values(), *SPEND.values()})
        for seconds in periods:
            store.record_call(_call(f"call_in_{seconds}", now - seconds + 10, 1.0))
            store.record_call(_call(f"call_out_{seconds}", now - seconds - 10, 10.0))
        store.flush()
        for seconds in periods:
            [truth] = store.spend("route", since=now - seconds)
            for dim in ("route", "project"):
                [row] = queries.spend_by(engine, dim, now - seconds, now)
                assert (row.requests, row.cost) == (truth.calls, pytest.approx(truth.cost)), (seconds, dim)
            assert queries.cost_of(engine, "route", ["fake/echo"], now - seconds, now) == {
                "fake/echo": pytest.approx(truth.cost)}
        for name, seconds in OVERVIEW.items():
            [truth] = store.spend("route", since=now - seconds)
            window = queries.WINDOWS[name]
            total = queries.combine(s for _, s in queries.series(engine, window, now))
            [by_route] = queries.breakdown(engine, window, now, "route")
            for stats in (total, by_route):
                assert (stats.requests, stats.cost) == (truth.calls, pytest.approx(truth.cost)), name
    finally:
        stop_live(server)


def test_the_keys_page_spend_is_over_exactly_30_days() -> None:
    from .conftest import create_key

    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    try:
        key = create_key(server, name="edge")
        now = time.time()
        store = server.state.backend.store
        store.record_call(_call("call_key_in", now - 30 * 86400 + MARGIN, 1.0, key_id=key["id"]))
        store.record_call(_call("call_key_out", now - 30 * 86400 - MARGIN, 10.0, key_id=key["id"]))
        store.flush()
        page = sign_in(server).get("/ui/keys").text
        row = page[page.index(f">{key['id']}</a>"):]
        assert re.findall(r'<td class="num">([^<]*)</td>', row[:row.index("</tr>")]) == ["$1"]
    finally:
        stop_live(server)


def test_a_none_rows_link_lists_the_calls_it_counted() -> None:
    """The "(none)" row linked to ``?model=`` (an empty filter, so no filter): every call."""
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    try:
        store = server.state.backend.store
        now = time.time()
        for i in range(3):
            store.record_call(_call(f"call_ok_{i}", now - 60 - i, 0.001, key_id="key_0123456789abcdef"))
        store.record_call(_call("call_refused", now - 30, None, target=None, provider=None, status="error",
                                attempts=[], error_type="BudgetExceeded"))
        # the same kind of call, but two days ago: outside "Last 24 hours"
        store.record_call(_call("call_refused_old", now - 2 * 86400, None, target=None, provider=None,
                                status="error", attempts=[], error_type="BudgetExceeded"))
        store.flush()
        http = sign_in(server)
        page = http.get("/ui", params={"window": "day"}).text
        for title in ("By provider", "By model", "By key"):
            card = page[page.index(f"<h2>{title}</h2>"):]
            card = card[:card.index("</table>")]
            href, counted = re.search(r'<a href="([^"]+)">\(none\)</a>.*?<td class="num">([^<]+)</td>',
                                      card, re.S).groups()  # type: ignore[union-attr]
            listed = re.findall(r'href="/ui/traces/call/([^"]+)"', http.get(html.unescape(href)).text)
            assert (int(counted), listed) == (1, ["call_refused"]), (title, href)
        # the filter is a value like any other in the Traces form
        listed = http.get("/ui/traces", params={"model": "(none)"}).text
        assert re.findall(r'href="/ui/traces/call/([^"]+)"', listed) == ["call_refused", "call_refused_old"]
    finally:
        stop_live(server)


def test_a_traces_unknown_cost_is_not_zero() -> None:
    """A trace whose calls all had an unknown cost showed "$0"."""
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    try:
        store = server.state.backend.store
        now = time.time()
        store.record_call(_call("call_u1", now - 5, None, trace_id="tr_unknown", status="cancelled"))
        store.record_call(_call("call_m1", now - 5, None, trace_id="tr_mixed", status="cancelled"))
        store.record_call(_call("call_m2", now - 4, 0.5, trace_id="tr_mixed"))
        store.record_call(_call("call_k1", now - 4, 0.25, trace_id="tr_known"))
        store.flush()
        http = sign_in(server)

        def cost(trace: str) -> str:
            page = http.get(f"/ui/traces/trace/{trace}").text
            kpi = page[page.index('<span class="label">Cost</span>'):]
            return re.sub(r"<[^>]+>", " ", kpi[:kpi.index("</div>")]).split(None, 1)[1].strip()

        assert cost("tr_unknown") == "—"
        assert cost("tr_mixed") == "$0.5  (some costs unknown)"
        assert cost("tr_known") == "$0.25"
    finally:
        stop_live(server)


def test_chart_and_period_times_say_they_are_utc(live: Live) -> None:
    """The charts' axes were UTC hours with no zone anywhere on the page."""
    http = sign_in(live)
    for window in OVERVIEW:
        page = http.get("/ui", params={"window": window}).text
        charts = re.findall(r"<svg class=\"chart\".*?</svg>", page, re.S)
        assert len(charts) == 4
        for chart in charts:
            assert '<text class="axis zone"' in chart and ">UTC</text>" in chart
            tips = re.findall(r"<title>([^<]+)</title></(?:rect|circle)>", chart)
            assert tips and all(re.match(r"^\S+( \d\d)? UTC: ", tip) for tip in tips), tips[:3]
        assert re.search(r"from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to", page)
    spend = http.get("/ui/spend").text
    assert "days and months are UTC" in spend and re.search(r"from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to", spend)
