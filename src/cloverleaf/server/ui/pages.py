"""The read-only pages: Overview, Traces (list, call, trace), Spend and budgets, Health."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..._errors import redact
from ...gateway.budget import BudgetScope
from ...gateway.model_budgets import model_named, reader_canonical, targets_meaning
from ...gateway.store.keyset import cursor_of
from ..admin_api import page_after
from ..errors import BadRequest, NotFound
from . import charts, queries
from .session import Session
from .web import Web, fmt_ms, fmt_num, fmt_usd

BREAKDOWNS = (("provider", "By provider"), ("model", "By model"), ("route", "By route"), ("key", "By key"))
#: keys' budgets per page of the Spend page (the configured budgets are on the first)
BUDGETS_PAGE = 100
SPEND_PERIODS = {"day": ("Last 24 hours", 86400), "week": ("Last 7 days", 7 * 86400),
                 "month": ("Last 30 days", 30 * 86400), "quarter": ("Last 90 days", 90 * 86400)}


def _keys_after(raw: str | None) -> tuple[float, str] | None:
    """The Spend page's ``keys_after``, a page of key budgets' cursor. A bad one was refused as
    the admin API's ``after`` ("leave 'after' out for the first page"), a parameter this page's
    address does not have."""
    try:
        return page_after(raw)
    except BadRequest:
        raise BadRequest("keys_after: not a cursor of the key budgets' pages; follow the page's \"Older keys' "
                         "budgets\" link (leave keys_after out for the first page)", param="keys_after",
                         code="invalid_cursor") from None


class Pages:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.st = web.st
        self.engine = web.st.backend.store.engine

    # -- overview -------------------------------------------------------------------------
    async def overview(self, request: Request, session: Session) -> Response:
        window = queries.WINDOWS.get(request.query_params.get("window", "day"), queries.WINDOWS["day"])
        now = time.time()

        # the queries are independent: run them side by side (SQLite and PostgreSQL both read
        # concurrently, and the driver releases the GIL while the database works)
        results: list[Any] = await asyncio.gather(
            asyncio.to_thread(queries.series, self.engine, window, now),
            *(asyncio.to_thread(queries.breakdown, self.engine, window, now, dim,
                                MODEL_VALUES if dim == "model" else 10) for dim, _ in BREAKDOWNS))
        steps, parts_list = results[0], results[1:]
        parts = dict(zip((dim for dim, _ in BREAKDOWNS), parts_list))
        parts["model"] = by_model(parts["model"], reader_canonical(self.st.backend.engine))[:10]
        total = queries.combine(s for _, s in steps)
        since = window.since(now)
        # the first step is cut where the window starts: it is labelled with that time
        labels = [_step_label(window, max(t, since)) for t, _ in steps]
        stats = [s for _, s in steps]
        figures = {
            "requests": charts.bars(f"Requests, {window.label.lower()}", labels, [s.requests for s in stats],
                                    fmt=fmt_num, overlay=[s.errors for s in stats], overlay_name="errors",
                                    zone="UTC"),
            "latency": charts.lines(f"Latency p50 and p95, {window.label.lower()}", labels,
                                    [("p50", "line", [s.p50 for s in stats]),
                                     ("p95", "line-alt", [s.p95 for s in stats])], fmt=fmt_ms, zone="UTC"),
            "tokens": charts.bars(f"Tokens, {window.label.lower()}", labels, [s.tokens for s in stats], fmt=fmt_num,
                                  zone="UTC"),
            "spend": charts.bars(f"Spend, {window.label.lower()}", labels, [s.cost for s in stats], fmt=fmt_usd,
                                 zone="UTC"),
        }
        return self.web.render(request, "overview.html", session, page="overview", window=window,
                               windows=queries.WINDOWS, total=total, figures=figures, since=since, now=now,
                               window_hours=f"{window.step * window.points / 3600:g}",
                               breakdowns=[(dim, title, parts[dim]) for dim, title in BREAKDOWNS])

    # -- traces ---------------------------------------------------------------------------
    async def traces(self, request: Request, session: Session) -> Response:
        q = request.query_params
        filters = {name: q.get(name, "").strip()[:255] for name in queries.FILTERS}
        since = _hours_ago(q.get("hours"))
        store, canonical = self.st.backend.store, reader_canonical(self.st.backend.engine)

        def read() -> queries.Page:
            model = filters["model"]   # every call its Overview row and /admin/spend?by=model count
            wanted = model and model != queries.NONE
            targets = targets_meaning(model, store.call_targets(), canonical) if wanted else ()
            return queries.list_calls(self.engine, filters, since=since, cursor=q.get("after"), model_targets=targets)

        page = await asyncio.to_thread(read)
        kept = {k: v for k, v in filters.items() if v}
        if q.get("hours"):
            kept["hours"] = q["hours"]
        return self.web.render(request, "traces.html", session, page="traces", rows=page.rows, filters=filters,
                               hours=q.get("hours", ""), next_cursor=page.next_cursor, kept=kept,
                               statuses=("ok", "error", "interrupted", "cancelled"))

    async def call(self, request: Request, session: Session) -> Response:
        call_id = request.path_params["call_id"]
        call = await asyncio.to_thread(queries.get_call, self.engine, call_id)
        if call is None:
            raise NotFound(f"no call {call_id!r} (it may not be written yet, or was removed by retention)")
        labels = {k: v for k, v in call.metadata.items() if k not in ("prompt", "answer", "response")}
        metadata = redact(json.dumps(labels, indent=2, default=str)) if labels else None
        content = {name: redact(str(call.metadata[name])) for name in ("prompt", "answer", "response")
                   if call.metadata.get(name)}
        overhead = _overhead(call)
        return self.web.render(request, "call.html", session, page="traces", call=call, overhead=overhead,
                               metadata=metadata, content=content, error_message=redact(call.error_message),
                               attempts=[(a, redact(a.error_message)) for a in call.attempts])

    async def trace(self, request: Request, session: Session) -> Response:
        trace_id = request.path_params["trace_id"]
        rows, head = await asyncio.gather(asyncio.to_thread(queries.trace_calls, self.engine, trace_id),
                                          asyncio.to_thread(queries.trace_row, self.engine, trace_id))
        if not rows and head is None:
            raise NotFound(f"no trace {trace_id!r}")
        cost, some_unknown = known_cost(r.cost for r in rows)
        return self.web.render(request, "trace.html", session, page="traces", trace_id=trace_id, rows=rows,
                               head=head, cost=cost, some_unknown=some_unknown,
                               tokens=sum(r.input_tokens + r.output_tokens for r in rows))

    # -- spend and budgets ----------------------------------------------------------------
    async def spend(self, request: Request, session: Session) -> Response:
        period = request.query_params.get("period", "month")
        label, seconds = SPEND_PERIODS.get(period, SPEND_PERIODS["month"])
        now = time.time()

        after = _keys_after(request.query_params.get("keys_after"))
        dims = ("route", "key", "project")
        *found, (budgets, next_keys) = await asyncio.gather(
            *(asyncio.to_thread(queries.spend_by, self.engine, dim, now - seconds, now) for dim in dims),
            self._budgets(after))
        by = dict(zip(dims, found))
        return self.web.render(request, "spend.html", session, page="spend", period=period, periods=SPEND_PERIODS,
                               period_label=label, by=by, budgets=budgets, since=now - seconds, now=now,
                               keys_after=after is not None, next_keys=next_keys, spend_rows=queries.SPEND_ROWS)

    async def _budgets(self, after: tuple[float, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """The budgets with their current period: the configured ones (routes, models, projects)
        and a page of keys' (newest keys first, ``BUDGETS_PAGE`` a page, after ``after``), and
        the next page's cursor. Spent and reserved are read where admission keeps them
        (``Budgets.usage``: the state backend's counters by default), so "reserved" is what
        calls in flight hold right now.

        A page, because each budget is a read of its own (a counter, else a ledger row): every
        key's budget at once made the page take a second with 700 budgeted keys."""
        budgets = self.st.backend.gateway.budgets
        keyed = (await self.st.keys.list(include_revoked=False, after=after, limit=BUDGETS_PAGE + 1,
                                         newest_first=True, budgeted=True) if self.st.keys is not None else [])
        more, keyed = len(keyed) > BUDGETS_PAGE, keyed[:BUDGETS_PAGE]
        scopes = [BudgetScope(f"key:{k.id}", float(k.budget), k.budget_period or "total") for k in keyed]
        statuses = await budgets.usage([*(budgets.configured() if after is None else ()), *scopes])
        names = {f"key:{k.id}": k.name for k in keyed}
        rows = []
        for b in statuses:
            row = _budget_row(budgets.label(b.key), b.period_key, b.limit_usd, b.spent_usd, b.reserved_usd)
            row["name"] = names.get(b.key)
            rows.append(row)
        return rows, cursor_of(keyed[-1].created_at, keyed[-1].id) if more else None

    # -- health ---------------------------------------------------------------------------
    async def health(self, request: Request, session: Session) -> Response:
        return self.web.render(request, "health.html", session, page="health", **await self._health())

    async def health_live(self, request: Request, session: Session) -> Response:
        """The live part of the Health page, which the page's script swaps in every few seconds."""
        return self.web.render(request, "health_live.html", session, **await self._health())

    async def _health(self) -> dict[str, Any]:
        from .health import collect

        return await collect(self.st)


#: Targets read for Overview's "By model" before they are merged into models: a model's
#: names (``openai:gpt-4o``, ``openai/gpt-4o``, an entry) are rolled up apart
MODEL_VALUES = 1000


def by_model(rows: list[queries.Stats], canonical: Any) -> list[queries.Stats]:
    """Overview's rows by target, merged into one row per model (``model_budgets.model_named``),
    busiest first: the rows ``/admin/spend?by=model`` shows, whose links list the same calls
    (the Traces ``model`` filter finds a model's calls under all its names)."""
    merged: dict[str, list[queries.Stats]] = {}
    for row in rows:
        merged.setdefault(model_named(row.label, canonical) if row.label else "", []).append(row)
    out = []
    for label, parts in merged.items():
        total = queries.combine(parts)
        total.label = label
        out.append(total)
    return sorted(out, key=lambda r: (-r.requests, r.label))


def known_cost(costs: Any) -> tuple[float | None, bool]:
    """The sum of the known costs, and whether some were unknown. None when none is known:
    an unknown cost is not $0 (a trace of calls whose cost is unknown showed "$0")."""
    known, unknown = [], False
    for cost in costs:
        if cost is None:
            unknown = True
        else:
            known.append(cost)
    return (sum(known) if known else None), bool(known) and unknown


def _budget_row(scope: str, period: str, limit: float, spent: float, reserved: float) -> dict[str, Any]:
    left = max(limit - spent - reserved, 0.0)
    used = (spent + reserved) / limit if limit > 0 else 1.0
    return {"scope": scope, "name": None, "period": period, "limit": limit, "spent": spent, "reserved": reserved,
            "left": left, "used": min(used, 1.0), "over": used >= 0.9}


def _overhead(call: Any) -> float | None:
    """Gateway overhead: total time minus the time spent waiting on providers (every attempt)."""
    upstream = [a.latency_ms for a in call.attempts if a.latency_ms is not None]
    if call.latency_ms is None or not upstream:
        return None
    overhead: float = max(call.latency_ms - sum(upstream), 0.0)
    return overhead


def _step_label(window: queries.Window, t: float) -> str:
    """A step's time on the chart's axis, in UTC as the rollups' buckets are (the chart says so)."""
    return time.strftime("%H:%M" if window.step < 86400 else "%b %d", time.gmtime(t))


def _hours_ago(raw: str | None) -> float | None:
    try:
        hours = float(raw) if raw else None
    except ValueError:
        return None
    if hours is None or not 0 < hours < 24 * 3650:
        return None
    return time.time() - hours * 3600

