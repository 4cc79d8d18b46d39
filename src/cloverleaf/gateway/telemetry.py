"""OpenTelemetry spans for gateway calls, per the GenAI semantic conventions.

Off unless ``[telemetry]`` names a collector (or, for the server, the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variables are set),
and off whenever ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` (``otel_env.py``).
On, each call becomes one span (``chat {requested model}``) with one child span per attempt
(``chat {target}``), continuing the incoming ``traceparent`` on the server and the caller's
current span in the SDK (read through ``opentelemetry-api`` when the application uses it;
cloverleaf itself never imports OpenTelemetry). The call's ids are fixed when it is admitted
(``trace_context.py``), so each attempt's request carries the ``traceparent`` of its own span to
the provider. Providers and servers are named as the GenAI conventions name them (``semconv.py``).

The spans are built when the call has ended, from the same facts as its call record (the
attempts, their timings and errors, tokens, cost, cache), straight into OTLP protobuf bytes
(``otlp_wire.py``: the OpenTelemetry SDK's span objects cost about ten times as much), so the
request path pays for one encoding step after the answer is out, never for export: a
background thread sends batches (``otlp_export.py``), and a dead collector costs a log line. Prompt and answer
(their text, tool calls and results, and the kind of each attachment: ``span_messages.py``) go
into spans only with ``capture_content = true``, and never for a call under the
``local-only`` privacy policy when the collector is not itself local or is reached through a
proxy (the span carries ``cloverleaf.content_withheld = "local-only"`` instead). The same holds
for a provider's error message, which can quote either: otherwise an error span's status says
only the error's type and HTTP status.

::

    [telemetry]
    otlp_endpoint = "http://127.0.0.1:4318"   # OTLP/HTTP; "/v1/traces" is added when missing
    service_name = "cloverleaf"
    capture_content = false
    headers = { "x-honeycomb-team" = "..." }   # or OTEL_EXPORTER_OTLP_HEADERS
    compression = "gzip"                       # or OTEL_EXPORTER_OTLP_COMPRESSION; default none
    certificate = "/etc/ssl/collector-ca.pem"  # or OTEL_EXPORTER_OTLP_CERTIFICATE; default certifi's
    proxy = "env"                              # HTTPS_PROXY/HTTP_PROXY/NO_PROXY; "none", or "http://proxy:3128"
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from .._errors import REDACTED, ConfigError
from .._secret_repr import masked_repr
from .._secret_urls import masked_url
from .._setting_values import boolean, env_number, not_a_table, seconds, text, text_table
from .._version import __version__
from . import otel_env, otlp_wire, span_messages
from .otlp_export import SpanExporter
from .semconv import VENDORS, Server, server_of
from .trace_context import CallSpan, SpanParent, parse_traceparent

log = logging.getLogger("cloverleaf.gateway.telemetry")

_KEYS = {"otlp_endpoint", "service_name", "capture_content", "headers", "export_timeout", "enabled", "compression",
         "certificate", "proxy"}
#: OTEL_TRACES_SAMPLER values (the OpenTelemetry SDK's names; the ratio from OTEL_TRACES_SAMPLER_ARG)
SAMPLERS = ("parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio", "always_on",
            "always_off", "traceidratio")
#: attributes whose values are new on every call (not worth remembering encoded: ``otlp_wire.attributes``)
_UNIQUE = frozenset({"cloverleaf.call_id", "cloverleaf.trace_id", "gen_ai.response.id", "gen_ai.input.messages",
                     "gen_ai.output.messages"})
_OPERATIONS = {"chat": "chat", "stream": "chat", "embed": "embeddings", "image": "image_generation"}


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    endpoint: str
    service_name: str = "cloverleaf"
    capture_content: bool = False
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)   # the collector's API key, often
    export_timeout: float = 5.0
    compression: str | None = None          # "gzip"
    certificate: str | None = None          # a CA bundle for an https collector (default: certifi's)
    sampler: str = "parentbased_always_on"
    sample_ratio: float = 1.0
    #: the http:// proxy the spans go through (``proxy_for``), or None: straight to the collector
    proxy: str | None = field(default=None, repr=False)
    #: more resource attributes (``OTEL_RESOURCE_ATTRIBUTES``, less ``service.name``)
    resource: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)


def parse_telemetry(table: Mapping[str, Any] | None, env: Mapping[str, str], *,
                    from_env: bool = True) -> TelemetryConfig | None:
    """The telemetry settings, or None when spans are off. ``from_env``: the standard OTLP
    variables alone turn it on (the server; the SDK asks for an explicit ``[telemetry]``)."""
    if table is not None and not isinstance(table, Mapping):
        raise ConfigError(not_a_table("[telemetry]", table, 'otlp_endpoint = "http://127.0.0.1:4318"'))
    table = dict(table or {})
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"[telemetry]: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    if not boolean("[telemetry] enabled", table.get("enabled", True)):
        return None
    for key in ("otlp_endpoint", "service_name", "compression", "certificate"):   # service_name = 5 was "5"
        if table.get(key) is not None:
            text(f"[telemetry] {key}", table[key])
    if (switch := otel_env.spans_disabled(env)) is not None:
        log.debug("OpenTelemetry spans are off: %s", switch)
        return None
    endpoint = table.get("otlp_endpoint")
    # the signal's own variable is the full URL to post to (OTel's rule); any other endpoint is
    # a base URL that gets /v1/traces — whatever else the environment holds
    full_url = False
    if not endpoint and (from_env or table):
        full_url = bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint:   # the protocol variables describe the collector the endpoint variables name
            otel_env.check_protocol(env)
    if not endpoint:
        if table:
            raise ConfigError("[telemetry] needs otlp_endpoint = \"http://collector:4318\" (OTLP/HTTP), or "
                              "OTEL_EXPORTER_OTLP_ENDPOINT in the environment")
        return None
    endpoint = str(endpoint)
    if not endpoint.startswith(("http://", "https://")):
        # a collector's URL may carry a password or a token: the error (stderr, doctor) shows it masked
        raise ConfigError(f"[telemetry] otlp_endpoint must be an http(s) URL (OTLP/HTTP), got "
                          f"{masked_url(endpoint, REDACTED)!r}")
    if not endpoint.rstrip("/").endswith("/v1/traces") and not full_url:
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    # { x = 5 } was sent as "5"
    headers = text_table("[telemetry] headers", table["headers"], '"x-team" = "..."') if "headers" in table else {}
    if not headers:
        headers = _env_headers(_otlp_env(env, "HEADERS") or "")
    capture = boolean("[telemetry] capture_content", table.get("capture_content", False))
    compression = str(table.get("compression") or _otlp_env(env, "COMPRESSION") or "none").lower()
    if compression not in ("gzip", "none"):
        raise ConfigError(f"[telemetry] compression must be \"gzip\" or \"none\", got {compression!r}")
    sampler = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    if sampler not in SAMPLERS:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={sampler!r} is not supported; use one of {', '.join(SAMPLERS)}")
    ratio = 1.0
    if sampler.endswith("traceidratio"):
        ratio = env_number(f"OTEL_TRACES_SAMPLER_ARG (the ratio {sampler} keeps)",
                           env.get("OTEL_TRACES_SAMPLER_ARG") or "1", maximum=1.0)
    certificate = table.get("certificate") or _otlp_env(env, "CERTIFICATE")
    if certificate is not None and not os.path.isfile(str(certificate)):
        raise ConfigError(f"[telemetry] certificate (or OTEL_EXPORTER_OTLP_CERTIFICATE): no file at {certificate!r}; "
                          "give the path of the CA bundle that signed the collector's certificate")
    resource = otel_env.resource_attributes(env)
    service_name = (table.get("service_name") or env.get("OTEL_SERVICE_NAME") or resource.pop("service.name", None)
                    or "cloverleaf")
    resource.pop("service.name", None)
    return TelemetryConfig(endpoint=endpoint, service_name=str(service_name), resource=resource,
                           capture_content=capture, headers={str(k): str(v) for k, v in headers.items()},
                           export_timeout=seconds("[telemetry] export_timeout", table.get("export_timeout", 5.0)),
                           compression=None if compression == "none" else compression,
                           certificate=None if certificate is None else str(certificate),
                           sampler=sampler, sample_ratio=ratio, proxy=proxy_for(endpoint, table.get("proxy", "env"), env))


def proxy_for(endpoint: str, setting: object, env: Mapping[str, str]) -> str | None:
    """The proxy the exporter reaches ``endpoint`` through, or None.

    ``"env"`` (the default) reads the environment as ``requests`` and httpx do, so a gateway
    behind a corporate proxy exports as the OpenTelemetry SDK's exporter did: ``https_proxy``
    (or ``http_proxy`` for an http collector), else ``all_proxy``, lower case before upper, and
    none for a host ``no_proxy`` names. ``"none"``: straight to the collector. Any other value
    is the proxy's URL. Only http:// proxies (``otlp_export`` speaks CONNECT and absolute URLs);
    anything else is a ConfigError at start, not export failures later. The URL may carry
    credentials, so no message here quotes it."""
    if not isinstance(setting, str) or not setting.strip():
        raise ConfigError('[telemetry] proxy must be "env", "none" or a proxy URL such as "http://proxy:3128"')
    setting = setting.strip()
    if setting.lower() == "none":
        return None
    if setting.lower() == "env":
        target = urlsplit(endpoint)

        def var(name: str) -> str | None:
            return env.get(name) or env.get(name.upper()) or None

        proxy = var(f"{target.scheme}_proxy") or var("all_proxy")
        if proxy is None:
            return None
        port = target.port or (443 if target.scheme == "https" else 80)
        if _bypassed(target.hostname or "", port, var("no_proxy") or ""):
            return None
        source = "the environment's proxy (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY)"
    else:
        proxy, source = setting, "[telemetry] proxy"
    if "://" not in proxy:   # "proxy:3128", as requests and httpx read it
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ConfigError(f"{source} must be an http:// proxy (host and port) for the span exporter, not a "
                          f"{parts.scheme or 'malformed'} URL; set [telemetry] proxy = \"none\" to reach the "
                          f"collector directly, or name an http:// proxy there")
    return proxy


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Does ``no_proxy`` name ``host`` (and ``port``)? Its entries as curl, requests and httpx
    read them: ``*`` for every host, a name matching itself and its subdomains (a leading dot
    or not), ``name:port`` for that port only, an address or a CIDR block for addresses."""
    host = host.lower().strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name, only_port = entry, None
        if entry.count(":") == 1:   # name:port (an IPv6 entry has more colons)
            name, _, digits = entry.partition(":")
            only_port = int(digits) if digits.isdigit() else -1
        name = name.strip("[]").lstrip(".")
        if not name or (only_port is not None and only_port != port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
                continue
            except ValueError:
                pass   # not an address: compared as a name
        if host == name or host.endswith("." + name):
            return True
    return False


def _otlp_env(env: Mapping[str, str], name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>`` (the spec's order)."""
    return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}") or None


def _env_headers(raw: str) -> dict[str, str]:
    out = {}
    for pair in raw.split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():   # values are percent-encoded (the W3C baggage format)
            out[unquote(name.strip())] = unquote(value.strip())
    return out


class Telemetry:
    """Spans for finished calls, encoded here (``otlp_wire.py``) and sent by a background
    thread (``otlp_export.py``); no OpenTelemetry SDK, so the application's own tracer
    provider, if it has one, stays its own."""

    def __init__(self, config: TelemetryConfig) -> None:
        self.config = config
        resource = {**config.resource, "service.name": config.service_name, "telemetry.sdk.language": "python",
                    "telemetry.sdk.name": "cloverleaf", "telemetry.sdk.version": __version__}
        head = otlp_wire.resource_head(resource, "cloverleaf", __version__)
        self.exporter = SpanExporter(config.endpoint, config.headers, config.export_timeout,
                                     lambda spans: otlp_wire.export_request(head, spans),
                                     gzip=config.compression == "gzip", cafile=config.certificate,
                                     proxy=config.proxy)
        self._ids = random.Random()

    def begin(self, traceparent: str | None, tracestate: str | None = None) -> CallSpan:
        """A call's span as it is admitted: its trace (the parent's, else a new one), its span
        id and the sampling decision, fixed now so that each attempt's request can carry the
        ``traceparent`` its span will be exported with (``CallSpan.upstream_headers``)."""
        parent = self.parent(traceparent, tracestate)
        trace_id = parent.trace_id if parent is not None else self._new_id(16)
        return CallSpan(trace_id, self._new_id(8), parent, self._sampled(trace_id, parent), self._new_id)

    def parent(self, traceparent: str | None, tracestate: str | None = None) -> SpanParent | None:
        """The span a call's span hangs from: the incoming ``traceparent`` (and its
        ``tracestate``) when there is one (a malformed one is ignored: the call starts a trace),
        else the caller's current OpenTelemetry span — looked up only when the application has
        imported OpenTelemetry, since otherwise it cannot have one."""
        if traceparent:
            return parse_traceparent(traceparent, tracestate)
        if "opentelemetry.trace" not in sys.modules:
            return None
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        state = ctx.trace_state.to_header() if ctx.trace_state else None
        return SpanParent(ctx.trace_id.to_bytes(16, "big"), ctx.span_id.to_bytes(8, "big"),
                          bool(ctx.trace_flags & 1), state or None)

    def export(self, record: Any, ended: list[float], span: CallSpan, request: Any = None,
               response: Any = None, *, withhold_content: bool = False, targets: Sequence[Any] = ()) -> None:
        """Spans for one finished call (its record and the end time of each attempt), queued for
        export with the ids ``span`` gave it. ``withhold_content``: a local-only call whose text
        must not reach this collector (it is not local); its span says so instead of carrying
        the messages. A call that was not sampled has no spans (a parent's W3C flag is kept, as
        OpenTelemetry's default sampler does). ``targets``: the call's route's targets (the
        router's), for the provider and server each attempt went to."""
        if not span.sampled:
            return
        try:
            spans = self._spans(record, ended, span, request, response, withhold_content, targets)
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a call
            log.warning("could not build the OpenTelemetry spans for a call: %s", type(exc).__name__)
            return
        self.exporter.add(spans)

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Send every queued span now (tests, and before a short-lived process exits)."""
        return self.exporter.force_flush(timeout)

    def _sampled(self, trace_id: bytes, parent: SpanParent | None) -> bool:
        """``OTEL_TRACES_SAMPLER``: the parent's decision when there is one (parentbased_*,
        the default), else always, never, or by trace id (the SDK's TraceIdRatioBased rule:
        the id's low 64 bits below ratio x 2^64, so every service samples a trace alike)."""
        sampler = self.config.sampler
        if parent is not None and sampler.startswith("parentbased_"):
            return parent.sampled
        if sampler.endswith("always_on"):
            return True
        if sampler.endswith("always_off"):
            return False
        return int.from_bytes(trace_id[8:], "big") < round(self.config.sample_ratio * (1 << 64))

    def _spans(self, record: Any, ended: list[float], span: CallSpan, request: Any, response: Any,
               withhold_content: bool, targets: Sequence[Any]) -> list[bytes]:
        op = _OPERATIONS.get(record.operation, record.operation)
        start = _ns(record.created_at)
        end = start + int((record.latency_ms or 0.0) * 1e6)
        servers = {t.key: server_of(t.target, t.provider) for t in targets}
        attempts = record.attempts
        # the call's provider and server: the answering target's, else (a failed call) its last attempt's
        last = attempts[-1] if attempts else None
        answering = record.target or (last.target if last is not None else None)
        provider = record.provider or (last.provider if last is not None else None)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": op,
            "gen_ai.request.model": record.requested_model,
            "cloverleaf.call_id": record.id,
            "cloverleaf.route": record.requested_model,
            "cloverleaf.status": record.status,
            "cloverleaf.attempts": len(attempts),
            "cloverleaf.fallback": len({a.target for a in attempts}) > 1,
        }
        # a cache hit names the provider of its answer, and no server: none was asked
        _provider_attrs(attrs, provider, servers.get(answering) if answering else None, asked=last is not None)
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
            _put(attrs, "gen_ai.input.messages", span_messages.input_messages(request))
            _put(attrs, "gen_ai.output.messages", span_messages.output_messages(response))
        content = self.config.capture_content and not withhold_content
        error = _error_text(record.error_type, record.error_message, _call_status(record), content)
        parent = span.parent
        spans = [otlp_wire.span(span.trace_id, span.span_id, parent.span_id if parent is not None else None,
                                f"{op} {record.requested_model}", start, end, attrs, error, unique=_UNIQUE)]
        ids = span.attempt_ids
        for i, (attempt, at) in enumerate(zip(attempts, ended, strict=False)):
            a_end = _ns(at)
            a_start = a_end - int((attempt.latency_ms or 0.0) * 1e6)
            a_attrs: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.request.model": attempt.target,
                                       "cloverleaf.target": attempt.target, "cloverleaf.attempt": i + 1}
            server = servers.get(attempt.target)
            _provider_attrs(a_attrs, attempt.provider, server, asked=True)
            status = attempt.http_status
            if status is None and attempt.ok and server is not None and server.address is not None:
                status = 200   # an answer the engine took over HTTP: every API it speaks answers 200
            _put(a_attrs, "http.response.status_code", status)
            if attempt.error_type:
                a_attrs["error.type"] = attempt.error_type
            a_error = _error_text(attempt.error_type, attempt.error_message, attempt.http_status, content)
            spans.append(otlp_wire.span(span.trace_id, ids.get(i) or self._new_id(8), span.span_id,
                                        f"{op} {attempt.target}", max(start, a_start), max(start, a_end), a_attrs,
                                        a_error))
        return spans

    def _new_id(self, size: int) -> bytes:
        """A random trace (16 bytes) or span (8 bytes) id; never all zeros, which means "none"."""
        while True:
            n = self._ids.getrandbits(size * 8)
            if n:
                return n.to_bytes(size, "big")

    def close(self) -> None:
        try:
            self.exporter.shutdown(self.config.export_timeout)
        except Exception as exc:  # noqa: BLE001 - closing never fails the caller
            log.debug("OpenTelemetry shutdown: %s", exc)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _error_text(error_type: str | None, message: str | None, status: int | None, content: bool) -> str | None:
    """A span's error status: None when there was no error. A provider's message can quote the
    prompt (a 400 naming the value it refused) and a content filter's the answer, so it is
    content: it goes into the span only where content does (``content``: ``capture_content``
    on, and the call not withheld under local-only). Otherwise a summary made of cloverleaf's
    own error type and the HTTP status, which cannot carry a word of the call:
    ``InvalidRequestError (HTTP 400)``."""
    if not error_type:
        return None
    if content:
        return (message or "")[:500]
    return f"{error_type} (HTTP {status})" if status else error_type


def _call_status(record: Any) -> int | None:
    """The HTTP status behind a failed call's own error: its last attempt's, when that attempt
    failed with the error the call failed with (a plain model id's upstream error), else None
    (``AllTargetsFailed``, a local refusal)."""
    last = record.attempts[-1] if record.attempts else None
    if last is not None and last.error_type == record.error_type:
        return int(last.http_status) if last.http_status else None
    return None


def _provider_attrs(attrs: dict[str, Any], provider: str | None, server: Server | None, *, asked: bool) -> None:
    """``gen_ai.provider.name`` (and the deprecated ``gen_ai.system``) as the conventions name
    the provider, cloverleaf's own name for it, and (``asked``) the server its requests went to."""
    if provider is None:
        return
    name = server.provider_name if server is not None else VENDORS.get(provider, provider)
    attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = name
    attrs["cloverleaf.provider"] = provider
    if asked and server is not None and server.address is not None:
        attrs["server.address"] = server.address
        attrs["server.port"] = server.port


def _put(attrs: dict[str, Any], name: str, value: Any) -> None:
    if value is not None and value != "":
        attrs[name] = value
