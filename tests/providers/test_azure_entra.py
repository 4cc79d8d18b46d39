"""Azure OpenAI with a service principal: Entra ID tokens the gateway gets and refreshes itself.

A mock Entra ID token endpoint and a mock Azure OpenAI that answers only the tokens it issued,
both on loopback (``tests/providers/entra_mock.py``); ``AZURE_AUTHORITY_HOST`` points at the
mock, never at login.microsoftonline.com. The adapter's token clock is moved, never slept on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import AuthenticationError, ConfigError
from cloverleaf.providers.azure.adapter import AzureOpenAIAdapter
from cloverleaf.providers.azure.entra import authority_host
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bearer import BearerTokens
from cloverleaf.providers.registry import get_adapter, get_spec

from .entra_mock import CLIENT_ID, SCOPE, SECRET, TENANT, EntraMock

MODEL = "azure/gpt-4o-prod"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def entra() -> Iterator[EntraMock]:
    mock = EntraMock().start()
    yield mock
    mock.close()


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fresh token cache on the shared ``azure`` adapter, on a clock the test moves."""
    adapter = get_adapter(get_spec("azure"))
    assert isinstance(adapter, AzureOpenAIAdapter)
    clock = Clock()
    monkeypatch.setattr(adapter, "entra", BearerTokens(clock=clock), raising=False)
    return clock


def principal_env(entra: EntraMock, **more: str) -> dict[str, str]:
    return {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": SECRET,
            "AZURE_AUTHORITY_HOST": entra.url, **more}


def settings(entra: EntraMock, env: dict[str, str] | None = None, **extra: Any) -> Settings:
    return Settings(env=env if env is not None else principal_env(entra), max_retries=0,
                    providers={"azure": ProviderSettings("azure", base_url=entra.url, extra=extra)})


def _bearers(entra: EntraMock) -> list[str]:
    return [seen.headers.get("authorization", "") for seen in entra.azure_requests]


