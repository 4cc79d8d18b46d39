"""/health, /ready, /metrics and the overhead header, live."""

from __future__ import annotations

import logging
import re
import time

import openai
import pytest

from .conftest import Live, settings, start_live, stop_live

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|\+Inf)$')


def _parse(text: str) -> dict[str, float]:
    """Prometheus text format: every line is a comment or a well-formed sample."""
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert base in types or m.group(1) in types, f"sample without a TYPE: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def test_health_and_ready(open_server: Live) -> None:
    with open_server.http() as http:
        h = http.get("/health")
        r = http.get("/ready")
    assert h.status_code == 200 and h.json() == {"status": "ok"}
    assert float(h.headers["x-cloverleaf-overhead-ms"]) >= 0
    assert r.status_code == 200 and r.json()["store"] == "ok"


def test_ready_is_503_when_the_store_is_unreachable(open_server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    class Gone:
        def connect(self) -> None:
            raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("database is gone"))

    monkeypatch.setattr(open_server.state.backend.store, "engine", Gone())
    with open_server.http() as http:
        r = http.get("/ready")
    assert r.status_code == 503 and r.json()["status"] == "unavailable" and "gone" not in r.text


def test_ready_is_503_while_the_store_answers_but_cannot_write(open_server: Live,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that answers ``SELECT 1`` but takes no writes (a full disk, a read-only file): the
    writer keeps the records queued and waits; the replica is not ready, and says why."""
    monkeypatch.setattr(open_server.state.backend.store.writer, "waiting_for_database", True)
    with open_server.http() as http:
        r = http.get("/ready")
    assert r.status_code == 503 and r.json()["store"] == "unwritable"


def test_a_redis_that_is_down_is_a_503_and_not_ready() -> None:
    """Limits and budgets cannot be checked without the shared state, so calls are refused,
    as a 503 that invites a retry (it was a 500 and an incident), and /ready says why."""
    live = start_live(settings(state={"url": "redis://:hunter2@127.0.0.1:1/0"}))
    try:
        with live.http() as http:
            r = http.post("/v1/chat/completions", json={"model": "fake/echo",
                                                        "messages": [{"role": "user", "content": "hi"}]})
            ready = http.get("/ready")
        assert r.status_code == 503 and r.json()["error"]["code"] == "state_unavailable"
        assert int(r.headers["retry-after"]) >= 1 and "hunter2" not in r.text
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable", "store": "ok",
                                                             "state": "unreachable"}
    finally:
        stop_live(live)


def test_serve_warns_at_start_when_redis_does_not_answer(caplog: pytest.LogCaptureFixture) -> None:
    """The server starts (Redis may come up after it), but says at once what every call will
    meet: it started silently, and the first sign was a 503."""
    caplog.set_level(logging.WARNING, logger="cloverleaf.server")
    live = start_live(settings(state={"url": "redis://:hunter2@127.0.0.1:1/0"}))
    stop_live(live)
    warnings = [r.getMessage() for r in caplog.records if r.name == "cloverleaf.server" and r.levelno == logging.WARNING]
    said = [w for w in warnings if "state backend" in w]
    assert len(said) == 1, warnings
    assert said[0].startswith("the Redis state backend at redis://***@127.0.0.1:1/0 failed")
    assert "every call is refused (503 state_unavailable)" in said[0] and "hunter2" not in said[0]


def test_ready_checks_a_shared_state_that_answers(caplog: pytest.LogCaptureFixture) -> None:
    from ..gateway.redis_support import fresh_prefix, redis_url

    caplog.set_level(logging.WARNING, logger="cloverleaf.server")
    live = start_live(settings(state={"url": redis_url(), "prefix": fresh_prefix()}))
    try:
        with live.http() as http:
            ready = http.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "store": "ok", "state": "ok"}
    finally:
        stop_live(live)
    assert not [r for r in caplog.records if "state backend" in r.getMessage()]   # no warning when it answers


def test_metrics_count_requests_tokens_errors_and_breakers(open_server: Live) -> None:
    client = open_server.openai()
    client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "count me in"}])
    list(client.chat.completions.create(model="fake/echo", stream=True,
                                        messages=[{"role": "user", "content": "stream me"}]))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fake/fail-500", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="not-a-model-xyz", messages=[{"role": "user", "content": "x"}])
    with open_server.http() as http:
        r = http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = _parse(r.text)
    assert m['cloverleaf_requests_total{api="openai",model="fake/echo",provider="fake",status="200"}'] >= 2
    assert m['cloverleaf_tokens_total{model="fake/echo",provider="fake",type="output"}'] > 0
    assert m['cloverleaf_time_to_first_token_seconds_count{api="openai",model="fake/echo",provider="fake"}'] >= 1
    errors = {k: v for k, v in m.items() if k.startswith("cloverleaf_errors_total")}
    assert any('model="fake/fail-500"' in k and 'status="502"' in k for k in errors)
    # an unknown model is counted without its name (clients cannot mint new series)
    assert any('model="-"' in k and 'status="404"' in k for k in errors)
    assert not any("not-a-model-xyz" in k for k in m)
    assert m['cloverleaf_breaker_state{target="fake/fail-500"}'] in (0, 1, 2)
    assert m['cloverleaf_gateway_overhead_seconds_count{api="openai"}'] >= 2
    buckets = [v for k, v in m.items() if k.startswith("cloverleaf_request_duration_seconds_bucket")
               and 'model="fake/echo"' in k and 'api="openai"' in k]
    assert buckets == sorted(buckets), "histogram buckets must be cumulative"
    # the store writer's queue: what waits, what was lost, whether the database is away
    assert m["cloverleaf_store_records_dropped_total"] == 0 and m["cloverleaf_store_database_away"] == 0
    assert m["cloverleaf_store_records_pending"] >= 0


def test_an_idle_server_has_no_request_in_flight_whoever_scrapes_or_probes_it() -> None:
    """The scrape counted itself: every /metrics of an idle server said one request was in
    flight. Neither it nor the health and readiness probes are counted; a call still is."""
    live = start_live(settings())
    try:
        with live.http() as http:
            for path in ("/health", "/ready", "/metrics"):
                assert http.get(path).status_code == 200
            assert _parse(http.get("/metrics").text)["cloverleaf_in_flight_requests"] == 0
            assert live.state.metrics.in_flight == 0
            with http.stream("POST", "/v1/chat/completions", json={
                    "model": "fake/echo+drip-50ms", "stream": True,
                    "messages": [{"role": "user", "content": " ".join(f"word{i}" for i in range(60))}]}) as r:
                chunks = r.iter_raw()   # kept: a dropped iterator closes the connection (a hang-up)
                next(chunks)            # a stream is in flight until its last byte
                assert _parse(http.get("/metrics").text)["cloverleaf_in_flight_requests"] == 1
    finally:
        stop_live(live)


def test_a_stream_cut_after_the_provider_answered_is_booked_under_that_provider() -> None:
    """A stream that ended without its final event (the client hung up after the first tokens,
    the provider broke off mid-answer) was booked with provider="-", though the provider had
    answered: the label came from the final event only."""
    live = start_live(settings())
    try:
        with live.http() as http:
            with http.stream("POST", "/v1/chat/completions", json={
                    "model": "fake/echo+drip-50ms", "stream": True,
                    "messages": [{"role": "user", "content": " ".join(f"word{i}" for i in range(200))}]}) as r:
                next(r.iter_raw())      # the provider has answered; then the client hangs up
            broken = http.post("/v1/chat/completions", json={
                "model": "fake/echo+truncate", "stream": True, "messages": [{"role": "user", "content": "cut me"}]})
            assert broken.status_code == 200 and "error" in broken.text      # reported in-band
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                m = _parse(http.get("/metrics").text)
                if any('status="499"' in k for k in m):
                    break
                time.sleep(0.05)
    finally:
        stop_live(live)
    booked = {k for k in m if k.startswith("cloverleaf_requests_total")}
    assert 'cloverleaf_requests_total{api="openai",model="fake/echo+drip-50ms",provider="fake",status="499"}' in booked
    [cut] = [k for k in booked if "fake/echo+truncate" in k]
    assert 'provider="fake"' in cut and 'status="200"' not in cut
    assert not any('provider="-"' in k for k in booked)


def test_unknown_route_and_method_are_json_errors(open_server: Live) -> None:
    with open_server.http() as http:
        missing = http.get("/v1/nothing-here")
        wrong = http.get("/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "http_404"
    assert wrong.status_code == 405 and "x-cloverleaf-overhead-ms" in wrong.headers


def test_several_workers_label_their_own_series_and_breakers_are_bounded() -> None:
    """With --workers N a scrape reaches one process: its series carry its worker label, so no
    counter seems to go backwards between scrapes. Breaker series are as bounded as model ones."""
    from cloverleaf._types import Usage
    from cloverleaf.server.metrics import MAX_MODELS, Metrics

    metrics = Metrics(worker="4242")
    metrics.record("openai", "fake/echo", "fake", 200, 0.01, usage=Usage(input_tokens=3, output_tokens=4))
    metrics.observe_overhead("openai", 0.0002)
    breakers = {f"mylab/model-{i:04d}": "closed" for i in range(MAX_MODELS + 300)}
    breakers.update({"mylab/zz-open": "open", "mylab/zz-probing": "half_open"})
    text = metrics.render(breakers).decode()
    samples = _parse(text)
    assert samples and all('worker="4242"' in name for name in samples)
    assert samples['cloverleaf_requests_total{worker="4242",api="openai",model="fake/echo",provider="fake",'
                   'status="200"}'] == 1
    assert samples['cloverleaf_in_flight_requests{worker="4242"}'] == 0
    shown = [name for name in samples if name.startswith("cloverleaf_breaker_state")]
    assert len(shown) == MAX_MODELS                                             # not 802
    assert 'cloverleaf_breaker_state{worker="4242",target="mylab/zz-open"}' in shown   # open ones are never cut
    assert all("worker=" not in line for line in Metrics().render(breakers).decode().splitlines())   # one worker


def test_error_codes_are_as_bounded_as_model_names() -> None:
    """The code label is often the upstream's own (an OpenAI-compatible server may put a
    request id there): each new code was a new series for ever. Past MAX_ERROR_CODES they are
    counted as "other", and a long one is cut."""
    from cloverleaf.server.metrics import MAX_ERROR_CODE_LENGTH, MAX_ERROR_CODES, Metrics

    metrics = Metrics()
    metrics.record("openai", "mylab/x", "mylab", 400, 0.01, code="invalid_request_error")
    for i in range(MAX_ERROR_CODES + 700):
        metrics.record("openai", "mylab/x", "mylab", 400, 0.01, code=f"req-{i:05d}")
    metrics.record("openai", "mylab/x", "mylab", 400, 0.01, code="invalid_request_error")   # known: its own series
    metrics.record("openai", "mylab/x", "mylab", 502, 0.01, code="x" * 5000)
    samples = _parse(metrics.render().decode())
    errors = {k: v for k, v in samples.items() if k.startswith("cloverleaf_errors_total")}
    assert len(errors) <= MAX_ERROR_CODES + 2                      # one per kept code, and "other" per status
    assert errors['cloverleaf_errors_total{api="openai",model="mylab/x",provider="mylab",status="400",'
                  'code="invalid_request_error"}'] == 2
    assert errors['cloverleaf_errors_total{api="openai",model="mylab/x",provider="mylab",status="400",'
                  'code="other"}'] == 701
    assert all(len(re.search(r'code="([^"]*)"', k).group(1)) <= MAX_ERROR_CODE_LENGTH   # type: ignore[union-attr]
               for k in errors)
    assert sum(errors.values()) == MAX_ERROR_CODES + 703          # every error still counted


def test_the_health_page_lists_the_breakers_that_matter_and_counts_the_rest() -> None:
    from cloverleaf.server.backend import noteworthy_breakers
    from cloverleaf.server.ui.health import SHOWN_BREAKERS

    quiet = {"state": "closed", "consecutive_failures": 0}
    every = {f"mylab/m{i:04d}": dict(quiet) for i in range(SHOWN_BREAKERS + 500)}
    every["zz/open"] = {"state": "open", "consecutive_failures": 5}
    every["zz/flaky"] = {"state": "closed", "consecutive_failures": 2}
    shown, hidden = noteworthy_breakers(every, SHOWN_BREAKERS)
    assert len(shown) == SHOWN_BREAKERS and hidden == len(every) - SHOWN_BREAKERS
    assert list(shown)[:2] == ["zz/flaky", "zz/open"] and "mylab/m0000" in shown
