"""OpenTelemetry spans, exported over OTLP/HTTP to a receiver on loopback that decodes the
real protobuf: GenAI attributes, one child per attempt, the caller's span as parent, the
server's incoming traceparent, content only when asked, and a dead collector harmless."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import cloverleaf
from cloverleaf import ConfigError
from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf._engine import Engine
from cloverleaf.gateway.telemetry import parse_telemetry

from .http_proxy import ForwardProxy
from .openai_mock import OpenAIMock
from .otlp_receiver import OTLPReceiver, ReceivedSpan

REPO = Path(__file__).resolve().parents[2]


class City(BaseModel):
    name: str
    population: int


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver()
    yield r
    r.close()


def client_for(tmp_path: Path, telemetry: dict[str, Any], **kw: Any) -> cloverleaf.Client:
    return cloverleaf.Client(Settings(telemetry=telemetry, gateway=True, max_retries=0,
                                      store={"url": f"sqlite:///{tmp_path / 'calls.db'}"}, **kw))


def flush(client: cloverleaf.Client) -> None:
    telemetry = client.gateway.telemetry
    assert telemetry is not None
    assert telemetry.force_flush(10.0)


def test_call_and_attempt_spans_follow_the_genai_conventions(tmp_path: Path, receiver: OTLPReceiver) -> None:
    routes = {"smart": {"targets": ["fake/fail-503", "fake/echo"]}}
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "service_name": "svc-test"},
                    routes=routes) as client:
        resp = client.chat("smart", "hello spans", temperature=0.2, max_tokens=50)
        flush(client)
    [call] = receiver.named("chat smart")
    assert call.service_name == "svc-test" and call.kind == 3          # SPAN_KIND_CLIENT
    a = call.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "smart"
    assert a["gen_ai.provider.name"] == "fake" and a["gen_ai.response.model"] == resp.model
    assert a["gen_ai.usage.input_tokens"] == resp.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == resp.usage.output_tokens
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert a["cloverleaf.target"] == "fake/echo" and a["cloverleaf.fallback"] is True
    assert a["cloverleaf.attempts"] == 2 and "gen_ai.input.messages" not in a
    attempts = sorted((s for s in receiver.spans if s.parent_span_id == call.span_id),
                      key=lambda s: s.attributes["cloverleaf.attempt"])
    assert [s.name for s in attempts] == ["chat fake/fail-503", "chat fake/echo"]
    assert attempts[0].attributes["error.type"] == "OverloadedError" and attempts[0].status_code == 2
    assert attempts[0].attributes["http.response.status_code"] == 503
    assert "error.type" not in attempts[1].attributes
    assert all(call.start_ns <= s.start_ns <= s.end_ns <= call.end_ns for s in attempts)
    assert {s.trace_id for s in attempts} == {call.trace_id}


def test_the_sdk_joins_the_callers_current_span(tmp_path: Path, receiver: OTLPReceiver) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    app_tracer = TracerProvider().get_tracer("the-app")
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint}) as client:
        with app_tracer.start_as_current_span("handle-request") as outer:
            client.chat("fake/echo", "inside the app's span")
            stream = client.stream("fake/echo", "a stream inside it")
            list(stream)
        flush(client)
    ctx = outer.get_span_context()
    calls = receiver.named("chat fake/echo")
    roots = [s for s in calls if s.attributes.get("cloverleaf.attempt") is None]
    assert len(roots) == 2
    for span in roots:
        assert span.trace_id == f"{ctx.trace_id:032x}" and span.parent_span_id == f"{ctx.span_id:016x}"


def test_errors_are_spans_with_error_type(tmp_path: Path, receiver: OTLPReceiver) -> None:
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint}) as client:
        with pytest.raises(cloverleaf.ProviderError):
            client.chat("fake/fail-500", "boom")
        flush(client)
    [call] = [s for s in receiver.named("chat fake/fail-500") if "cloverleaf.attempt" not in s.attributes]
    assert call.status_code == 2 and call.attributes["cloverleaf.status"] == "error"
    assert call.attributes["error.type"] in ("AllTargetsFailed", "ServerError")


def test_content_only_when_enabled(tmp_path: Path, receiver: OTLPReceiver) -> None:
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "capture_content": True}) as client:
        client.chat("fake/echo", "capture this prompt")
        flush(client)
    [call] = [s for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes]
    assert "capture this prompt" in call.attributes["gen_ai.input.messages"]
    assert "capture this prompt" in call.attributes["gen_ai.output.messages"]   # the echo


def test_captured_prompts_keep_tool_calls_tool_results_and_attachments(tmp_path: Path,
                                                                      receiver: OTLPReceiver) -> None:
    """An agent's prompt is mostly tool traffic: each message part keeps its kind in
    ``gen_ai.input.messages`` (the conventions' tool_call and tool_call_response parts), and an
    image is named by its kind and type, never its bytes."""
    import base64
    import json

    from cloverleaf._types import Attachment, Message, Text, ToolCall

    png = (REPO / "tests" / "fixtures" / "media" / "image.png").read_bytes()
    messages = [Message.user([Text("weather in Paris? see the map"), Attachment(png)]),
                Message.assistant([ToolCall("call_1", "get_weather", {"city": "Paris"})]),
                Message.tool("call_1", "TOOLRESULT 21C sunny")]
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "capture_content": True}) as client:
        client.chat("fake/echo", messages)
        flush(client)
    [call] = [s for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes]
    raw = call.attributes["gen_ai.input.messages"]
    assert json.loads(raw) == [
        {"role": "user", "parts": [{"type": "text", "content": "weather in Paris? see the map"},
                                   {"type": "blob", "modality": "image", "mime_type": "image/png"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                         "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": "TOOLRESULT 21C sunny"}]}]
    assert base64.b64encode(png[:48]).decode()[:40] not in raw


def test_cache_hits_are_marked(tmp_path: Path, receiver: OTLPReceiver) -> None:
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint}, cache={"mode": "exact"}) as client:
        client.chat("fake/echo", "cached span", temperature=0)
        client.chat("fake/echo", "cached span", temperature=0)
        flush(client)
    roots = [s for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes]
    assert sorted(s.attributes["cloverleaf.cache"] for s in roots) == ["hit", "miss"]
    hit = next(s for s in roots if s.attributes["cloverleaf.cache"] == "hit")
    assert hit.attributes["cloverleaf.cost_usd"] == 0.0 and hit.attributes["cloverleaf.attempts"] == 0
    assert hit.attributes["gen_ai.provider.name"] == "fake" and "server.address" not in hit.attributes  # none asked


def test_a_dead_collector_costs_nothing_but_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with client_for(tmp_path, {"otlp_endpoint": dead, "export_timeout": 1}) as client:
        for i in range(5):
            assert client.chat("fake/echo", f"still served {i}").content == f"still served {i}"


def test_a_base_endpoint_gets_its_path_whatever_else_the_environment_holds() -> None:
    """The file's otlp_endpoint lost its /v1/traces whenever OTEL_EXPORTER_OTLP_TRACES_ENDPOINT was
    set (for another service, say): spans went to the collector's root, a 404, and were dropped.
    Only the signal's own variable is a full URL (OTel's rule)."""
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/custom"}
    assert parse_telemetry({"otlp_endpoint": "http://c:4318"}, env).endpoint == "http://c:4318/v1/traces"
    assert parse_telemetry({}, env).endpoint == "http://other:4318/custom"
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert parse_telemetry({}, env).endpoint == "http://c:4318/v1/traces"


def test_an_endpoint_that_is_not_otlp_http_is_refused_without_its_credentials() -> None:
    """``grpc://user:password@collector:4317`` was refused with the URL whole in the message,
    which ``serve`` and ``doctor`` print."""
    for table, env in (({"otlp_endpoint": "grpc://user:hunter2-otel-pw@collector:4317?api-key=k-secret"}, {}),
                       ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector://u:hunter2-otel-pw@collector:4317"})):
        with pytest.raises(ConfigError, match="collector:4317") as refused:
            parse_telemetry(table, env)
        assert "hunter2" not in str(refused.value) and "k-secret" not in str(refused.value)


def test_configuration() -> None:
    assert parse_telemetry({}, {}) is None
    assert parse_telemetry({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).endpoint == "http://c:4318/v1/traces"
    assert parse_telemetry({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, from_env=False) is None
    cfg = parse_telemetry({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom",
                               "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2", "OTEL_SERVICE_NAME": "s"})
    assert cfg.endpoint == "http://c:4318/custom" and dict(cfg.headers) == {"a": "1", "b": "2"} and cfg.service_name == "s"
    assert parse_telemetry({"enabled": False}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is None
    with pytest.raises(ConfigError, match="allowed"):
        parse_telemetry({"endpoint": "http://x"}, {})
    with pytest.raises(ConfigError, match="otlp_endpoint"):
        parse_telemetry({"service_name": "x"}, {})
    with pytest.raises(ConfigError, match="http"):
        parse_telemetry({"otlp_endpoint": "grpc://x:4317"}, {})


def test_nothing_of_opentelemetry_is_imported_when_off(tmp_path: Path) -> None:
    code = ("import sys, cloverleaf; from cloverleaf._config import Settings; "
            f"c = cloverleaf.Client(Settings(gateway=True, store={{'url': 'sqlite:///{tmp_path / 'x.db'}'}})); "
            "c.chat('fake/echo', 'hi'); c.close(); "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_local_only_calls_text_never_reaches_a_collector_that_is_not_local(tmp_path: Path,
                                                                            receiver: OTLPReceiver) -> None:
    """``capture_content`` sends prompts and answers to the collector; under local-only that is
    allowed only when the collector is local too. Here the real exporter reaches the receiver
    through ``localhost`` while the privacy resolver says ``localhost`` is a public address."""
    public_collector = receiver.endpoint.replace("127.0.0.1", "localhost")
    with client_for(tmp_path, {"otlp_endpoint": public_collector, "capture_content": True}) as client:
        client.engine.privacy.resolver = lambda host, port: ["93.184.216.34"]
        client.chat("fake/echo", "my private diary", privacy="local-only")
        client.chat("fake/echo", "a public note")
        flush(client)
    roots = {s.attributes.get("cloverleaf.content_withheld"): s
             for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes}
    withheld = roots["local-only"]
    assert "gen_ai.input.messages" not in withheld.attributes and "gen_ai.output.messages" not in withheld.attributes
    assert withheld.attributes["gen_ai.usage.input_tokens"] > 0      # the rest of the span is there
    assert "a public note" in roots[None].attributes["gen_ai.input.messages"]   # no policy: captured as asked
    assert all("my private diary" not in str(s.attributes) for s in receiver.spans)


def test_a_local_only_calls_error_messages_stay_out_of_a_collector_that_is_not_local(
        tmp_path: Path, receiver: OTLPReceiver) -> None:
    """An error's message can quote the call's text — pydantic's used to quote the model's answer
    (``input_value='...'``) — so under local-only a span that is not local carries the error's type
    and status alone, even with content captured."""
    public_collector = receiver.endpoint.replace("127.0.0.1", "localhost")
    with client_for(tmp_path, {"otlp_endpoint": public_collector, "capture_content": True}) as client:
        client.engine.privacy.resolver = lambda host, port: ["93.184.216.34"]
        client.fake.script.reply(text='{"name": "PIN 878427", "population": "many"}')
        with pytest.raises(cloverleaf.StructuredOutputError) as private:
            client.chat("fake/x", "a city", response_format=City, privacy="local-only")
        assert "PIN 878427" not in str(private.value) and "population" in str(private.value)
        with pytest.raises(cloverleaf.ProviderError):
            client.chat("fake/fail-500", "boom", privacy="local-only")
        with pytest.raises(cloverleaf.ProviderError):
            client.chat("fake/fail-500", "boom")
        flush(client)
    roots = [s for s in receiver.spans if "cloverleaf.attempt" not in s.attributes and s.status_code == 2]
    assert all("PIN 878427" not in s.status_message for s in receiver.spans)
    messages = sorted(s.status_message for s in roots if s.name == "chat fake/fail-500")
    # local-only: the type and status alone; the other call, content captured, keeps its message
    assert messages == ["ServerError (HTTP 500)", "The server had an error while processing your request (fake upstream)."]
    assert [s.status_message for s in roots if s.name == "chat fake/x"] == ["StructuredOutputError"]


def test_an_error_span_quotes_the_providers_message_only_when_content_is_captured(
        tmp_path: Path, receiver: OTLPReceiver) -> None:
    """A provider's 400 quotes the prompt it refused: with ``capture_content`` off (the default)
    that text went into the span's status all the same, so the prompt reached the collector.
    Off, the status is a summary that cannot carry content; on, the provider's own message."""
    refusal = {"error": {"message": "Invalid value in messages[0].content: 'my SSN is 078-05-1120'",
                         "type": "invalid_request_error", "code": "invalid_value"}}
    for capture in (False, True):
        with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "capture_content": capture}) as client:
            client.fake.script.fail(400, refusal)
            with pytest.raises(cloverleaf.InvalidRequestError):
                client.chat("fake/x", "my SSN is 078-05-1120")
            flush(client)
        spans = [s for s in receiver.spans if s.name == "chat fake/x"]
        assert len(spans) == 2 and all(s.status_code == 2 for s in spans)   # the call and its attempt
        if capture:
            assert all("078-05-1120" in s.status_message for s in spans)
        else:
            assert [s.status_message for s in spans] == ["InvalidRequestError (HTTP 400)"] * 2
        receiver.spans.clear()


