"""Run ``cloverleaf serve`` with a hot-path variant swapped in, to measure it before it ships.

The benchmark's job is to choose the server's HTTP client and server stack *by measurement*.
This launcher lets a run compare variants of the same cloverleaf code without editing it:

- ``--http-client h1|aiohttp|httpx``: the HTTP client of the engine's async network calls
  (``http_client`` in cloverleaf.toml; ``auto`` picks h1 when httptools is installed);
- ``--no-trace-writes``: call records are dropped instead of queued for the store (to
  measure what writing traces costs; never a way to run the server);
- ``--no-orjson``: JSON through the standard library only (:mod:`cloverleaf.jsoncodec`
  uses orjson when it is installed);
- ``--gc-freeze``: ``gc.freeze()`` after the app is built, so the collector stops walking
  the hundreds of thousands of long-lived objects of the imported libraries on every
  full collection (a multi-millisecond pause that shows up as p99 latency);
- ``--switch-interval S``: ``sys.setswitchinterval(S)`` (CPython's default is 5 ms: a thread
  waiting for the GIL, e.g. the event loop while the store writer runs, may wait that long);
- ``--uvicorn-http h11|httptools`` and ``--uvicorn-loop asyncio|uvloop``: uvicorn's protocol
  and event loop (its ``auto`` picks httptools and uvloop when they are installed).

``default`` everywhere means: change nothing, run what ``cloverleaf serve`` runs.

Usage: ``python -m bench.variants --http-client aiohttp -- --config F serve --port P``
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any


def force_http_client(name: str) -> None:
    """Make every Transport choose ``name`` for its async network calls (what
    ``http_client = NAME`` in cloverleaf.toml does), whatever ``auto`` would pick."""
    from cloverleaf.transport.auto import Transport

    original = Transport._choose_async

    def choose(self: Any) -> Any:
        self.http_client = name
        return original(self)

    Transport._choose_async = choose  # type: ignore[method-assign]


def drop_trace_writes() -> None:
    from cloverleaf.gateway.store.writer import BatchWriter

    BatchWriter.insert = lambda self, rows: None  # type: ignore[method-assign]


def without_orjson() -> None:
    from cloverleaf import _jsoncodec as jsoncodec

    jsoncodec.orjson = None  # type: ignore[assignment]


def force_uvicorn(http: str | None, loop: str | None, gc_freeze: bool = False) -> None:
    import uvicorn

    original = uvicorn.run

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        if gc_freeze:  # the app is built by now: keep its objects out of every later collection
            import gc

            gc.collect()
            gc.freeze()
        if http:
            kwargs["http"] = http
        if loop:
            kwargs["loop"] = loop
        return original(*args, **kwargs)

    uvicorn.run = run


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-client", choices=["default", "h1", "aiohttp", "httpx"], default="default")
    parser.add_argument("--no-trace-writes", action="store_true")
    parser.add_argument("--no-orjson", action="store_true", help="the standard library's json only")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is built")
    parser.add_argument("--uvicorn-http", choices=["default", "h11", "httptools"], default="default")
    parser.add_argument("--uvicorn-loop", choices=["default", "asyncio", "uvloop"], default="default")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval(SECONDS): how long a thread may hold the GIL while another waits")
    args = parser.parse_args(ours)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    if args.http_client != "default":
        force_http_client(args.http_client)
    if args.no_orjson:
        without_orjson()
    if args.no_trace_writes:
        drop_trace_writes()
    force_uvicorn(None if args.uvicorn_http == "default" else args.uvicorn_http,
                  None if args.uvicorn_loop == "default" else args.uvicorn_loop, args.gc_freeze)
    from cloverleaf.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
