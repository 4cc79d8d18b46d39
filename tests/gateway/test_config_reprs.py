"""The gateway's parsed configuration printed or logged: hosts and settings readable, no
password, query key or header secret (:mod:`cloverleaf._secret_repr`)."""

from __future__ import annotations

from cloverleaf._config import Settings
from cloverleaf.gateway.cache.config import parse_cache
from cloverleaf.gateway.config import StoreConfig, TargetSpec, parse
from cloverleaf.gateway.store.records import ModelEntryRow
from cloverleaf.gateway.telemetry import TelemetryConfig

SECRETS = ("PGPASS1", "REDISPW2", "QKEY3", "PROXYPW4", "AWSSECRET5", "ROUTEKEY6")


def _leaks(value: object) -> list[str]:
    text = repr(value) + str(value) + f"{value!r}" + repr([value])
    return [secret for secret in SECRETS if secret in text]


def test_a_parsed_gateway_config_shows_its_urls_masked() -> None:
    cfg = parse(Settings(gateway=True, store={"url": "postgresql://app:PGPASS1@db.internal/cl?sslmode=require"},
                         state={"url": "redis://:REDISPW2@redis.internal:6379/0"},
                         routes={"smart": {"targets": [{"model": "openai/gpt-4o", "api_key_env": "K",
                                                        "base_url": "https://proxy.internal/v1?api-key=QKEY3"}]}},
                         env={"K": "ROUTEKEY6"}))
    assert _leaks(cfg) == [] and _leaks(cfg.store) == [] and _leaks(cfg.routes["smart"]) == []
    shown = repr(cfg)
    assert "postgresql://app:<redacted>@db.internal/cl?sslmode=require" in shown
    assert "redis://:<redacted>@redis.internal:6379/0" in shown and "api_key=<set>" in shown


def test_other_config_values_show_no_secret() -> None:
    values = [StoreConfig(url="postgresql://app@db/cl?password=PGPASS1"),
              TargetSpec(model="openai/gpt-4o", base_url="https://u:PROXYPW4@proxy/v1"),
              parse_cache({"mode": "exact", "url": "redis://:REDISPW2@redis.internal/1"}),
              TelemetryConfig(endpoint="https://otel.internal/v1/traces?api_key=QKEY3"),
              ModelEntryRow(name="m", identifier="i", provider="bedrock", base_url="https://u:PROXYPW4@proxy/v1",
                            additional_config={"aws_secret_access_key": "AWSSECRET5", "aws_region_name": "eu-west-1"})]
    for value in values:
        assert _leaks(value) == [], repr(value)
    assert "redis.internal/1" in repr(values[2]) and "'aws_region_name': 'eu-west-1'" in repr(values[4])