def test_a_local_collector_still_gets_local_only_content(tmp_path: Path, receiver: OTLPReceiver) -> None:
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "capture_content": True}) as client:
        client.chat("fake/echo", "stays on this machine", privacy="local-only")
        flush(client)
    [call] = [s for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes]
    assert "stays on this machine" in call.attributes["gen_ai.input.messages"]
    assert "cloverleaf.content_withheld" not in call.attributes


def test_a_local_only_calls_text_never_goes_through_a_proxy(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """The collector is on this machine, but the spans go through a proxy, which decides where
    they end up: under local-only the text is withheld, as for a collector that is not local."""
    proxy = ForwardProxy()
    try:
        with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint, "capture_content": True,
                                   "proxy": proxy.url}) as client:
            client.chat("fake/echo", "my private diary", privacy="local-only")
            client.chat("fake/echo", "a public note")
            flush(client)
    finally:
        proxy.close()
    assert proxy.seen and all(method == "POST" for method, _, _ in proxy.seen)     # the spans went through it
    roots = {s.attributes.get("cloverleaf.content_withheld"): s
             for s in receiver.named("chat") if "cloverleaf.attempt" not in s.attributes}
    assert "gen_ai.input.messages" not in roots["local-only"].attributes
    assert "a public note" in roots[None].attributes["gen_ai.input.messages"]
    assert all("my private diary" not in str(s.attributes) for s in receiver.spans)


