"""What a finished call's spans cost: cloverleaf's OTLP writer against the OpenTelemetry SDK.

The same two spans per call, a call span with the gateway's ~20 GenAI and cloverleaf
attributes and one attempt span, exported over OTLP/HTTP to a receiver on 127.0.0.1 that
answers 200:

- ``cloverleaf``: ``gateway.telemetry.Telemetry.export`` (``otlp_wire`` + ``otlp_export``),
  what the gateway runs;
- ``otel-sdk``: a ``TracerProvider`` with a ``BatchSpanProcessor`` and the SDK's
  ``OTLPSpanExporter``, building the same spans the way cloverleaf did before (needs
  ``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http``: the ``bench`` extra;
  the row is skipped without them).

For each, ``--calls`` exports in a row, then a flush; the figures are the process's CPU time
per call (every thread: the encoding on the caller and the export thread's work) and the
caller's own time per call, medians of ``--repeats`` runs::

    .venv/bin/python -m bench.span_cost [--calls 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.cache_telemetry import start_sink
from cloverleaf.gateway.store.records import AttemptRecord, CallRecord
from cloverleaf.gateway.telemetry import Telemetry, TelemetryConfig


def record(i: int) -> CallRecord:
    return CallRecord(id=f"c_{i:08d}", created_at=time.time(), operation="chat", requested_model="gov",
                      status="ok", target="priced", provider="mock", model="mock-model", latency_ms=20.4,
                      input_tokens=12, output_tokens=9, cost=0.0000195, key_id="k_bench",
                      attempts=[AttemptRecord("priced", "mock", True, latency_ms=20.1)])


def call_attributes(rec: CallRecord) -> dict[str, Any]:
    """The call span's attributes as the gateway sets them (telemetry.py), for the SDK row."""
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": rec.requested_model,
            "cloverleaf.call_id": rec.id, "cloverleaf.route": rec.requested_model, "cloverleaf.status": rec.status,
            "cloverleaf.attempts": len(rec.attempts), "cloverleaf.fallback": False,
            "gen_ai.provider.name": rec.provider, "gen_ai.system": rec.provider, "gen_ai.response.model": rec.model,
            "cloverleaf.target": rec.target, "cloverleaf.cost_usd": rec.cost, "cloverleaf.key_id": rec.key_id,
            "gen_ai.usage.input_tokens": rec.input_tokens, "gen_ai.usage.output_tokens": rec.output_tokens,
            "gen_ai.request.max_tokens": 16, "gen_ai.response.finish_reasons": ["stop"]}


def cloverleaf_row(endpoint: str) -> tuple[Callable[[CallRecord], None], Callable[[], None]]:
    telemetry = Telemetry(TelemetryConfig(endpoint=endpoint))

    def export(rec: CallRecord) -> None:
        telemetry.export(rec, [time.time()], telemetry.begin(None))

    def done() -> None:
        telemetry.force_flush(60)
        telemetry.close()

    return export, done


def sdk_row(endpoint: str) -> tuple[Callable[[CallRecord], None], Callable[[], None]] | None:
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind
    except ImportError:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("cloverleaf")

    def export(rec: CallRecord) -> None:
        start = int(rec.created_at * 1e9)
        end = start + int((rec.latency_ms or 0.0) * 1e6)
        span = tracer.start_span(f"chat {rec.requested_model}", kind=SpanKind.CLIENT, attributes=call_attributes(rec),
                                 start_time=start)
        child = tracer.start_span(f"chat {rec.target}", context=trace.set_span_in_context(span), kind=SpanKind.CLIENT,
                                  attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "priced",
                                              "cloverleaf.target": "priced", "cloverleaf.attempt": 1,
                                              "gen_ai.provider.name": "mock", "gen_ai.system": "mock"},
                                  start_time=start)
        child.end(end_time=end)
        span.end(end_time=end)

    def done() -> None:
        provider.force_flush(60_000)
        provider.shutdown()

    return export, done


def measure(row: tuple[Callable[[CallRecord], None], Callable[[], None]], calls: int) -> tuple[float, float]:
    """(process CPU µs per call, including the export thread; the caller's µs per call)."""
    export, done = row
    records = [record(i) for i in range(calls)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for rec in records:
        export(rec)
    caller = (time.perf_counter() - wall0) / calls * 1e6
    done()
    return (time.process_time() - cpu0) / calls * 1e6, caller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000,
                        help="calls per run (default 1000: the SDK's queue holds 2048 spans, and a run that "
                             "overfills it would count spans it dropped as spans it cost nothing to send)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    sink = start_sink()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
    results: dict[str, list[tuple[float, float]]] = {"cloverleaf": [], "otel-sdk": []}
    try:
        for _ in range(args.repeats):
            results["cloverleaf"].append(measure(cloverleaf_row(endpoint), args.calls))
            sdk = sdk_row(endpoint)
            if sdk is not None:
                results["otel-sdk"].append(measure(sdk, args.calls))
    finally:
        sink.shutdown()
    print(f"{args.calls} calls x {args.repeats} runs, two spans a call; medians")
    print(f"{'row':<12} {'cpu us/call':>12} {'caller us/call':>15}")
    for name, values in results.items():
        if values:
            print(f"{name:<12} {statistics.median(v[0] for v in values):>12.1f} "
                  f"{statistics.median(v[1] for v in values):>15.1f}")
        else:
            print(f"{name:<12} skipped: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
