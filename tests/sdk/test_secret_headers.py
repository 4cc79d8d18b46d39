"""A provider's configured ``headers`` that carry a credential (a gateway's key: Portkey's
``x-portkey-api-key``) are scrubbed from error text like its ``api_key``, in a direct call's
exception and in what the gateway records; settings such as ``application/json`` are not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloverleaf import Client, InvalidRequestError
from cloverleaf._config import ProviderSettings
from cloverleaf._engine import Engine
from cloverleaf._secret_headers import header_secrets
from cloverleaf.gateway.config import make_route
from cloverleaf.gateway.router import Router
from cloverleaf.gateway.state.memory import MemoryState

from ..loopback import Answer, Handle, LoopbackServer, Request, json_answer

PORTKEY = "pk-live-9f8e7d6c5b4a3210zz"
HELICONE = "sk-helicone-0a1b2c3d4e5f"
UNNAMED = "Zq81xYv04LmNa7Kc"   # a secret under a header whose name does not say so


def test_which_header_values_are_secrets() -> None:
    found = header_secrets({
        "x-portkey-api-key": PORTKEY, "Helicone-Auth": f"Bearer {HELICONE}", "x-tenant": UNNAMED,
        "x-proxy-token": "s3cR", "x-proxy-password": "plain words", "Content-Type": "application/json",
        "anthropic-beta": "context-1m-2025-08-07",
        "HTTP-Referer": "https://myapp.example.com", "X-Title": "My Cloverleaf App", "x-portkey-provider": "openai",
        "x-format": "application/json", "x-callback": "https://hooks.example.com/done"})
    assert PORTKEY in found and f"Bearer {HELICONE}" in found and HELICONE in found and UNNAMED in found
    assert "s3cR" in found   # named like a credential: counted from 4 characters
    assert "plain words" in found   # under a credential's header, whatever it looks like
    # "x-portkey-provider" holds "key" in its name, but "openai" is a setting's plain word
    for plain in ("application/json", "context-1m-2025-08-07", "https://myapp.example.com", "My Cloverleaf App",
                  "openai", "https://hooks.example.com/done"):
        assert not any(plain in secret for secret in found), plain
    assert header_secrets(None) == () and header_secrets({}) == ()


def _echo(request: Request) -> Answer:
    """A proxy that quotes every request header in its 400 (some do, to help debugging)."""
    quoted = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    return json_answer({"error": {"message": f"invalid request; headers: {quoted}",
                                  "type": "invalid_request_error", "code": None}}, 400)


@pytest.fixture
def echo_url(loopback: Callable[[Handle], LoopbackServer]) -> str:
    return f"{loopback(_echo).url}/v1"


def _provider(url: str) -> ProviderSettings:
    return ProviderSettings(name="viaportkey", kind="openai", base_url=url,
                            headers={"x-portkey-api-key": PORTKEY, "x-tenant": UNNAMED,
                                     "x-format": "application/json"})


def test_a_configured_header_secret_an_upstream_echoes_never_reaches_the_exception(echo_url: str) -> None:
    with Client(env={}, providers={"viaportkey": _provider(echo_url)}, max_retries=0) as client:
        with pytest.raises(InvalidRequestError) as raised:
            client.chat("viaportkey/gpt-4o", "hi")
    err = raised.value
    text = f"{err} {err.body} {err.to_dict()}"
    assert "x-portkey-api-key" in text.lower()   # the echo came back...
    assert PORTKEY not in text and UNNAMED not in text   # ...with its secrets masked
    assert "application/json" in text   # and a plain setting left readable


def test_the_gateway_scrubs_header_secrets_from_its_records() -> None:
    """The secrets the gateway scrubs from call records, traces and spans: each target's key,
    its base URL's credentials and now its configured headers' secrets."""
    with Client(env={}, providers={"viaportkey": _provider("https://user:url-pass-123@proxy.example.com/v1")}) as c:
        engine = Engine(c.settings)
    router = Router(engine, {}, MemoryState())
    secrets = router.secrets(router.targets(make_route("viaportkey/gpt-4o", ["viaportkey/gpt-4o"])))
    assert PORTKEY in secrets and UNNAMED in secrets and "url-pass-123" in secrets
    assert "application/json" not in secrets
