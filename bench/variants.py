"""Run ``cloverleaf serve`` with a hot-path variant swapped in, to measure it before it ships.

The benchmark's job is to choose the server's HTTP client and server stack *by measurement*.
This launcher lets a run compare variants of the same cloverleaf code without editing it:

- ``--http-client aiohttp``: the engine's async network calls go through
  :class:`cloverleaf.transport_aiohttp.AiohttpTransport` (the fake provider and the httpx test
  hook stay on httpx), by wrapping ``Transport.asend`` / ``Transport.astream`` — exactly
  the hook the transport needs (see ``bench/README.md``), applied from outside;
- ``--no-trace-writes``: call records are dropped instead of queued for the store (to
  measure what writing traces costs; never a way to run the server);
- ``--gc-freeze``: ``gc.freeze()`` after the app is built, so the collector stops walking
  the hundreds of thousands of long-lived objects of the imported libraries on every
  full collection (a multi-millisecond pause that shows up as p99 latency);
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


def use_aiohttp() -> None:
    from cloverleaf import transport as transport_module
    from cloverleaf.transport_aiohttp import AiohttpTransport

    cls = transport_module.Transport
    original_asend, original_astream = cls.asend, cls.astream

    def backend(self: Any, url: str) -> AiohttpTransport | None:
        if self.mock is not None or url.startswith(transport_module.FAKE_HOST_PREFIX):
            return None
        found = getattr(self, "_bench_aiohttp", None)
        if found is None:
            found = AiohttpTransport(timeout=self.timeout, connect_timeout=self.connect_timeout,
                                     max_connections=self.max_connections, retry=self.retry)
            self._bench_aiohttp = found  # Transport has no __slots__
        return found

    @functools.wraps(original_asend)
    async def asend(self: Any, req: Any, **kw: Any) -> Any:
        b = backend(self, req.url)
        return await (b.asend(req, **kw) if b is not None else original_asend(self, req, **kw))

    @functools.wraps(original_astream)
    def astream(self: Any, req: Any, **kw: Any) -> Any:
        b = backend(self, req.url)
        return b.astream(req, **kw) if b is not None else original_astream(self, req, **kw)

    cls.asend, cls.astream = asend, astream  # type: ignore[method-assign]


def drop_trace_writes() -> None:
    from cloverleaf.gateway.store.writer import BatchWriter

    BatchWriter.insert = lambda self, rows: None  # type: ignore[method-assign]


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
    parser.add_argument("--http-client", choices=["default", "httpx", "aiohttp"], default="default")
    parser.add_argument("--no-trace-writes", action="store_true")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is built")
    parser.add_argument("--uvicorn-http", choices=["default", "h11", "httptools"], default="default")
    parser.add_argument("--uvicorn-loop", choices=["default", "asyncio", "uvloop"], default="default")
    args = parser.parse_args(ours)
    if args.http_client == "aiohttp":
        use_aiohttp()
    if args.no_trace_writes:
        drop_trace_writes()
    force_uvicorn(None if args.uvicorn_http == "default" else args.uvicorn_http,
                  None if args.uvicorn_loop == "default" else args.uvicorn_loop, args.gc_freeze)
    from cloverleaf.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
