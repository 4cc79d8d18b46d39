"""``cloverleaf serve``: run the server under uvicorn's server, with our ``h1`` protocol or uvicorn's.

With no configuration at all it serves the fake provider (``fake/...`` models, no keys
needed) on the default SQLite store, open to loopback clients only. The startup log says
which mode it is in (open / keys), where the store is, and — with ``--workers N`` > 1 —
that rate limits, circuit breakers and the key cache are per process unless state is
shared (``[state] url = "redis://..."``).

Several workers need an importable app, so each worker rebuilds it from the environment
(:func:`worker_app`): the config file path travels in ``CLOVERLEAF_CONFIG`` and the bind
address in ``CLOVERLEAF_SERVE_HOST``/``CLOVERLEAF_SERVE_PORT``; call-time overrides other
than the file are not carried over.

Signals (:mod:`.stop_signals`): SIGINT, SIGTERM and SIGHUP let the requests in flight finish
(up to 10 s) before the process exits, with status 0; with ``--workers N`` a SIGHUP to the main
process replaces the workers one at a time instead (uvicorn's supervisor), each old one draining.

Budgets are counted in the state backend; in-memory counters would give each worker the
whole budget, so several workers without Redis count budgets in the store instead
(``[state] budgets = "store"``: exact, one database transaction per call) unless the file
says otherwise (:func:`worker_settings`).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

from .._config import Settings
from .._errors import ConfigError
from .._setting_values import env_whole
from ..gateway.redis_cluster import REDIS_PREFIXES, refuse_plain_urls_to_a_cluster
from .options import ServerOptions
from .stop_signals import drain_on_every_stop_signal, leave_hangup_to_the_supervisor

log = logging.getLogger("cloverleaf.server")


def _setup_logging() -> None:
    root = logging.getLogger("cloverleaf")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def describe(settings: Settings, options: ServerOptions) -> list[str]:
    """The startup lines (also used by tests): where, which mode, which store, worker caveats."""
    from ..gateway.config import parse_store
    from ..gateway.store import redact_url

    # an IPv6 address is bracketed in a URL (http://[::1]:4000): http://::1:4000 is no address
    host = f"[{options.host}]" if ":" in options.host and not options.host.startswith("[") else options.host
    lines = [f"cloverleaf serving on http://{host}:{options.port} "
             f"(OpenAI API under /v1, Anthropic /v1/messages, docs /openapi.json)"]
    if options.master_key:
        lines.append("auth: master key set; virtual keys accepted; admin API on under /admin; "
                     f"dashboard at http://{host}:{options.port}/ui")
    else:
        lines.append("auth: no CLOVERLEAF_MASTER_KEY: admin API off; without virtual keys the API is open to "
                     "loopback clients only")
    lines.append(f"store: {redact_url(parse_store(settings.store, settings.env).url)}")
    if options.cors_origins:
        lines.append(cors_line(options.cors_origins))
    if settings.backend == "fake":
        lines.append("CLOVERLEAF_BACKEND=fake: every model answers from the offline fake provider; unset it to "
                     "reach real providers")
    elif not (settings.models or settings.routes or settings.default_model):
        lines.append("no models configured: try model 'fake/echo' (offline); provider/model ids work when "
                     "their API key is in the environment")
    if options.workers > 1:
        state_url = str(settings.state.get("url", "memory"))
        if not state_url.startswith(REDIS_PREFIXES):
            lines.append(f"note: {options.workers} worker processes each keep their own in-memory rate limits "
                         "and circuit breakers, so limits apply per process, and budgets are counted in the "
                         "store (a database transaction per call); set [state] url = \"redis://...\" to share "
                         "limits and count budgets in Redis")
    return lines


def cors_line(origins: tuple[str, ...]) -> str:
    """The startup line for ``cors_origins``: who may call from a browser, and a warning for ``*``."""
    if "*" in origins:
        return ("cors: web pages on ANY origin may call the model APIs (cors_origins has \"*\"); while the API "
                "is open (no master key, no virtual keys) any website visited from this machine can spend through it")
    return f"cors: web pages on {', '.join(origins)} may call the model APIs (never /admin or /ui)"


def redis_urls(settings: Settings) -> dict[str, str]:
    """The ``[state]`` and ``[cache]`` URLs (table → URL), for the check that a plain Redis URL
    does not name a Cluster node."""
    out = {}
    for table, value in (("[state]", settings.state), ("[cache]", getattr(settings, "cache", None))):
        url = value.get("url") if isinstance(value, dict) else None
        if isinstance(url, str):
            out[table] = url
    return out


def worker_settings(settings: Settings, workers: int) -> Settings:
    """Several workers without shared state count budgets in the store (see the module docstring)."""
    state = settings.state or {}
    url = str(state.get("url", "memory"))
    if workers > 1 and "budgets" not in state and not url.startswith(REDIS_PREFIXES):
        from dataclasses import replace

        return replace(settings, state={**state, "budgets": "store"})
    return settings


def check_exposure(options: ServerOptions) -> None:
    """Refuse to listen on a network address with no way to authenticate anyone."""
    if not options.loopback_only and not options.master_key and not options.allow_unauthenticated:
        raise ConfigError(
            f"refusing to serve on {options.host} without authentication: set CLOVERLEAF_MASTER_KEY "
            "(and issue virtual keys with `cloverleaf keys create`), or bind to 127.0.0.1, or set "
            "[server] allow_unauthenticated = true if an open gateway on this network is really intended")


def refuse_a_port_in_use(options: ServerOptions) -> None:
    """A ConfigError saying what to do when something already listens on the address: uvicorn
    reported ``[Errno 98] ... address already in use`` and exited with status 3 and no hint, after
    the app had started (with ``--workers N`` before any worker did). Checked by binding as
    uvicorn binds (``SO_REUSEADDR``, so connections of a server just stopped do not count) each
    address the host names; anything else a bind can fail on is left for uvicorn to report."""
    import errno
    import socket

    try:
        addresses = socket.getaddrinfo(options.host, options.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {options.port} on {options.host} is in use; pass --port or stop the "
                                  "other server") from None


#: young-generation threshold for the serving process (CPython's default is 700)
GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server.

    Measured under load (20 ms upstream, 64 clients): with CPython's defaults the collector
    took 9-17% of the gateway's CPU, almost all of it in full (generation 2) collections that
    walk every object the imports and the app created at startup. ``gc.freeze()`` moves those
    into a permanent generation no collection walks again, and a larger young-generation
    threshold makes collections ~15x rarer (each request leaves few container objects behind;
    garbage cycles are still collected, only in bigger batches). Called once the app is built,
    before serving; the library itself never changes the process's GC settings."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def resolve_http(choice: str) -> str:
    """``[server] http``/``--http`` → the protocol uvicorn's server runs: ``h1`` (ours, see
    :mod:`.h1_server`; what ``auto`` picks, httptools being a dependency of the server extra)
    or ``uvicorn`` (uvicorn's own httptools protocol, for comparison: it has no header
    timeout and no eviction, only its ``limit_concurrency`` 503; see :mod:`.uvicorn_protocol`)."""
    if choice == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:  # pragma: no cover - the extra is incomplete
            return "uvicorn"
        return "h1"
    return choice


H1_PROTOCOL = "cloverleaf.server.h1_server:H1Protocol"
#: uvicorn's httptools protocol, kept to the answers h1 gives (shutdown 503, Upgrade, HTTP/1.0)
UVICORN_PROTOCOL = "cloverleaf.server.uvicorn_protocol:UvicornProtocol"


def server_kwargs(options: ServerOptions) -> dict[str, Any]:
    """uvicorn's settings for the chosen protocol, and this process's connection rules."""
    common: dict[str, Any] = {"host": options.host, "port": options.port, "log_level": "info",
                              "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 10,
                              # no WebSocket routes: "auto" would load the websockets package (2.6 MiB)
                              "ws": "none",
                              "server_header": False,
                              "use_colors": log_colours(),
                              "timeout_keep_alive": max(1, round(options.keepalive_timeout_seconds))}
    if resolve_http(options.http) == "h1":
        configure_connections(options)
        common["http"] = H1_PROTOCOL
    else:
        from importlib.util import find_spec

        # without httptools (an incomplete extra) uvicorn's "auto" picks its h11 protocol; a
        # uvicorn whose internals moved runs its own protocol unchanged
        common["http"] = UVICORN_PROTOCOL if find_spec("httptools") and _fits_uvicorn() else "auto"
        common["limit_concurrency"] = options.max_connections
    return common


def log_colours() -> bool:
    """Whether the log is coloured. uvicorn's own test is whether *stdout* is a terminal, but the
    log goes to stderr: ``cloverleaf serve 2> server.log`` from a terminal filled the file with
    escape codes, and ``NO_COLOR`` (https://no-color.org) was not heeded."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def configure_connections(options: ServerOptions) -> None:
    from .connections import ConnectionLimits
    from .h1_server import configure

    configure(ConnectionLimits(header_timeout=options.header_timeout_seconds,
                               keepalive_timeout=options.keepalive_timeout_seconds,
                               max_connections=options.max_connections,
                               write_timeout=options.write_timeout_seconds))


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None,
          http: str | None = None) -> int:
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("the server needs uvicorn: pip install 'cloverleaf[server]'") from None
    from .connections import raise_nofile_limit

    _setup_logging()
    options = ServerOptions.from_settings(settings.server, settings.env, host=host, port=port, workers=workers,
                                          http=http)
    check_exposure(options)
    refuse_a_port_in_use(options)
    soft, _ = raise_nofile_limit()
    for line in describe(settings, options):
        log.info(line)
    log.info("http: %s (open-file limit %d)", resolve_http(options.http), soft)
    refuse_plain_urls_to_a_cluster(redis_urls(settings))
    common = server_kwargs(options)
    if options.workers == 1:
        from .app import create_app

        app = create_app(settings, options=options)
        tune_gc()
        with drain_on_every_stop_signal():    # SIGHUP drains too; a drained stop exits 0
            uvicorn.run(app, **common)
        return 0
    if settings.source_path is not None:
        os.environ["CLOVERLEAF_CONFIG"] = str(settings.source_path)
    os.environ["CLOVERLEAF_SERVE_HOST"] = options.host
    os.environ["CLOVERLEAF_SERVE_PORT"] = str(options.port)
    os.environ["CLOVERLEAF_SERVE_WORKERS"] = str(options.workers)
    if http is not None:
        os.environ["CLOVERLEAF_SERVE_HTTP"] = http
    uvicorn.run("cloverleaf.server.cli_serve:worker_app", factory=True, workers=options.workers, **common)
    return 0


def worker_app() -> Any:
    """The app for one of several worker processes, rebuilt from the environment."""
    from .app import create_app

    settings = Settings.load()
    env = settings.env
    workers = env.get("CLOVERLEAF_SERVE_WORKERS")
    settings = worker_settings(settings, env_whole("CLOVERLEAF_SERVE_WORKERS", workers, minimum=1) if workers else 2)
    port = env.get("CLOVERLEAF_SERVE_PORT")
    options = ServerOptions.from_settings(settings.server, env, host=env.get("CLOVERLEAF_SERVE_HOST"),
                                          port=env_whole("CLOVERLEAF_SERVE_PORT", port, maximum=65535) if port else None,
                                          http=env.get("CLOVERLEAF_SERVE_HTTP"))
    if resolve_http(options.http) == "h1":
        configure_connections(options)  # this worker's protocol reads its rules from here
    app = create_app(settings, options=options)
    tune_gc()
    leave_hangup_to_the_supervisor()   # its SIGHUP replaces the workers one at a time, each draining
    return app


def _fits_uvicorn() -> bool:
    from .uvicorn_protocol import fits_this_uvicorn

    return fits_this_uvicorn()
