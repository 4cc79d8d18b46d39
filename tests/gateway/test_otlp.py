"""cloverleaf's own OTLP: the protobuf it writes, read back with the official
``opentelemetry-proto`` classes; trace-context parsing and sampling; and the export thread
against a real receiver on 127.0.0.1 (batches, a busy or failing collector, a full queue,
gzip, https, headers that never reach the log)."""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import ConfigError
from cloverleaf.gateway import otlp_export, otlp_wire
from cloverleaf.gateway.otlp_export import SpanExporter
from cloverleaf.gateway.store.records import AttemptRecord, CallRecord
from cloverleaf.gateway.telemetry import (
    SpanParent,
    Telemetry,
    TelemetryConfig,
    parse_telemetry,
    parse_traceparent,
    proxy_for,
)

from .http_proxy import ForwardProxy
from .otlp_receiver import OTLPReceiver, _value

REPO = Path(__file__).resolve().parents[2]
TRACE = bytes(range(1, 17))
SPAN = bytes(range(21, 29))
PARENT = bytes(range(31, 39))


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver()
    yield r
    r.close()


def decode(body: bytes) -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return req


# -- the wire ------------------------------------------------------------------------------------
def test_every_attribute_type_and_field_reads_back_with_the_official_classes() -> None:
    long_text = "é" * 300                        # 600 bytes: a two-byte length
    attrs = {"text": "chat gpt-4o", "long": long_text, "yes": True, "no": False, "zero": 0, "count": 12,
             "negative": -5, "huge": 2**62, "price": 0.000125, "list": ["stop", "length"], "other": Path("x")}
    head = otlp_wire.resource_head({"service.name": "svc", "pid": 7}, "cloverleaf", "9.9")
    spans = [otlp_wire.span(TRACE, SPAN, None, "chat ünïcode", 1_700_000_000_123_456_789, 1_700_000_000_223_456_789,
                            attrs),
             otlp_wire.span(TRACE, PARENT, SPAN, "chat fake/fail", 1, 2, {"error.type": "ServerError"}, "boom"),
             otlp_wire.span(TRACE, bytes(8 * [9]), SPAN, "no message", 3, 4, {}, "")]
    req = decode(otlp_wire.export_request(head, spans))
    [rs] = req.resource_spans
    assert {a.key: _value(a.value) for a in rs.resource.attributes} == {"service.name": "svc", "pid": 7}
    [ss] = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("cloverleaf", "9.9")
    root, child, bare = ss.spans
    assert root.trace_id == TRACE and root.span_id == SPAN and root.parent_span_id == b""
    assert root.name == "chat ünïcode" and root.kind == 3
    assert root.start_time_unix_nano == 1_700_000_000_123_456_789 and root.end_time_unix_nano == 1_700_000_000_223_456_789
    got = {a.key: _value(a.value) for a in root.attributes}
    assert got == {**attrs, "other": "x"}
    assert [a.key for a in root.attributes] == list(attrs)          # order kept
    assert root.status.code == 0
    assert child.parent_span_id == SPAN and child.status.code == 2 and child.status.message == "boom"
    assert bare.status.code == 2 and bare.status.message == ""


def test_a_remembered_attribute_encodes_exactly_as_a_fresh_one() -> None:
    attrs = {"gen_ai.request.model": "smart", "cloverleaf.fallback": True, "cloverleaf.call_id": "c_1"}
    otlp_wire._SEEN.clear()
    first = otlp_wire.attributes(0x4A, attrs, frozenset({"cloverleaf.call_id"}))
    again = otlp_wire.attributes(0x4A, attrs, frozenset({"cloverleaf.call_id"}))
    assert {k for _, k, _ in otlp_wire._SEEN} == {"gen_ai.request.model", "cloverleaf.fallback"}   # ids: never kept
    otlp_wire._SEEN.clear()
    fresh = otlp_wire.attributes(0x4A, attrs)
    assert first == again == fresh
    # a text value and a flag never share an entry
    assert otlp_wire.attributes(0x4A, {"k": "True"}) != otlp_wire.attributes(0x4A, {"k": True})
    # a long value (a client's model name, say) is encoded each time, not kept
    otlp_wire._SEEN.clear()
    long_model = "m" * (otlp_wire._SEEN_VALUE_MAX + 1)
    assert otlp_wire.attributes(0x4A, {"gen_ai.request.model": long_model}) == \
        otlp_wire.attributes(0x4A, {"gen_ai.request.model": long_model})
    assert otlp_wire._SEEN == {}


