"""OpenTelemetry spans for gateway calls, per the GenAI semantic conventions.

Off unless ``[telemetry]`` names a collector (or, for the server, the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variables are set):
then nothing of OpenTelemetry is imported. On, each call becomes one span (``chat
{requested model}``) with one child span per attempt (``chat {target}``), continuing the
incoming ``traceparent`` on the server and the caller's current span in the SDK.

The spans are built when the call has ended, from the same facts as its call record (the
attempts, their timings and errors, tokens, cost, cache), so the request path pays for one
span-building step after the answer is out, never for export: a ``BatchSpanProcessor``
sends spans from its own thread, and a dead collector costs a log line. Prompt and answer
text go into spans only with ``capture_content = true``, and never for a call under the
``local-only`` privacy policy when the collector is not itself local (the span carries
``cloverleaf.content_withheld = "local-only"`` instead).

::

    [telemetry]
    otlp_endpoint = "http://127.0.0.1:4318"   # OTLP/HTTP; "/v1/traces" is added when missing
    service_name = "cloverleaf"
    capture_content = false
    headers = { "x-honeycomb-team" = "..." }   # or OTEL_EXPORTER_OTLP_HEADERS
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigError

log = logging.getLogger("cloverleaf.gateway.telemetry")

_KEYS = {"otlp_endpoint", "service_name", "capture_content", "headers", "export_timeout", "enabled"}
_OPERATIONS = {"chat": "chat", "stream": "chat", "embed": "embeddings", "image": "image_generation"}


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    endpoint: str
    service_name: str = "cloverleaf"
    capture_content: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    export_timeout: float = 5.0


def parse_telemetry(table: Mapping[str, Any] | None, env: Mapping[str, str], *,
                    from_env: bool = True) -> TelemetryConfig | None:
    """The telemetry settings, or None when spans are off. ``from_env``: the standard OTLP
    variables alone turn it on (the server; the SDK asks for an explicit ``[telemetry]``)."""
    table = dict(table or {})
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"[telemetry]: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    if table.get("enabled") is False:
        return None
    endpoint = table.get("otlp_endpoint")
    if not endpoint and (from_env or table):
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        if table:
            raise ConfigError("[telemetry] needs otlp_endpoint = \"http://collector:4318\" (OTLP/HTTP), or "
                              "OTEL_EXPORTER_OTLP_ENDPOINT in the environment")
        return None
    endpoint = str(endpoint)
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"[telemetry] otlp_endpoint must be an http(s) URL (OTLP/HTTP), got {endpoint!r}")
    if not endpoint.rstrip("/").endswith("/v1/traces") and not env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    headers = table.get("headers") or _env_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    if not isinstance(headers, Mapping):
        raise ConfigError("[telemetry] headers must be a table of header = \"value\"")
    capture = table.get("capture_content", False)
    if not isinstance(capture, bool):
        raise ConfigError(f"[telemetry] capture_content must be true or false, got {capture!r}")
    return TelemetryConfig(endpoint=endpoint,
                           service_name=str(table.get("service_name") or env.get("OTEL_SERVICE_NAME") or "cloverleaf"),
                           capture_content=capture, headers={str(k): str(v) for k, v in headers.items()},
                           export_timeout=float(table.get("export_timeout", 5.0)))


def _env_headers(raw: str) -> dict[str, str]:
    out = {}
    for pair in raw.split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


class Telemetry:
    """One tracer provider (not the process-global one: the application's own stays its own)."""

    def __init__(self, config: TelemetryConfig) -> None:
        try:
            from opentelemetry import context as otel_context
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        except ImportError as exc:
            raise ImportError("OpenTelemetry export needs the otel extra: pip install 'cloverleaf[otel]'") from exc
        self.config = config
        self._trace = trace
        self._context = otel_context
        self._propagator = TraceContextTextMapPropagator()
        self.provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
        exporter = OTLPSpanExporter(endpoint=config.endpoint, headers=dict(config.headers) or None,
                                    timeout=config.export_timeout)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("cloverleaf")
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._kind, self._status, self._error = SpanKind.CLIENT, Status, StatusCode.ERROR

    def parent(self, traceparent: str | None) -> Any:
        """The context a call's span hangs from: the incoming ``traceparent`` when there is
        one, else whatever span is current for the caller."""
        if traceparent:
            return self._propagator.extract({"traceparent": traceparent})
        return self._context.get_current()

    def export(self, record: Any, ended: list[float], parent: Any, request: Any = None, response: Any = None, *,
               withhold_content: bool = False) -> None:
        """Spans for one finished call (its record and the end time of each attempt).
        ``withhold_content``: a local-only call whose text must not reach this collector (it is
        not local); its span says so instead of carrying the messages."""
        try:
            self._export(record, ended, parent, request, response, withhold_content)
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a call
            log.warning("could not build the OpenTelemetry spans for a call: %s", type(exc).__name__)

    def _export(self, record: Any, ended: list[float], parent: Any, request: Any, response: Any,
                withhold_content: bool) -> None:
        op = _OPERATIONS.get(record.operation, record.operation)
        start = _ns(record.created_at)
        end = start + int((record.latency_ms or 0.0) * 1e6)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": op,
            "gen_ai.request.model": record.requested_model,
            "cloverleaf.call_id": record.id,
            "cloverleaf.route": record.requested_model,
            "cloverleaf.status": record.status,
            "cloverleaf.attempts": len(record.attempts),
            "cloverleaf.fallback": len({a.target for a in record.attempts}) > 1,
        }
        _put(attrs, "gen_ai.provider.name", record.provider)
        _put(attrs, "gen_ai.system", record.provider)
        _put(attrs, "gen_ai.response.model", record.model)
        _put(attrs, "cloverleaf.target", record.target)
        _put(attrs, "cloverleaf.cost_usd", record.cost)
        _put(attrs, "cloverleaf.cache", record.cache)
        _put(attrs, "cloverleaf.trace_id", record.trace_id)
        _put(attrs, "cloverleaf.key_id", record.key_id)
        _put(attrs, "cloverleaf.ttft_ms", record.ttft_ms)
        if record.status == "ok" or record.input_tokens or record.output_tokens:
            attrs["gen_ai.usage.input_tokens"] = record.input_tokens
            attrs["gen_ai.usage.output_tokens"] = record.output_tokens
        if request is not None:
            for name, attr in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p"),
                               ("max_tokens", "gen_ai.request.max_tokens"), ("seed", "gen_ai.request.seed")):
                _put(attrs, attr, getattr(request, name, None))
        finish = getattr(response, "finish_reason", None)
        if finish:
            attrs["gen_ai.response.finish_reasons"] = [str(finish)]
        rid = getattr(getattr(response, "metadata", None), "response_id", None)
        _put(attrs, "gen_ai.response.id", rid)
        if record.error_type:
            attrs["error.type"] = record.error_type
        if self.config.capture_content and withhold_content:
            attrs["cloverleaf.content_withheld"] = "local-only"
        elif self.config.capture_content:
            _put(attrs, "gen_ai.input.messages", _input_messages(request))
            _put(attrs, "gen_ai.output.messages", _output_messages(response))
        span = self._tracer.start_span(f"{op} {record.requested_model}", context=parent, kind=self._kind,
                                       attributes=attrs, start_time=start)
        if record.error_type:
            span.set_status(self._status(self._error, (record.error_message or "")[:500]))
        child_parent = self._trace.set_span_in_context(span)
        for i, (attempt, at) in enumerate(zip(record.attempts, ended, strict=False)):
            a_end = _ns(at)
            a_start = a_end - int((attempt.latency_ms or 0.0) * 1e6)
            a_attrs: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.request.model": attempt.target,
                                       "cloverleaf.target": attempt.target, "cloverleaf.attempt": i + 1}
            _put(a_attrs, "gen_ai.provider.name", attempt.provider)
            _put(a_attrs, "gen_ai.system", attempt.provider)
            _put(a_attrs, "http.response.status_code", attempt.http_status)
            if attempt.error_type:
                a_attrs["error.type"] = attempt.error_type
            child = self._tracer.start_span(f"{op} {attempt.target}", context=child_parent, kind=self._kind,
                                            attributes=a_attrs, start_time=max(start, a_start))
            if attempt.error_type:
                child.set_status(self._status(self._error, (attempt.error_message or "")[:500]))
            child.end(end_time=max(start, a_end))
        span.end(end_time=end)

    def close(self) -> None:
        try:
            self.provider.shutdown()
        except Exception as exc:  # noqa: BLE001 - closing never fails the caller
            log.debug("OpenTelemetry shutdown: %s", exc)


def open_telemetry(table: Mapping[str, Any] | None, env: Mapping[str, str], *, from_env: bool) -> Telemetry | None:
    config = parse_telemetry(table, env, from_env=from_env)
    return Telemetry(config) if config is not None else None


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _put(attrs: dict[str, Any], name: str, value: Any) -> None:
    if value is not None and value != "":
        attrs[name] = value


def _input_messages(request: Any) -> str | None:
    messages = getattr(request, "messages", None)
    if messages is None:
        inputs = getattr(request, "inputs", None)
        return json.dumps(inputs, ensure_ascii=False) if inputs is not None else None
    out = [{"role": m.role.value, "parts": [{"type": "text", "content": m.content}]} for m in messages]
    return json.dumps(out, ensure_ascii=False)


def _output_messages(response: Any) -> str | None:
    content = getattr(response, "content", None)
    if content is None:
        return None
    parts: list[dict[str, Any]] = [{"type": "text", "content": content}] if content else []
    for call in getattr(response, "tool_calls", None) or ():
        parts.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments})
    return json.dumps([{"role": "assistant", "parts": parts,
                        "finish_reason": getattr(response, "finish_reason", None)}], ensure_ascii=False, default=str)
