"""The server continues an incoming W3C traceparent: the call's span is a child of the
client's span, for both APIs, streams included; and the provider's request carries the trace on
(with the attempt's span, or unchanged when the server exports no spans)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.gateway.otlp_receiver import OTLPReceiver

from .conftest import Live, settings, start_live, stop_live

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def live(receiver: OTLPReceiver) -> Iterator[Live]:
    server = start_live(settings(telemetry={"otlp_endpoint": receiver.endpoint}))
    yield server
    stop_live(server)


def _roots(live: Live, receiver: OTLPReceiver, model: str) -> list:  # type: ignore[type-arg]
    telemetry = live.state.backend.gateway.telemetry
    assert telemetry is not None and telemetry.force_flush(10.0)
    return [s for s in receiver.named(f"chat {model}") if "cloverleaf.attempt" not in s.attributes]


def test_openai_and_anthropic_calls_continue_the_traceparent(live: Live, receiver: OTLPReceiver) -> None:
    header = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    live.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "hi"}],
                                          extra_headers=header)
    with live.anthropic().messages.stream(model="fake/echo", max_tokens=20, messages=[{"role": "user", "content": "s"}],
                                          extra_headers=header) as stream:
        list(stream.text_stream)
    live.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "no parent"}])
    roots = _roots(live, receiver, "fake/echo")
    continued = [s for s in roots if s.trace_id == TRACE]
    assert len(continued) == 2 and all(s.parent_span_id == PARENT for s in continued)
    assert len([s for s in roots if s.trace_id != TRACE and s.parent_span_id == ""]) == 1


def test_a_malformed_traceparent_is_ignored(live: Live, receiver: OTLPReceiver) -> None:
    r = live.openai().chat.completions.with_raw_response.create(
        model="fake/echo", messages=[{"role": "user", "content": "bad header"}],
        extra_headers={"traceparent": "not-a-traceparent"})
    assert r.http_response.status_code == 200


def _sent(live: Live, marker: str) -> dict[str, str]:
    """The headers of the request the fake provider got for the call whose prompt is ``marker``."""
    [request] = [r for r in live.fake.requests if marker.encode() in r.body]
    return {k.lower(): v for k, v in request.headers.items()}


def test_the_provider_request_carries_the_trace_on_with_its_attempts_span(live: Live, receiver: OTLPReceiver) -> None:
    """The server continued the client's trace in its own spans but sent the provider no
    ``traceparent``: a provider that traces could not join. Its request names the trace and the
    attempt's span, and passes the client's ``tracestate`` on unchanged; an unsampled trace
    (flags 00) is passed on unsampled, with no spans of ours."""
    state = "vendor=opaque-value,rojo=00f067aa0ba902b7"
    live.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "tp-sampled"}],
                                          extra_headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": state})
    live.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "tp-unsampled"}],
                                          extra_headers={"traceparent": f"00-{TRACE}-{PARENT}-00"})
    sent = _sent(live, "tp-sampled")
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01") and span_id != PARENT
    assert sent["tracestate"] == state
    _roots(live, receiver, "fake/echo")      # flushed
    [attempt] = [s for s in receiver.spans if s.span_id == span_id]            # the span the request named
    [root] = [s for s in receiver.spans if s.span_id == attempt.parent_span_id]
    assert attempt.trace_id == TRACE and attempt.attributes["cloverleaf.attempt"] == 1
    assert root.parent_span_id == PARENT and "cloverleaf.attempt" not in root.attributes
    unsampled = _sent(live, "tp-unsampled")["traceparent"].split("-")
    assert unsampled[:2] == ["00", TRACE] and unsampled[3] == "00" and unsampled[2] != PARENT
    assert "tracestate" not in _sent(live, "tp-unsampled")
    assert not [s for s in receiver.spans if s.span_id == unsampled[2]]


def test_without_spans_the_clients_trace_headers_pass_through_unchanged(open_server: Live) -> None:
    """Telemetry off, the server is an intermediary that does not trace: the client's
    ``traceparent`` and ``tracestate`` reach the provider as they were sent (W3C lets it pass
    them on), a malformed one does not, and without one nothing is added."""
    client = open_server.openai()
    header = f"00-{TRACE}-{PARENT}-01"
    client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "pass-through"}],
                                   extra_headers={"traceparent": header, "tracestate": "congo=t61rcWkgMzE"})
    client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "pass-malformed"}],
                                   extra_headers={"traceparent": f"00-{TRACE.upper()}-{PARENT}-01",
                                                  "tracestate": "congo=t61rcWkgMzE"})
    client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "pass-nothing"}],
                                   extra_headers={"tracestate": "congo=t61rcWkgMzE"})
    sent = _sent(open_server, "pass-through")
    assert (sent["traceparent"], sent["tracestate"]) == (header, "congo=t61rcWkgMzE")
    for marker in ("pass-malformed", "pass-nothing"):
        assert not {"traceparent", "tracestate"} & set(_sent(open_server, marker)), marker


def test_dropped_spans_are_counted_on_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans a full export queue refused, or in a batch the collector never took, were only a
    log line once a minute: /metrics counts them by reason. Spans off, there is no such series."""
    from cloverleaf.gateway import otlp_export

    receiver = OTLPReceiver()
    receiver.statuses = [400]                       # the first batch is refused
    server = start_live(settings(telemetry={"otlp_endpoint": receiver.endpoint}))
    try:
        client = server.openai()
        telemetry = server.state.backend.gateway.telemetry
        assert telemetry is not None
        exporter = telemetry.exporter
        client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "refused"}])
        assert _until(lambda: exporter.lost == 2)   # the spans are built once the answer is out
        monkeypatch.setattr(otlp_export, "MAX_QUEUED_SPANS", 0)     # no room: the next call's spans are dropped
        client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "no room"}])
        assert _until(lambda: exporter.dropped == 2)
        with server.http() as http:
            text = http.get("/metrics").text
    finally:
        stop_live(server)
        receiver.close()
    assert "# TYPE cloverleaf_otel_spans_dropped_total counter" in text
    assert 'cloverleaf_otel_spans_dropped_total{reason="export_failed"} 2' in text      # a call and its attempt
    assert 'cloverleaf_otel_spans_dropped_total{reason="queue_full"} 2' in text


def test_without_spans_metrics_has_no_span_series(open_server: Live) -> None:
    with open_server.http() as http:
        assert "cloverleaf_otel_spans_dropped_total" not in http.get("/metrics").text


def _until(predicate: Callable[[], bool], bound: float = 15.0) -> bool:
    end = time.monotonic() + bound
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return predicate()
