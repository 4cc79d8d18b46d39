"""The OpenTelemetry SDK's standard environment variables beyond the exporter's endpoint.

An operator who runs ``cloverleaf serve`` next to services instrumented with the OpenTelemetry
SDK sets these once for all of them, so cloverleaf reads them as the SDK does:

- ``OTEL_SDK_DISABLED=true`` and ``OTEL_TRACES_EXPORTER=none`` turn spans off, whatever else
  is configured (the SDK's kill switches: ignored, they left spans flowing to a collector the
  operator had just switched off);
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` say what the
  collector behind the endpoint variables speaks: cloverleaf writes OTLP/HTTP protobuf only,
  so ``grpc`` (port 4317, where OTLP/HTTP posts only fail) or ``http/json`` is a ConfigError
  at start, not spans dropped for as long as the process runs;
- ``OTEL_RESOURCE_ATTRIBUTES`` (``key=value,...``, values percent-encoded) goes into the
  resource every span is exported with, ``service.name`` below ``OTEL_SERVICE_NAME`` (the
  specification's order) and a ``[telemetry] service_name`` above both.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from .._errors import ConfigError

#: the one OTLP protocol the exporter speaks (``otlp_export.py``)
PROTOCOL = "http/protobuf"


def spans_disabled(env: Mapping[str, str]) -> str | None:
    """The variable that turns spans off (``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none``),
    or None. Only ``true`` (any case) is true, as the specification reads a boolean."""
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED=true"
    exporters = [e.strip().lower() for e in (env.get("OTEL_TRACES_EXPORTER") or "").split(",") if e.strip()]
    if exporters and all(e == "none" for e in exporters):
        return "OTEL_TRACES_EXPORTER=none"
    return None


def check_protocol(env: Mapping[str, str]) -> None:
    """Refuse a collector that does not speak OTLP/HTTP protobuf, naming the variable that says so
    (the signal's own first, as the specification orders them)."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = (env.get(name) or "").strip()
        if not value:
            continue
        if value.lower() != PROTOCOL:
            raise ConfigError(f"{name}={value[:40]!r}: cloverleaf exports spans over OTLP/HTTP with protobuf only "
                              f"({PROTOCOL}); set {name}={PROTOCOL} and point the endpoint at the collector's "
                              "OTLP/HTTP port (4318 by default), or unset it")
        return


def resource_attributes(env: Mapping[str, str]) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` as a dict; values percent-decoded (W3C baggage's encoding,
    so a value may hold ``,`` or ``=`` as ``%2C`` and ``%3D``). An entry that is not ``key=value``
    is a ConfigError (as a malformed ``OTEL_TRACES_SAMPLER`` is), never silently half read."""
    out: dict[str, str] = {}
    for entry in (env.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"OTEL_RESOURCE_ATTRIBUTES: {entry.strip()[:60]!r} is not key=value; write "
                              "key1=value1,key2=value2 with the values percent-encoded")
        out[key.strip()] = unquote(value.strip())
    return out
