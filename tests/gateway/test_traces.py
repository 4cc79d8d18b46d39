"""Traces and call records written by the gateway: complete, and never holding a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloverleaf._context import CallContext
from cloverleaf._errors import AllTargetsFailed, ServerError, StreamInterrupted
from cloverleaf._types import EmbeddingRequest, ImageRequest
from cloverleaf.gateway import ManualClock
from cloverleaf.gateway.traces import redact

from .conftest import Harness, chat_request, upstream

SECRET = "sk-test-SECRETSECRET123456"


async def test_trace_collects_its_calls(harness: Harness) -> None:
    gw = harness.gateway(routes={"smart": {"targets": ["fake/fail-500", "fake/echo"]}})
    trace = gw.traces.create(metadata={"user": "ada", "task": "summary"})
    ctx = CallContext(trace_id=trace.id, project="acme", metadata={"step": 1})
    await gw.achat("smart", chat_request("first"), ctx)
    await gw.aembed("fake/echo", EmbeddingRequest(model="", inputs=["a", "b"]), ctx)
    await gw.aimage("fake/echo", ImageRequest(model="", prompt="a cat"), ctx)
    await gw.achat("fake/echo", chat_request("not in the trace"))
    gw.traces.complete(trace.id)
    got = gw.traces.get(trace.id)
    assert got is not None and got.completed and got.metadata == {"user": "ada", "task": "summary"}
    assert [c.operation for c in got.calls] == ["chat", "embed", "image"]
    chat = got.calls[0]
    assert (chat.requested_model, chat.target, chat.provider, chat.status) == ("smart", "fake/echo", "fake", "ok")
    assert chat.project == "acme" and chat.metadata == {"step": 1}
    assert [(a.target, a.ok, a.error_type, a.http_status) for a in chat.attempts] == [
        ("fake/fail-500", False, "ServerError", 500), ("fake/echo", True, None, None)]
    assert chat.input_tokens > 0 and chat.output_tokens > 0 and chat.cost and chat.cost > 0
    assert chat.latency_ms is not None


async def test_stream_records_time_to_first_token(harness: Harness) -> None:
    gw = harness.gateway()
    async for _ in gw.astream("fake/echo", chat_request("stream me")):
        pass
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.operation == "stream" and call.status == "ok"
    assert call.ttft_ms is not None and call.output_tokens > 0


async def test_no_secret_reaches_the_store(harness: Harness, tmp_path: Path) -> None:
    routes = {"r": {"targets": [{"model": "fake/echo", "name": "keyed", "api_key_env": "MY_KEY"}, "fake/fail-500"]}}
    gw = harness.gateway(routes=routes, env={"MY_KEY": SECRET})
    upstream(gw).script.fail(401, {"error": {"message": f"Incorrect API key provided: {SECRET}. Check it.",
                                             "code": "invalid_api_key"}})
    with pytest.raises(AllTargetsFailed):
        await gw.achat("r", chat_request())
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.attempts[0].error_type == "AuthenticationError"
    assert SECRET not in (call.attempts[0].error_message or "")
    assert "<redacted>" in (call.attempts[0].error_message or "")
    gw.close()
    for file in tmp_path.glob("gateway.db*"):
        assert SECRET.encode() not in file.read_bytes()


def test_redact_known_and_key_shaped_secrets() -> None:
    text = "bad key sk-ant-api03-abcdefgh, Bearer abc.def.ghi123, url?key=AIzaXXXX&x=1, mine: hunter2hunter2"
    out = redact(text, ["hunter2hunter2"])
    assert out is not None
    for leaked in ("sk-ant-api03", "abc.def.ghi123", "AIzaXXXX", "hunter2"):
        assert leaked not in out


def test_redact_takes_every_credential_named_query_value_out_of_a_url() -> None:
    """The rule the admin API masks a base_url's query with: redaction let ``password=`` and
    ``sig=`` through, and the admin API showed ``api-key=`` that redaction took out."""
    text = ("GET https://h.example/v1?api-version=2024-10-21&password=PW-1&X-Amz-Signature=SIG-2&sig=SAS-3"
            "&session_token=ST-4&region=eu failed: status code=500")
    out = redact(text)
    assert out == ("GET https://h.example/v1?api-version=2024-10-21&<redacted>&<redacted>&<redacted>&<redacted>"
                   "&region=eu failed: status code=500")


def test_redact_takes_the_password_out_of_any_url_in_a_text() -> None:
    """An upstream's error quoting a URL with a password (its own database's, a proxy's) reached
    the caller's error body, the call record and the spans whole."""
    text = ("boom: postgresql://app:db-PW-1@db:5432/x, redis://:cache-PW-2@cache:6379/0, "
            "https://svc:p%40ss-3@proxy.internal/v1 and http://host:8080/path@ok")
    assert redact(text) == ("boom: postgresql://app:<redacted>@db:5432/x, redis://:<redacted>@cache:6379/0, "
                            "https://svc:<redacted>@proxy.internal/v1 and http://host:8080/path@ok")