def test_varints_match_the_protobuf_library() -> None:
    from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

    for n in (0, 1, 127, 128, 300, 2**32, 2**63 - 1, -1, -(2**63)):
        assert otlp_wire.varint(n) == _VarintBytes(n & (2**64 - 1)), n


# -- trace context and sampling -----------------------------------------------------------------
@pytest.mark.parametrize(("header", "expected"), [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     SpanParent(bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331"), True)),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
     SpanParent(bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331"), False)),
    ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future",     # a later version may add fields
     SpanParent(bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331"), True)),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None),
    ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
    ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
    ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
    ("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", None),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", None),
    ("garbage", None),
])
def test_traceparent_headers_are_read_by_the_trace_context_rules(header: str, expected: SpanParent | None) -> None:
    assert parse_traceparent(header) == expected


def record(**kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(id="c_1", created_at=time.time(), operation="chat", requested_model="smart",
                                status="ok", target="fake/echo", provider="fake", model="echo", latency_ms=2.0,
                                input_tokens=3, output_tokens=4, attempts=[AttemptRecord("fake/echo", "fake", True,
                                                                                         latency_ms=1.5)])
    base.update(kw)
    return CallRecord(**base)


def telemetry_for(receiver: OTLPReceiver, env: dict[str, str] | None = None, **table: Any) -> Telemetry:
    config = parse_telemetry({"otlp_endpoint": receiver.endpoint, **table}, env or {})
    assert config is not None
    return Telemetry(config)


def test_the_parents_sampling_decision_is_kept(receiver: OTLPReceiver) -> None:
    t = telemetry_for(receiver)
    try:
        t.export(record(id="unsampled"), [time.time()], t.begin(f"00-{TRACE.hex()}-{PARENT.hex()}-00"))
        t.export(record(id="sampled"), [time.time()], t.begin(f"00-{TRACE.hex()}-{PARENT.hex()}-01"))
        t.export(record(id="root"), [time.time()], t.begin(None))
        assert t.force_flush(10)
    finally:
        t.close()
    roots = {s.attributes["cloverleaf.call_id"]: s for s in receiver.spans if "cloverleaf.call_id" in s.attributes}
    assert set(roots) == {"sampled", "root"}
    assert roots["sampled"].trace_id == TRACE.hex() and roots["sampled"].parent_span_id == PARENT.hex()
    assert roots["root"].trace_id != TRACE.hex() and roots["root"].parent_span_id == ""
    assert len(receiver.spans) == 4                                  # each with its attempt's span


def test_otel_traces_sampler_is_honoured(receiver: OTLPReceiver) -> None:
    off = telemetry_for(receiver, {"OTEL_TRACES_SAMPLER": "always_off"})
    half = telemetry_for(receiver, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    try:
        assert not off._sampled(TRACE, None) and not off._sampled(TRACE, SpanParent(TRACE, PARENT, True))
        low, high = bytes(8) + (2**62).to_bytes(8, "big"), bytes(8) + (2**63 + 1).to_bytes(8, "big")
        assert half._sampled(low, None) and not half._sampled(high, None)       # by the id's low 64 bits
        assert half._sampled(high, SpanParent(high, PARENT, True))              # a parent's decision wins
        off.export(record(), [time.time()], off.begin(None))
        assert off.force_flush(5)
    finally:
        off.close()
        half.close()
    assert receiver.spans == []
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER"):
        parse_telemetry({"otlp_endpoint": "http://c:4318"}, {"OTEL_TRACES_SAMPLER": "jaeger_remote"})
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER_ARG"):
        parse_telemetry({"otlp_endpoint": "http://c:4318"}, {"OTEL_TRACES_SAMPLER": "traceidratio",
                                                               "OTEL_TRACES_SAMPLER_ARG": "2"})


def test_the_exporter_settings_come_from_the_table_or_the_standard_variables() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b,x=1",
           "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=traces", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
           "OTEL_EXPORTER_OTLP_CERTIFICATE": __file__}
    cfg = parse_telemetry({}, env)
    assert cfg is not None and dict(cfg.headers) == {"api-key": "traces"}   # the traces variable first
    assert cfg.compression == "gzip" and cfg.certificate == __file__ and cfg.sampler == "parentbased_always_on"
    del env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
    cfg = parse_telemetry({"compression": "none"}, env)
    assert cfg is not None and dict(cfg.headers) == {"api-key": "a b", "x": "1"} and cfg.compression is None
    with pytest.raises(ConfigError, match="compression"):
        parse_telemetry({"otlp_endpoint": "http://c:4318", "compression": "zstd"}, {})
    with pytest.raises(ConfigError, match="no file at '/nonexistent/ca.pem'"):
        parse_telemetry({"otlp_endpoint": "https://c:4318", "certificate": "/nonexistent/ca.pem"}, {})


# -- the export thread --------------------------------------------------------------------------
def spans(n: int, tag: str = "s") -> list[bytes]:
    return [otlp_wire.span(TRACE, i.to_bytes(8, "big"), None, f"{tag}{i}", 1, 2, {"i": i}) for i in range(1, n + 1)]


def exporter_for(receiver: OTLPReceiver, **kw: Any) -> SpanExporter:
    head = otlp_wire.resource_head({"service.name": "t"}, "cloverleaf", "0")
    return SpanExporter(receiver.endpoint + "/v1/traces", kw.pop("headers", {}), kw.pop("timeout", 5.0),
                        lambda batch: otlp_wire.export_request(head, batch), **kw)


def test_spans_go_in_batches_and_a_flush_sends_the_rest(receiver: OTLPReceiver) -> None:
    ex = exporter_for(receiver)
    try:
        ex.add(spans(otlp_export.BATCH_SPANS * 2 + 10))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
    assert len(receiver.spans) == otlp_export.BATCH_SPANS * 2 + 10 and receiver.requests == 3
    assert len({s.name for s in receiver.spans}) == len(receiver.spans)


def test_spans_are_sent_within_the_delay_without_a_flush(receiver: OTLPReceiver) -> None:
    """Round after round: the thread, idle once a batch is out, is woken by the next span."""
    ex = exporter_for(receiver)
    try:
        for round_ in range(1, 4):
            ex.add(spans(3, f"r{round_}-"))
            deadline = time.monotonic() + otlp_export.DELAY_SECONDS + 10
            while len(receiver.spans) < 3 * round_ and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(receiver.spans) == 3 * round_ and receiver.requests == round_
    finally:
        ex.shutdown()


def test_the_exit_hook_is_registered_with_the_thread_and_gone_after_shutdown(
        receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter never shut down flushes at interpreter exit (``atexit``); one shut down leaves
    no hook behind, and the hook never keeps an exporter alive."""
    import atexit
    import gc
    import weakref

    hooks: list[Any] = []
    monkeypatch.setattr(atexit, "register", lambda f: hooks.append(f) or f)   # what would run at exit
    monkeypatch.setattr(atexit, "unregister", lambda f: hooks.remove(f))
    ex = exporter_for(receiver)
    assert hooks == []                      # nothing sent yet: nothing to do at exit
    ex.add(spans(2, "exit"))
    ex.add(spans(1, "more"))
    assert len(hooks) == 1                  # once, with the thread
    hooks[0]()                              # what atexit runs: sends now, not after DELAY_SECONDS
    assert sorted(s.name for s in receiver.spans) == ["exit1", "exit2", "more1"]
    hook = hooks[0]
    ex.shutdown()
    assert hooks == []
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is None
    hook()                                  # a hook left over for a collected exporter does nothing


def test_a_busy_collector_gets_the_batch_again(receiver: OTLPReceiver) -> None:
    receiver.statuses = [503, 429]
    ex = exporter_for(receiver)
    try:
        ex.add(spans(2))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
    assert len(receiver.spans) == 2 and len(receiver.headers) == 3 and ex.batches_sent == 1


@pytest.mark.parametrize("retry_after", ["30", "Wed, 21 Oct 2099 07:28:00 GMT"], ids=["seconds", "http-date"])
def test_a_collector_asking_to_wait_past_the_timeout_gets_no_retry_and_the_batch_is_counted(
        receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture, retry_after: str) -> None:
    """A throttled collector's Retry-After is honoured (OTLP/HTTP's throttling rule): the batch
    was re-sent 0.25 s later, and again, however long it asked for. A wait that ends past the
    export timeout drops the batch at once, counted as lost."""
    receiver.statuses = [429, 429, 429, 429]
    receiver.retry_after = retry_after
    ex = exporter_for(receiver, timeout=3.0)
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway.telemetry"):
        try:
            ex.add(spans(3))
            assert ex.force_flush(10)
        finally:
            ex.shutdown()
    assert len(receiver.headers) == 1 and receiver.spans == []            # asked once, never again
    assert ex.dropped_by_reason() == {"queue_full": 0, "export_failed": 3}
    assert "answered 429 and asked for" in caplog.text


def test_a_collectors_retry_after_within_the_timeout_is_waited_out(receiver: OTLPReceiver) -> None:
    receiver.statuses = [503]
    receiver.retry_after = "1"
    ex = exporter_for(receiver, timeout=5.0)
    try:
        ex.add(spans(2))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
    assert len(receiver.spans) == 2 and len(receiver.headers) == 2
    assert ex.dropped_by_reason() == {"queue_full": 0, "export_failed": 0}


def test_spans_for_a_collector_that_cannot_be_reached_are_counted_as_lost() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1/traces"
    head = otlp_wire.resource_head({"service.name": "t"}, "cloverleaf", "0")
    ex = SpanExporter(dead, {}, 1.0, lambda batch: otlp_wire.export_request(head, batch))
    try:
        ex.add(spans(4))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
    assert ex.dropped_by_reason() == {"queue_full": 0, "export_failed": 4}


def test_a_retry_after_is_read_as_seconds_or_a_date() -> None:
    from email.utils import formatdate

    assert otlp_export.retry_after_seconds("120") == 120.0
    assert otlp_export.retry_after_seconds(None) is None and otlp_export.retry_after_seconds("soon") is None
    assert otlp_export.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0      # past: no wait
    ahead = otlp_export.retry_after_seconds(formatdate(time.time() + 3600, usegmt=True))
    assert ahead is not None and 3500 < ahead <= 3600


def test_a_refused_batch_is_dropped_with_a_warning_that_names_no_secret(receiver: OTLPReceiver,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [400]
    ex = exporter_for(receiver, headers={"x-honeycomb-team": "hc-secret-123"})
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway.telemetry"):
        try:
            ex.add(spans(2, "first"))
            assert ex.force_flush(10)
            ex.add(spans(1, "second"))
            assert ex.force_flush(10)
        finally:
            ex.shutdown()
    assert [s.name for s in receiver.spans] == ["second1"]
    assert ex.dropped_by_reason() == {"queue_full": 0, "export_failed": 2}     # the refused batch, counted
    assert all(h["x-honeycomb-team"] == "hc-secret-123" for h in receiver.headers)    # the collector gets it
    assert "answered 400" in caplog.text and "hc-secret-123" not in caplog.text


def test_a_full_queue_drops_new_spans_and_never_blocks(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(otlp_export, "MAX_QUEUED_SPANS", 20)
    monkeypatch.setattr(otlp_export, "BATCH_SPANS", 10)
    receiver.delay = 2.0                       # the export thread sits on its first batch
    ex = exporter_for(receiver)
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway.telemetry"):
        try:
            ex.add(spans(10, "a"))
            deadline = time.monotonic() + 10
            while not receiver.headers and time.monotonic() < deadline:   # that batch is at the collector
                time.sleep(0.01)
            for i in range(5):                 # room for two more batches; the rest is dropped, not waited for
                ex.add(spans(10, f"b{i}"))
            assert ex.force_flush(20)
        finally:
            ex.shutdown()
    assert ex.dropped == 30 and len(receiver.spans) == 30
    assert ex.dropped_by_reason() == {"queue_full": 30, "export_failed": 0}
    assert "queue is full" in caplog.text


def https_receiver(tmp_path: Path) -> tuple[OTLPReceiver, str]:
    """A receiver on https with a certificate from a CA of its own, and that CA's file."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return OTLPReceiver(ssl_context=server_ctx), str(ca_file)


def test_gzip_and_https_with_the_collectors_own_ca(tmp_path: Path) -> None:
    receiver, ca_file = https_receiver(tmp_path)
    try:
        ex = exporter_for(receiver, gzip=True, cafile=ca_file)
        untrusted = exporter_for(receiver)                  # certifi's bundle does not know this CA
        try:
            ex.add(spans(4))
            assert ex.force_flush(10)
            untrusted.add(spans(1, "never"))
            untrusted.force_flush(10)
        finally:
            ex.shutdown()
            untrusted.shutdown()
        assert receiver.endpoint.startswith("https://") and len(receiver.spans) == 4
        assert receiver.headers[0]["content-encoding"] == "gzip"
        assert untrusted.batches_sent == 0 and not any(s.name.startswith("never") for s in receiver.spans)
    finally:
        receiver.close()


# -- through a proxy -----------------------------------------------------------------------------
BASIC = "Basic " + __import__("base64").b64encode(b"span user:p@ss word").decode()


def test_an_http_collector_is_reached_through_the_proxy_with_its_credentials(receiver: OTLPReceiver) -> None:
    proxy = ForwardProxy(require_auth=BASIC)
    ex = exporter_for(receiver, proxy=f"http://span%20user:p%40ss%20word@127.0.0.1:{proxy.server.server_address[1]}")
    try:
        ex.add(spans(3))
        assert ex.force_flush(10)
        ex.add(spans(2, "again"))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
        proxy.close()
    assert len(receiver.spans) == 5 and ex.batches_sent == 2
    assert proxy.seen == [("POST", receiver.endpoint + "/v1/traces", BASIC)] * 2     # the full URL, credentials
    assert all("proxy-authorization" not in h for h in receiver.headers)              # ...which stop at the proxy


def test_an_https_collector_is_reached_through_a_connect_tunnel(tmp_path: Path) -> None:
    receiver, ca_file = https_receiver(tmp_path)
    proxy = ForwardProxy(require_auth=BASIC)
    port = receiver.server.port
    ex = exporter_for(receiver, gzip=True, cafile=ca_file,
                      proxy=f"http://span%20user:p%40ss%20word@127.0.0.1:{proxy.server.server_address[1]}")
    try:
        ex.add(spans(4))
        assert ex.force_flush(10)
    finally:
        ex.shutdown()
        proxy.close()
        receiver.close()
    assert len(receiver.spans) == 4 and receiver.headers[0]["content-encoding"] == "gzip"
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{port}", BASIC)]     # the proxy saw a host name, not the spans


def test_a_proxy_that_refuses_the_credentials_is_logged_without_them(receiver: OTLPReceiver,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    proxy = ForwardProxy(require_auth=BASIC)
    port = proxy.server.server_address[1]
    ex = exporter_for(receiver, proxy=f"http://span%20user:wrong-secret@127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway.telemetry"):
        try:
            ex.add(spans(1))
            assert ex.force_flush(10)
        finally:
            ex.shutdown()
            proxy.close()
    assert receiver.spans == [] and ex.batches_sent == 0 and len(proxy.seen) == 1
    assert f"through the proxy at 127.0.0.1:{port}" in caplog.text and "answered 407" in caplog.text
    assert "wrong-secret" not in caplog.text and "span user" not in caplog.text


def test_the_proxy_comes_from_the_environment_as_requests_reads_it() -> None:
    https, http = "https://collector.example:4318/v1/traces", "http://collector.example:4318/v1/traces"
    env = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128", "HTTP_PROXY": "plain:8080",
           "ALL_PROXY": "http://all:1"}
    assert proxy_for(https, "env", env) == "http://lower:3128"             # lower case first
    assert proxy_for(http, "env", env) == "http://plain:8080"              # per scheme; no scheme means http://
    assert proxy_for(https, "env", {"ALL_PROXY": "http://all:1"}) == "http://all:1"
    assert proxy_for(https, "env", {}) is None
    for no_proxy in ("collector.example", ".example", "example", "collector.example:4318", "*", "other, example"):
        assert proxy_for(https, "env", {**env, "NO_PROXY": no_proxy}) is None, no_proxy
    for no_proxy in ("other.example", "xample", "collector.example:9999", "10.0.0.0/8"):
        assert proxy_for(https, "env", {**env, "no_proxy": no_proxy}) == "http://lower:3128", no_proxy
    assert proxy_for("https://c.example/v1/traces", "env", {**env, "NO_PROXY": "c.example:443"}) is None
    for no_proxy in ("10.0.0.0/8", "10.1.2.3", "10.1.2.3:4318"):                # addresses and blocks
        assert proxy_for("http://10.1.2.3:4318/v1/traces", "env", {**env, "NO_PROXY": no_proxy}) is None, no_proxy
    assert proxy_for("http://[fd00::5]:4318/v1/traces", "env", {**env, "NO_PROXY": "fd00::/8"}) is None
    assert proxy_for("http://11.1.2.3:4318/v1/traces", "env", {**env, "NO_PROXY": "10.0.0.0/8"}) == "http://plain:8080"
    assert proxy_for(https, "none", env) is None                           # straight to the collector
    assert proxy_for(https, "http://named:3128", {}) == "http://named:3128"
    cfg = parse_telemetry({"otlp_endpoint": "https://c:4318", "proxy": "http://u:hunter2@p:3128",
                           "headers": {"api-key": "k-secret"}}, {})
    assert cfg is not None and cfg.proxy == "http://u:hunter2@p:3128"
    assert "hunter2" not in repr(cfg) and "k-secret" not in repr(cfg)      # a logged config names no secret
    for bad in ("socks5://u:hunter2@p:1080", "https://p:3128", "http://:3128", "http://p:port"):
        with pytest.raises(ConfigError, match="http:// proxy") as err:
            parse_telemetry({"otlp_endpoint": "https://c:4318", "proxy": bad}, {})
        assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        parse_telemetry({"otlp_endpoint": "https://c:4318"}, {"HTTPS_PROXY": "socks5://p:1080"})
    with pytest.raises(ConfigError, match='"env", "none"'):
        parse_telemetry({"otlp_endpoint": "https://c:4318", "proxy": False}, {})


def test_spans_need_no_opentelemetry_package(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """With telemetry on, an application that does not use OpenTelemetry loads none of it."""
    code = ("import sys, cloverleaf; from cloverleaf._config import Settings; "
            f"c = cloverleaf.Client(Settings(gateway=True, store={{'url': 'sqlite:///{tmp_path / 'x.db'}'}}, "
            f"telemetry={{'otlp_endpoint': '{receiver.endpoint}'}})); "
            "c.chat('fake/echo', 'hi'); assert c.gateway.telemetry.force_flush(10); c.close(); "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'google.protobuf'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert [s.name for s in receiver.spans] == ["chat fake/echo", "chat fake/echo"]
    assert receiver.scopes[0][0] == "cloverleaf"
    assert receiver.resources[0]["telemetry.sdk.name"] == "cloverleaf"


def test_telemetry_config_defaults() -> None:
    cfg = TelemetryConfig(endpoint="http://c:4318/v1/traces")
    assert cfg.sampler == "parentbased_always_on" and cfg.compression is None and cfg.sample_ratio == 1.0


@pytest.mark.filterwarnings(  # 3.12+ warns on every fork with threads running; forking one is what these tests test
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_a_forked_child_exports_its_own_spans(receiver: OTLPReceiver) -> None:
    import os

    ex = exporter_for(receiver)
    try:
        ex.add(spans(1, "parent"))
        assert ex.force_flush(10)
        pid = os.fork()
        if pid == 0:   # the child: a fresh thread of its own, nothing of the parent's queue
            ok = False
            try:
                ex.add(spans(1, "child"))
                ok = ex.force_flush(10)
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        ex.shutdown()
    assert sorted(s.name for s in receiver.spans) == ["child1", "parent1"]
