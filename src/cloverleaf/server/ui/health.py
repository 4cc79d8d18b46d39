"""What the Health page shows: breakers per target, rate-limit use, the store and the state backend.

Everything is read live from the same objects the request path uses (the state backend's
breakers and rolling windows, the store's connection pool and batch writer), each probe
timed, and each failure shown as a status rather than an error page: a health page must
still answer when the thing it reports on is down.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ...gateway.config import Limit
from ...gateway.store import redact_url
from ..backend import noteworthy_breakers
from ..state import ServerState
from .queries import store_status

_PROBE = "cloverleaf-dashboard-probe"
#: Breaker rows on the page: those not closed (or with failures) first, then closed ones by name
SHOWN_BREAKERS = 200


async def collect(st: ServerState) -> dict[str, Any]:
    backend = st.backend
    gateway = backend.gateway
    out: dict[str, Any] = {"now": time.time(), "uptime": time.time() - st.started_at,
                           "in_flight": st.metrics.in_flight}   # this page's own request is not counted
    try:
        out["breakers"], out["breakers_hidden"] = noteworthy_breakers(await backend.breakers(), SHOWN_BREAKERS)
        out["breakers_error"] = None
    except Exception as exc:  # noqa: BLE001 - shown on the page
        out["breakers"], out["breakers_hidden"], out["breakers_error"] = {}, 0, _why(exc)
    out["limits"] = await _limits(st)
    out["store"] = await _store(st)
    out["state"] = await _state(gateway)
    return out


async def _store(st: ServerState) -> dict[str, Any]:
    store = st.backend.store
    info: dict[str, Any] = {"dialect": store.dialect, "url": redact_url(store.url), "schema": store.schema_version,
                            "pending": store.writer.pending, "dropped": store.writer.dropped}
    try:
        info.update(await asyncio.to_thread(store_status, store.engine))
    except Exception as exc:  # noqa: BLE001 - shown on the page
        info.update(ok=False, error=_why(exc))
    return info


async def _state(gateway: Any) -> dict[str, Any]:
    state = gateway.state
    kind = "Redis (shared by every worker)" if state.shared else "in-process memory (per worker)"
    info: dict[str, Any] = {"kind": kind, "shared": state.shared, "where": repr(state)}
    t0 = time.perf_counter()
    try:
        await state.usage(_PROBE, time.time())
        info.update(ok=True, ms=(time.perf_counter() - t0) * 1000.0)
    except Exception as exc:  # noqa: BLE001 - shown on the page
        info.update(ok=False, error=_why(exc))
    return info


async def _limits(st: ServerState) -> list[dict[str, Any]]:
    """Use of every configured rate limit and every virtual key's, over the last minute."""
    gateway = st.backend.gateway
    config = gateway.config
    clock = getattr(gateway, "_state_clock", gateway.clock)   # the clock the limiter stamps windows with
    scopes: list[tuple[str, str, Any]] = [(scope, name, limit) for (scope, name), limit in config.limits.scoped.items()]
    for name, limit in config.limits.named.items():
        scope = "route" if name in config.routes else ("provider" if "/" not in name else "target")
        scopes.append((scope, name, limit))
    if st.keys is not None:
        for key in await st.keys.list(include_revoked=False):
            if key.rpm or key.tpm:
                scopes.append(("key", key.id, Limit(key.rpm, key.tpm)))
    rows = []
    now = clock.now()
    for scope, name, limit in sorted(scopes, key=lambda s: (s[0], s[1])):
        row: dict[str, Any] = {"scope": scope, "name": name}
        for kind in ("rpm", "tpm"):
            cap = getattr(limit, kind, None)
            if not cap:
                row[kind] = None
                continue
            try:
                used = await gateway.state.usage(f"{scope}:{name}:{kind}", now)
            except Exception:  # noqa: BLE001 - the state backend is down: shown as unknown
                used = None
            row[kind] = {"used": used, "limit": cap, "frac": min((used or 0) / cap, 1.0)}
        rows.append(row)
    return rows


def _why(exc: BaseException) -> str:
    from ..._errors import redact

    return redact(f"{type(exc).__name__}: {exc}"[:300]) or type(exc).__name__
