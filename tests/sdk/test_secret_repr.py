"""A printed, logged or traceback-captured configuration never shows a credential.

Secrets are planted where users put them (a proxy password and ``?api-key=`` in a base_url,
``additional_config``'s ``aws_secret_access_key`` and ``client_secret``, an ``Authorization``
header, store and Redis URLs with passwords) and every way a value becomes text is checked:
``repr``, ``str``, ``f"{x!r}"``, nesting (a Settings holding ModelEntries), and a traceback
rendered with its frames' locals, as rich, pytest and Sentry do."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf.providers.base import ProviderConfig

SECRETS = ("PROXYPW1", "QKEY2", "AWSSECRET3", "CLIENTSEC4", "HDRTOK5", "APIKEY6", "PGPASS7", "REDISPW8", "CACHEPW9",
           "ROUTEKEY10")


def _entry() -> ModelEntry:
    return ModelEntry(name="team-bedrock", identifier="anthropic.claude-3-haiku", provider="bedrock",
                      base_url="https://svc:PROXYPW1@proxy.internal/v1?api-key=QKEY2&region=eu", api_key="APIKEY6",
                      api_key_env="TEAM_KEY",
                      additional_config={"aws_secret_access_key": "AWSSECRET3", "client_secret": "CLIENTSEC4",
                                         "aws_region_name": "eu-west-1"})


def _provider() -> ProviderSettings:
    return ProviderSettings(name="corp", kind="openai", base_url="https://llm.corp/v1?key=QKEY2", api_key="APIKEY6",
                            headers={"Authorization": "Bearer HDRTOK5", "x-team": "blue"},
                            extra={"client_secret": "CLIENTSEC4"})


def _settings() -> Settings:
    return Settings(default_model="corp/gpt-4o", models=[_entry()], providers={"corp": _provider()},
                    store={"url": "postgresql://app:PGPASS7@db.internal:5432/cloverleaf"},
                    state={"url": "redis://:REDISPW8@redis.internal:6379/0"},
                    cache={"mode": "exact", "url": "redis://default:CACHEPW9@redis.internal/1"},
                    telemetry={"otlp_endpoint": "https://otel.internal", "headers": {"x-api-key": "HDRTOK5"}},
                    routes={"smart": {"targets": [{"model": "openai/gpt-4o", "api_key": "ROUTEKEY10"}]}},
                    env={"OPENAI_API_KEY": "APIKEY6"})


def _config() -> ProviderConfig:
    return ProviderConfig(name="corp", kind="openai", base_url="https://svc:PROXYPW1@llm.corp/v1", api_key="APIKEY6",
                          headers={"Authorization": "Bearer HDRTOK5"}, extra={"aws_secret_access_key": "AWSSECRET3"})


def _texts(value: Any) -> list[str]:
    return [repr(value), str(value), f"{value!r}", f"{value}", repr([value]), repr({"x": value})]


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize("make", [_entry, _provider, _settings, _config])
def test_no_repr_or_str_shows_a_planted_secret(make: Any) -> None:
    for text in _texts(make()):
        assert _leaks(text) == [], text


def test_a_resolved_target_shows_no_secret_of_its_provider_row() -> None:
    """A ``[providers.NAME]`` base_url becomes the resolved target's registry row (its spec)."""
    client = Client(Settings(providers={"corp": _provider()}, models=[_entry()]))
    for model in ("corp/gpt-4o", "team-bedrock"):
        target = client.engine.resolve(model)
        for text in _texts(target):
            assert _leaks(text) == [], text
    assert "https://llm.corp/v1?key=<redacted>" in repr(client.engine.resolve("corp/gpt-4o"))


def test_the_repr_stays_useful() -> None:
    """What a reader debugging a config looks for is still there: names, model, hosts, which
    key is set, the readable parts of additional_config."""
    entry, settings = repr(_entry()), repr(_settings())
    for shown in ("team-bedrock", "anthropic.claude-3-haiku", "bedrock", "https://svc:<redacted>@proxy.internal/v1",
                  "api-key=<redacted>&region=eu", "api_key=<set>", "TEAM_KEY", "'aws_region_name': 'eu-west-1'",
                  "'aws_secret_access_key': '<redacted>'"):
        assert shown in entry
    for shown in ("postgresql://app:<redacted>@db.internal:5432/cloverleaf", "redis://:<redacted>@redis.internal:6379/0",
                  "redis://default:<redacted>@redis.internal/1", "'x-team': 'blue'", "ModelEntry(name='team-bedrock'",
                  "ProviderSettings(name='corp'", "default_model='corp/gpt-4o'"):
        assert shown in settings
    assert ", env=" not in settings and "OPENAI_API_KEY" not in settings   # the whole environment stays out, as before
    assert "api_key=None" in repr(ModelEntry(name="m", identifier="i", provider="p"))
    config = repr(_config())
    assert "ProviderConfig(name='corp', kind='openai'" in config and "api_key=<set>" in config


def test_a_traceback_with_captured_locals_shows_no_secret() -> None:
    def failing(settings: Settings, entry: ModelEntry, config: ProviderConfig, client: Client,
                async_client: AsyncClient) -> None:
        raise RuntimeError("the call failed")

    settings = _settings()
    try:
        failing(settings, settings.models[0], _config(), Client(Settings(models=[_entry()])),
                AsyncClient(Settings(models=[_entry()])))
    except RuntimeError as exc:
        rendered = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert "ModelEntry(name='team-bedrock'" in rendered   # the locals were rendered
    assert _leaks(rendered) == []
