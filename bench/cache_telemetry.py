"""What a response-cache hit costs, and what OpenTelemetry costs per call, in one run.

In-process, through the gateway (the same code path the server takes), against the bench's
mock upstream on loopback answering after ``--delay-ms``:

- ``miss``: a call that goes to the upstream (cache on, each prompt new);
- ``hit``: the same call answered from the cache (memory backend);
- ``open`` / ``telemetry``: a cacheless call with spans off and on (OTLP to a local receiver
  that answers every export with 200), so the difference is the span-building cost.

Figures are medians of ``--repeats`` runs of ``--calls`` sequential calls: wall time per
call and the process's CPU time per call (``time.process_time``, the steadier number on a
shared machine). Run: ``.venv/bin/python -m bench.cache_telemetry``. Calls here run one at a
time with 20 ms between them, on cold caches: for what spans cost under load, see
``bench/span_cost.py`` and the ``cloverleaf-governed-otel`` target of ``bench/run.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def start_mock() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.mock_upstream", "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, int(line.split()[-1])


def start_sink() -> ThreadingHTTPServer:
    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def measure(settings: Any, model: str, calls: int, prompt: Any) -> tuple[float, float]:
    import cloverleaf

    client = cloverleaf.AsyncClient(settings)
    try:
        await client.chat(model, prompt(-1), temperature=0)     # warm: connections, imports
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(calls):
            await client.chat(model, prompt(i), temperature=0)
        return (time.perf_counter() - wall0) / calls * 1e6, (time.process_time() - cpu0) / calls * 1e6
    finally:
        await client.gateway.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay-ms", type=int, default=20)
    args = parser.parse_args()
    from cloverleaf._config import ProviderSettings, Settings

    proc, port = start_mock()
    sink = start_sink()
    tmp = tempfile.mkdtemp(prefix="cloverleaf-bench-")
    base = f"http://127.0.0.1:{port}/d{args.delay_ms}/v1"

    def settings(**kw: Any) -> Settings:
        return Settings(providers={"mock": ProviderSettings("mock", kind="openai", base_url=base, api_key_env="K")},
                        env={"K": "k"}, gateway=True, store={"url": f"sqlite:///{tmp}/calls.db"}, **kw)

    rows: dict[str, list[tuple[float, float]]] = {"miss": [], "hit": [], "open": [], "telemetry": []}
    for r in range(args.repeats):
        rows["miss"].append(asyncio.run(measure(settings(cache={"mode": "exact"}), "mock/m", args.calls,
                                                lambda i, r=r: f"new prompt {r} {i}")))
        rows["hit"].append(asyncio.run(measure(settings(cache={"mode": "exact"}), "mock/m", args.calls,
                                               lambda i: "the same prompt")))
        rows["open"].append(asyncio.run(measure(settings(), "mock/m", args.calls, lambda i: "x")))
        endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
        rows["telemetry"].append(asyncio.run(measure(settings(telemetry={"otlp_endpoint": endpoint}), "mock/m",
                                                     args.calls, lambda i: "x")))
    proc.terminate()
    sink.shutdown()
    print(f"{args.calls} sequential calls x {args.repeats} runs, upstream delay {args.delay_ms} ms; medians")
    print(f"{'row':<10} {'wall us/call':>13} {'cpu us/call':>12}")
    for name, values in rows.items():
        if values:
            print(f"{name:<10} {statistics.median(v[0] for v in values):>13.0f} "
                  f"{statistics.median(v[1] for v in values):>12.0f}")


if __name__ == "__main__":
    main()