def test_the_sdks_standard_switches_turn_spans_off() -> None:
    """``OTEL_SDK_DISABLED=true`` and ``OTEL_TRACES_EXPORTER=none`` were ignored: spans kept going
    to the collector the endpoint variable named. They turn spans off, even under a [telemetry] table."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    for switch in ({"OTEL_SDK_DISABLED": "true"}, {"OTEL_SDK_DISABLED": "TRUE"}, {"OTEL_TRACES_EXPORTER": "none"},
                   {"OTEL_TRACES_EXPORTER": " None "}):
        assert parse_telemetry(None, {**env, **switch}) is None, switch
        assert parse_telemetry({"otlp_endpoint": "http://c:4318"}, switch, from_env=False) is None, switch
    for still_on in ({"OTEL_SDK_DISABLED": "false"}, {"OTEL_SDK_DISABLED": ""}, {"OTEL_TRACES_EXPORTER": "otlp"},
                     {"OTEL_TRACES_EXPORTER": "otlp,none"}):
        assert parse_telemetry(None, {**env, **still_on}) is not None, still_on


def test_a_collector_that_speaks_another_otlp_protocol_is_refused_at_start() -> None:
    """``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` next to a :4317 endpoint used to start fine and post
    OTLP/HTTP to a gRPC port for ever (every batch dropped). It is a ConfigError naming the variable."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    with pytest.raises(ConfigError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL='grpc'.*http/protobuf"):
        parse_telemetry(None, {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(ConfigError, match=r"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json'"):
        parse_telemetry({}, {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                             "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})
    # the signal's own variable wins; http/protobuf is what the exporter speaks
    assert parse_telemetry(None, {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}) is not None
    # the variables describe the endpoint variables' collector, not a [telemetry] otlp_endpoint
    assert parse_telemetry({"otlp_endpoint": "http://c:4318"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) is not None


def test_resource_attributes_from_the_environment_reach_the_collector(tmp_path: Path, receiver: OTLPReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod, service.namespace=llm%2Cteam%3D1,"
                                       "service.name=from-attributes,"}
    for extra, service in (({}, "from-attributes"), ({"OTEL_SERVICE_NAME": "from-name"}, "from-name")):
        with client_for(tmp_path, {}, env={**env, **extra}) as client:
            client.chat("fake/echo", "resource")
            flush(client)
        [resource] = receiver.resources
        assert resource["deployment.environment.name"] == "prod" and resource["service.namespace"] == "llm,team=1"
        assert resource["service.name"] == service and resource["telemetry.sdk.name"] == "cloverleaf"
        receiver.resources.clear()
    cfg = parse_telemetry({"otlp_endpoint": "http://c:4318", "service_name": "from-table"},
                          {**env, "OTEL_SERVICE_NAME": "from-name"})
    assert cfg is not None and cfg.service_name == "from-table" and "service.name" not in cfg.resource
    with pytest.raises(ConfigError, match="OTEL_RESOURCE_ATTRIBUTES: 'oops' is not key=value"):
        parse_telemetry(None, {**env, "OTEL_RESOURCE_ATTRIBUTES": "a=1,oops"})


def test_a_short_script_delivers_its_spans_when_it_exits(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """A script's module-level ``cloverleaf.chat`` (or a Client it never closes) exited before the
    export thread's one-second wait was over, and its spans were lost. They are flushed at exit."""
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[telemetry]\notlp_endpoint = "{receiver.endpoint}"\n')
    env = {**os.environ, "CLOVERLEAF_CONFIG": str(config), "CLOVERLEAF_BACKEND": "fake", "XDG_DATA_HOME": str(tmp_path)}
    for code in ("import cloverleaf; print(cloverleaf.chat('fake/echo', 'module-level').content)",
                 "import cloverleaf; c = cloverleaf.Client(); print(c.chat('fake/echo', 'never closed').content)"):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and out.stdout.strip() in ("module-level", "never closed"), out.stderr
    assert [s.name for s in receiver.spans] == ["chat fake/echo"] * 4     # each call and its attempt


def _attempts(receiver: OTLPReceiver) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in receiver.spans if "cloverleaf.attempt" in s.attributes}


def test_each_attempts_request_carries_the_traceparent_of_its_own_span(tmp_path: Path,
                                                                       receiver: OTLPReceiver) -> None:
    """The upstream requests carried no ``traceparent``: a provider that traces (vLLM, another
    gateway) started orphan traces. Each attempt's request now names the call's trace and that
    attempt's span, which is exported with the same id: chats (a fallback's two attempts),
    streams and embeddings, in the caller's current OpenTelemetry span."""
    from opentelemetry.sdk.trace import TracerProvider

    app_tracer = TracerProvider().get_tracer("the-app")
    routes = {"smart": {"targets": ["fake/fail-503", "fake/echo"]}}
    with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint}, routes=routes) as client:
        with app_tracer.start_as_current_span("handle-request") as outer:
            client.chat("smart", "traced")
            list(client.stream("fake/echo", "traced stream"))
            client.embed("fake/embed", "traced embedding")
        flush(client)
        sent = [{k.lower(): v for k, v in r.headers.items()}.get("traceparent") for r in client.fake.requests]
    trace = f"{outer.get_span_context().trace_id:032x}"
    attempts = _attempts(receiver)
    assert len(sent) == 4 == len(attempts) and len(set(sent)) == 4           # one span id per attempt
    for header in sent:
        assert header is not None
        version, trace_id, span_id, flags = header.split("-")
        assert (version, trace_id, flags) == ("00", trace, "01")
        assert attempts[span_id].trace_id == trace                            # the span the request named
    first, second = (attempts[h.split("-")[2]] for h in sent[:2])    # the fallback's, in the order made
    assert (first.name, first.attributes["cloverleaf.attempt"]) == ("chat fake/fail-503", 1)
    assert (second.name, second.attributes["cloverleaf.attempt"]) == ("chat fake/echo", 2)


def test_spans_name_the_provider_and_server_of_every_attempt(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """The call span of a failed call had no ``gen_ai.provider.name``, no span had
    ``server.address``/``server.port``, a successful attempt had no ``http.response.status_code``,
    and providers went by cloverleaf's names (``mistral``, an operator's ``mock``), which backends
    keyed on the conventions' well-known values do not recognise."""
    mock = OpenAIMock()
    port = int(mock.base_url.rsplit(":", 1)[1].split("/")[0])
    entry = ModelEntry(name="m1", provider="mistral", identifier="mistral-small", base_url=mock.base_url)
    try:
        with client_for(tmp_path, {"otlp_endpoint": receiver.endpoint}, providers={"mock": mock.provider()},
                        models=[entry], env={"MOCK_KEY": "k", "MISTRAL_API_KEY": "k"}) as client:
            client.chat("mock/gpt-test", "hello")
            client.chat("m1", "bonjour")
            with pytest.raises(cloverleaf.ProviderError):
                client.chat("fake/fail-500", "boom")
            flush(client)
    finally:
        mock.close()
    for model, name, provider in (("mock/gpt-test", "openai", "mock"), ("m1", "mistral_ai", "mistral")):
        call, attempt = sorted(receiver.named(f"chat {model}"), key=lambda s: "cloverleaf.attempt" in s.attributes)
        for span in (call, attempt):
            a = span.attributes
            assert (a["gen_ai.provider.name"], a["gen_ai.system"], a["cloverleaf.provider"]) == (name, name, provider)
            assert (a["server.address"], a["server.port"]) == ("127.0.0.1", port)
        assert attempt.attributes["http.response.status_code"] == 200
    failed, attempt = sorted(receiver.named("chat fake/fail-500"), key=lambda s: "cloverleaf.attempt" in s.attributes)
    for span in (failed, attempt):
        a = span.attributes
        assert a["gen_ai.provider.name"] == "fake" and a["cloverleaf.provider"] == "fake"
        assert (a["server.address"], a["server.port"]) == ("fake.cloverleaf.invalid", 80)
    assert attempt.attributes["http.response.status_code"] == 500


@pytest.mark.parametrize(("model", "base_url", "name", "address"), [
    ("openai/gpt-4o", None, "openai", "api.openai.com"),
    ("openai-responses/o3", None, "openai", "api.openai.com"),
    ("anthropic/claude-x", None, "anthropic", "api.anthropic.com"),
    ("gemini/gemini-2.0-flash", None, "gcp.gemini", "generativelanguage.googleapis.com"),
    ("gemini/gemini-2.0-flash", "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1"
     "/publishers/google", "gcp.vertex_ai", "us-central1-aiplatform.googleapis.com"),
    ("bedrock/anthropic.claude-3", None, "aws.bedrock", "bedrock-runtime.eu-west-1.amazonaws.com"),
    ("azure/dep", "https://r.openai.azure.com/openai/deployments/dep", "azure.ai.openai", "r.openai.azure.com"),
    ("mistral/mistral-small", None, "mistral_ai", "api.mistral.ai"),
    ("xai/grok-3", None, "x_ai", "api.x.ai"),
    ("deepseek/deepseek-chat", None, "deepseek", "api.deepseek.com"),
    ("groq/llama-3.3", None, "groq", "api.groq.com"),
    ("perplexity/sonar", None, "perplexity", "api.perplexity.ai"),
    ("together/llama", None, "openai", "api.together.xyz"),             # OpenAI's API: by kind
    ("mine/claude", None, "anthropic", "claude.internal"),             # [providers.mine] kind = "anthropic"
    ("ollama/llama3", None, "ollama", "localhost"),                    # a kind the conventions do not name
    ("local/default", None, "local_embeddings", None),                 # in process: no server
])
def test_provider_names_are_the_conventions_well_known_values(model: str, base_url: str | None, name: str,
                                                              address: str | None) -> None:
    providers = {"bedrock": ProviderSettings(name="bedrock", extra={"region": "eu-west-1"}),
                 "mine": ProviderSettings(name="mine", kind="anthropic", base_url="https://claude.internal:8443")}
    from cloverleaf.gateway.semconv import server_of

    target = Engine(Settings(env={}, providers=providers)).resolve(model, base_url=base_url)
    server = server_of(target, target.provider)
    assert (server.provider_name, server.address) == (name, address)