def test_redact_takes_a_password_holding_at_signs_out_whole() -> None:
    """A password with an unencoded ``@`` (which URL parsers read up to the authority's last
    ``@``) had only its part before the first ``@`` masked: ``u:<redacted>@ss@db`` kept ``ss``.
    A scheme after ``_`` (``db_redis://``) was not found at all."""
    assert redact("boom: postgresql://app:p@ss-PW@db:5432/x?a=b@c") == \
        "boom: postgresql://app:<redacted>@db:5432/x?a=b@c"
    assert redact("conf_redis://:cache-PW@cache:6379") == "conf_redis://:<redacted>@cache:6379"
    assert redact("mail http://user@host or ftp://a:b@c, not https://example.com:443/a@b") == \
        "mail http://user@host or ftp://a:<redacted>@c, not https://example.com:443/a@b"


@pytest.mark.parametrize("run", ["a.", "a-", "a+"])
def test_redact_reads_a_megabyte_of_dotted_words_in_one_pass(run: str) -> None:
    """The URL-password pattern started at the scheme, so each word of a long ``a.b.c...`` run
    was tried to the run's end: quadratic, about half an hour for this megabyte (an upstream's
    error body, a prompt shown on the dashboard), on the event loop. No time is measured here:
    before, the suite's timeout failed it; now it is one pass."""
    text = run * 500_000 + " postgresql://u:PW@db"
    assert redact(text) == run * 500_000 + " postgresql://u:<redacted>@db"


async def test_no_secret_in_raised_errors_or_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """A provider echoing the configured key verbatim must not put it in the error the caller
    (or the server's response, or a log line) sees."""
    routes = {"r": {"targets": [{"model": "fake/echo", "name": "keyed", "api_key_env": "MY_KEY"}, "fake/other"]}}
    gw = harness.gateway(routes=routes, env={"MY_KEY": "plain-secret-value-42"})
    echo = {"error": {"message": "invalid credentials plain-secret-value-42 for this org", "code": "invalid_api_key"}}
    upstream(gw).script.fail(401, echo).fail(503, {"error": {"message": f"upstream saw Bearer {SECRET}"}})
    with caplog.at_level("DEBUG"), pytest.raises(AllTargetsFailed) as info:
        await gw.achat("r", chat_request())
    err = info.value
    texts = [str(err), repr(err), caplog.text]
    for attempt in err.attempts:
        texts += [str(attempt.error), repr(attempt.error), getattr(attempt.error, "body", "") or ""]
    for text in texts:
        assert "plain-secret-value-42" not in text and SECRET not in text
    assert "invalid credentials <redacted> for this org" in str(err)
    assert [a.status for a in err.attempts] == [401, 503]


async def test_no_secret_in_a_stream_interruption(harness: Harness) -> None:
    routes = {"r": {"targets": [{"model": "fake/echo", "name": "keyed", "api_key_env": "MY_KEY"}]}}
    gw = harness.gateway(routes=routes, env={"MY_KEY": "plain-secret-value-42"})
    original = gw.engine.astream

    async def leaky(target, req):  # type: ignore[no-untyped-def]
        async for event in original(target, req):
            yield event
            if event.type == "text":
                raise ServerError("stream broke for key plain-secret-value-42", provider="fake", status=500)

    gw.engine.astream = leaky  # type: ignore[method-assign]
    with pytest.raises(StreamInterrupted) as info:
        async for _ in gw.astream("r", chat_request("a b c")):
            pass
    assert "plain-secret-value-42" not in str(info.value)
    assert "plain-secret-value-42" not in str(info.value.cause)


@pytest.mark.parametrize(("mode", "kept"), [("all", ["error", "ok"]), ("errors", ["error"]), ("none", [])])
async def test_store_record_mode_chooses_which_calls_are_kept(harness: Harness, mode: str, kept: list[str]) -> None:
    gw = harness.gateway(store={"url": f"sqlite:///{harness.tmp_path / f'{mode}.db'}", "record": mode})
    resp = await gw.achat("fake/echo", chat_request("kept?"))
    assert resp.text == "kept?"                      # the call itself is unaffected
    with pytest.raises(ServerError):
        await gw.achat("fake/fail-500", chat_request())
    gw.store.flush()
    assert sorted(c.status for c in gw.store.recent_calls(10)) == kept


async def test_bookkeeping_after_the_response_records_when_the_answer_was_ready(harness: Harness) -> None:
    """The server awaits ``after_response`` once the answer is sent, which takes as long as the
    client takes to read it: the call record's latency is the call's, not the client's."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock)
    jobs: list = []
    await gw.achat("fake/echo", chat_request("hi"), CallContext(after_response=jobs))
    clock.advance(30.0)  # a slow client reading a large answer
    await jobs[0]
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "ok" and call.latency_ms < 30_000.0
