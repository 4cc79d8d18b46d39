"""The server continues an incoming W3C traceparent: the call's span is a child of the
client's span, for both APIs, streams included."""

from __future__ import annotations

from collections.abc import Iterator

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