def test_the_environments_service_principal_gets_a_token_and_sends_it(entra: EntraMock, clock: Clock) -> None:
    with Client(settings(entra)) as client:
        resp = client.chat(MODEL, "hi")
        vectors = client.embed("azure/embed-small", ["hi"])
    assert resp.content == "Hello from Azure." and vectors.vectors == [[0.5, 0.25]]
    assert entra.token_requests == [{"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                     "client_secret": SECRET, "scope": SCOPE}]
    assert _bearers(entra) == ["Bearer entra-mock-1", "Bearer entra-mock-1"]
    assert all("api-key" not in seen.headers for seen in entra.azure_requests)


def test_the_token_is_reused_until_five_minutes_before_expiry_then_refreshed(entra: EntraMock,
                                                                            clock: Clock) -> None:
    with Client(settings(entra)) as client:
        client.chat(MODEL, "one")
        clock.now = T0 + 3599 - 301          # 5 minutes and a second left: still good
        client.chat(MODEL, "two")
        assert len(entra.token_requests) == 1
        clock.now = T0 + 3599 - 299          # inside the last 5 minutes: a new one
        client.chat(MODEL, "three")
    assert len(entra.token_requests) == 2
    assert _bearers(entra) == ["Bearer entra-mock-1", "Bearer entra-mock-1", "Bearer entra-mock-2"]


def test_concurrent_async_callers_and_threads_share_one_refresh(entra: EntraMock, clock: Clock) -> None:
    s = settings(entra)

    async def run() -> list[str]:
        async with AsyncClient(s) as client:
            answers = await asyncio.gather(*(client.chat(MODEL, f"q{i}") for i in range(8)))
            streamed = "".join([e.text or "" async for e in client.stream(MODEL, "s") if e.type == "text"])
        return [a.content for a in answers] + [streamed]

    assert asyncio.run(run()) == ["Hello from Azure."] * 9
    assert len(entra.token_requests) == 1
    clock.now = T0 + 3600   # expired: eight threads at once still make one exchange
    with Client(s) as client:
        threads = [threading.Thread(target=client.chat, args=(MODEL, "t")) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(entra.token_requests) == 2
    assert set(_bearers(entra)) == {"Bearer entra-mock-1", "Bearer entra-mock-2"}


def test_a_refused_exchange_is_an_authentication_error_with_entras_words_and_no_secret(
        entra: EntraMock, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    entra.token_failures.append((401, {"error": "invalid_client", "error_description":
                                       "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}))
    caplog.set_level(logging.DEBUG)
    with Client(settings(entra)) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.chat(MODEL, "hi")
        err = caught.value
        assert "invalid_client: AADSTS7000215: Invalid client secret provided." in str(err)
        assert CLIENT_ID in str(err) and TENANT in str(err) and err.provider == "azure" and err.status == 401
        assert not entra.azure_requests
        for shown in (str(err), repr(err), err.body or "", caplog.text):
            assert SECRET not in shown
        # not cached: the next call exchanges again, and works
        assert client.chat(MODEL, "hi").content == "Hello from Azure."
    assert len(entra.token_requests) == 2 and SECRET not in caplog.text


def test_the_secret_is_in_no_repr_of_the_resolved_config(entra: EntraMock) -> None:
    cfg = AzureOpenAIAdapter(get_spec("azure")).prepare_config(ProviderConfig("azure", "azure", entra.url),
                                                               principal_env(entra))
    assert cfg.extra["azure_client_secret"] == SECRET and SECRET not in repr(cfg)


# --------------------------------------------------------------------------- precedence


def _prepared(env: dict[str, str], api_key: str | None = None, api_key_env: str | None = None,
              **extra: Any) -> ProviderConfig:
    cfg = ProviderConfig("azure", "azure", "https://res.openai.azure.com", api_key=api_key, api_key_env=api_key_env,
                         extra=extra)
    return AzureOpenAIAdapter(get_spec("azure")).prepare_config(cfg, env)


def _credential(cfg: ProviderConfig) -> str:
    """What the adapter will send: a refreshed token, a static one, or a key."""
    adapter = AzureOpenAIAdapter(get_spec("azure"))
    if adapter.bearer_source(cfg) is not None:
        return "principal:" + cfg.extra["azure_client_id"]
    headers = adapter.auth_headers(cfg)
    if "Authorization" in headers:
        return "token:" + headers["Authorization"].removeprefix("Bearer ")
    return "key:" + headers.get("api-key", "")


SP_ENV = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "env-app", "AZURE_CLIENT_SECRET": "s"}
SP_CONFIG = {"azure_tenant_id": TENANT, "azure_client_id": "config-app", "azure_client_secret": "s"}


@pytest.mark.parametrize(("env", "key", "key_env", "extra", "expected"), [
    # 1. a token in additional_config beats everything
    ({**SP_ENV, "AZURE_OPENAI_AD_TOKEN": "env-tok"}, "k", None, {"azure_ad_token": "cfg-tok"}, "token:cfg-tok"),
    # 2. a service principal in additional_config beats a key given outright and the environment
    ({**SP_ENV, "AZURE_OPENAI_AD_TOKEN": "env-tok"}, "k", None, SP_CONFIG, "principal:config-app"),
    # 3. a key given outright beats the environment's token and service principal
    ({**SP_ENV, "AZURE_OPENAI_AD_TOKEN": "env-tok"}, "k", None, {}, "key:k"),
    # 4. the environment's static token beats its service principal and its key
    ({**SP_ENV, "AZURE_OPENAI_AD_TOKEN": "env-tok"}, "env-key", "AZURE_OPENAI_API_KEY", {}, "token:env-tok"),
    # 5. the environment's service principal beats AZURE_OPENAI_API_KEY
    (SP_ENV, "env-key", "AZURE_OPENAI_API_KEY", {}, "principal:env-app"),
    # 6. a partial service principal in the environment (workload identity) is not one
    ({"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "x"}, "env-key", "AZURE_OPENAI_API_KEY", {}, "key:env-key"),
])
def test_credential_precedence(env: dict[str, str], key: str | None, key_env: str | None, extra: dict[str, Any],
                               expected: str) -> None:
    assert _credential(_prepared(env, key, key_env, **extra)) == expected


def test_config_mistakes_are_config_errors_that_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match="azure_client_secret is missing"):
        _prepared({}, azure_tenant_id=TENANT, azure_client_id="app")
    with pytest.raises(ConfigError, match="keep one"):
        _prepared({}, azure_ad_token="t", **SP_CONFIG)
    with pytest.raises(ConfigError, match="not a tenant GUID"):
        _prepared({}, **{**SP_CONFIG, "azure_tenant_id": "a/b?c"})
    with pytest.raises(ConfigError, match="AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"):
        _prepared({})


def test_the_authority_host_is_https_unless_loopback() -> None:
    assert authority_host(None) == "https://login.microsoftonline.com"
    assert authority_host("login.microsoftonline.us") == "https://login.microsoftonline.us"
    assert authority_host("https://login.chinacloudapi.cn/") == "https://login.chinacloudapi.cn"
    assert authority_host("http://127.0.0.1:47600") == "http://127.0.0.1:47600"
    with pytest.raises(ConfigError, match="must use https"):
        authority_host("http://login.example.com")
    cfg = _prepared({**SP_ENV, "AZURE_AUTHORITY_HOST": "login.microsoftonline.us"})
    assert cfg.extra["azure_authority_host"] == "https://login.microsoftonline.us"
    cfg = _prepared({**SP_ENV, "AZURE_AUTHORITY_HOST": "login.microsoftonline.us"}, **SP_CONFIG,
                    azure_authority_host="login.chinacloudapi.cn")
    assert cfg.extra["azure_authority_host"] == "https://login.chinacloudapi.cn"   # the entry's wins


def test_an_entrys_service_principal_works_end_to_end(entra: EntraMock, clock: Clock) -> None:
    extra = {"azure_tenant_id": TENANT, "azure_client_id": CLIENT_ID, "azure_client_secret": SECRET,
             "azure_authority_host": entra.url}
    with Client(settings(entra, env={"AZURE_OPENAI_API_KEY": "ignored-key"}, **extra)) as client:
        assert client.chat(MODEL, "hi").content == "Hello from Azure."
    assert _bearers(entra) == ["Bearer entra-mock-1"]
