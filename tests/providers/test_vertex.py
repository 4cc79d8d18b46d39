"""Gemini on Vertex AI with Google credentials, end to end on loopback.

A service account key made in the test (a fresh RSA key), a mock Google token endpoint that
verifies the signed JWT with the public key, and a mock Vertex AI that answers only the bearer
tokens it issued (``tests/providers/vertex_mock.py``). The adapter's token clock is moved by the
tests, never slept on.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import AuthenticationError, ConfigError
from cloverleaf.providers.gemini.adapter import GeminiAdapter
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials
from cloverleaf.providers.registry import get_adapter, get_spec
from tests.server.conftest import settings as server_settings
from tests.server.conftest import start_live, stop_live

from .vertex_mock import GoogleMock, new_key, pem, write_authorized_user, write_service_account

MODEL = "vertex/gemini-2.5-flash"
PATH = "/v1/projects/proj-123/locations/us-central1/publishers/google/models/gemini-2.5-flash"
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def key() -> Any:
    return new_key()


@pytest.fixture()
def google(key: Any) -> Iterator[GoogleMock]:
    mock = GoogleMock(accounts={"runner@proj-123.iam.gserviceaccount.com": key.public_key()}).start()
    yield mock
    mock.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fresh token cache on the shared ``vertex`` adapter, on a clock the test moves."""
    adapter = get_adapter(get_spec("vertex"))
    assert isinstance(adapter, GeminiAdapter)
    fresh = VertexCredentials("vertex")
    monkeypatch.setattr(adapter, "vertex", fresh)
    clock = Clock()
    fresh.tokens.clock = clock
    return clock


@pytest.fixture()
def sa_file(tmp_path: Path, key: Any, google: GoogleMock) -> Path:
    return write_service_account(tmp_path / "sa.json", key, google.token_uri)


def settings(google: GoogleMock, env: dict[str, str] | None = None, **extra: Any) -> Settings:
    extra = {"location": "us-central1", **extra}
    return Settings(env=env or {}, max_retries=0,
                    providers={"vertex": ProviderSettings("vertex", base_url=google.url, extra=extra)})


def _bearers(google: GoogleMock) -> list[str]:
    return [seen.headers["authorization"] for seen in google.vertex_requests]


# --------------------------------------------------------------------------- calls


def test_a_service_account_call_signs_a_jwt_and_sends_its_token(google: GoogleMock, sa_file: Path,
                                                                clock: Clock) -> None:
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        resp = client.chat(MODEL, "hi")
    assert resp.content == "Hello from Vertex." and resp.provider == "vertex"
    [claims] = google.claims   # the mock verified the RS256 signature with the account's public key
    assert claims == {"iss": "runner@proj-123.iam.gserviceaccount.com", "scope":
                      "https://www.googleapis.com/auth/cloud-platform", "aud": google.token_uri,
                      "iat": int(T0), "exp": int(T0) + 3600}
    [seen] = google.vertex_requests
    assert seen.path == PATH + ":generateContent"        # the project from the key file's project_id
    assert seen.headers["authorization"] == "Bearer ya29.mock-1" and "x-goog-api-key" not in seen.headers
    assert json.loads(seen.body)["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert resp.cost is not None and resp.cost > 0      # priced as gemini/gemini-2.5-flash


def test_async_and_streaming_calls_share_the_token(google: GoogleMock, sa_file: Path, clock: Clock) -> None:
    s = settings(google, credentials_file=str(sa_file))
    with Client(s) as client:
        text = "".join(e.text or "" for e in client.stream(MODEL, "hi") if e.type == "text")
    assert text == "Hello from Vertex."

    async def run() -> tuple[str, str]:
        async with AsyncClient(s) as client:
            whole = await client.chat(MODEL, "hi")
            streamed = "".join([e.text or "" async for e in client.stream(MODEL, "hi") if e.type == "text"])
        return whole.content, streamed

    assert asyncio.run(run()) == ("Hello from Vertex.", "Hello from Vertex.")
    assert [s.path for s in google.vertex_requests] == [PATH + ":streamGenerateContent?alt=sse",
                                                        PATH + ":generateContent",
                                                        PATH + ":streamGenerateContent?alt=sse"]
    assert len(google.token_requests) == 1 and set(_bearers(google)) == {"Bearer ya29.mock-1"}


def test_the_token_is_reused_until_five_minutes_before_expiry_then_refreshed(
        google: GoogleMock, sa_file: Path, clock: Clock) -> None:
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        client.chat(MODEL, "one")
        clock.now = T0 + 3600 - 301          # 5 minutes and a second left: still good
        client.chat(MODEL, "two")
        assert len(google.token_requests) == 1
        clock.now = T0 + 3600 - 299          # inside the last 5 minutes: a new one
        client.chat(MODEL, "three")
    assert len(google.token_requests) == 2
    assert _bearers(google) == ["Bearer ya29.mock-1", "Bearer ya29.mock-1", "Bearer ya29.mock-2"]
    assert google.claims[1]["iat"] == int(T0 + 3600 - 299)


def test_concurrent_async_callers_share_one_refresh(google: GoogleMock, sa_file: Path, clock: Clock) -> None:
    google.hold = threading.Event()     # the token answer waits until every caller is in flight

    async def run() -> list[str]:
        async with AsyncClient(settings(google, credentials_file=str(sa_file))) as client:
            calls = [asyncio.ensure_future(client.chat(MODEL, f"q{i}")) for i in range(8)]
            while not google.token_arrived.is_set():
                await asyncio.sleep(0.01)
            for _ in range(5):
                await asyncio.sleep(0)
            assert google.hold is not None
            google.hold.set()
            return [r.content for r in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == ["Hello from Vertex."] * 8
    assert len(google.token_requests) == 1
    assert _bearers(google) == ["Bearer ya29.mock-1"] * 8


def test_sync_threads_share_one_refresh(google: GoogleMock, sa_file: Path, clock: Clock) -> None:
    google.hold = threading.Event()
    answers: list[str] = []
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        threads = [threading.Thread(target=lambda: answers.append(client.chat(MODEL, "q").content)) for _ in range(6)]
        for t in threads:
            t.start()
        assert google.token_arrived.wait(10)
        google.hold.set()
        for t in threads:
            t.join(20)
    assert answers == ["Hello from Vertex."] * 6
    assert len(google.token_requests) == 1


def test_an_authorized_user_login_is_refreshed_with_its_refresh_token(tmp_path: Path, google: GoogleMock,
                                                                      clock: Clock) -> None:
    login = write_authorized_user(tmp_path / "adc.json", google.token_uri)
    env = {"GOOGLE_CLOUD_PROJECT": "proj-123", "GOOGLE_APPLICATION_CREDENTIALS": str(login)}
    with Client(settings(google, env)) as client:
        assert client.chat(MODEL, "hi").content == "Hello from Vertex."
    [form] = google.token_requests
    assert form == {"grant_type": "refresh_token", "client_id": "cid.apps.googleusercontent.com",
                    "client_secret": "d-FL95Q19q7MQmFp", "refresh_token": "1//0refresh-secret"}
    assert _bearers(google) == ["Bearer ya29.mock-1"]
    assert google.vertex_requests[0].path == PATH + ":generateContent"


# --------------------------------------------------------------------------- errors


def test_a_refused_exchange_is_an_authentication_error_with_googles_words_and_no_secret(
        google: GoogleMock, sa_file: Path, key: Any, clock: Clock) -> None:
    google.token_failures.append((400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.chat(MODEL, "hi")
        err = caught.value
        assert "invalid_grant: Invalid JWT Signature." in str(err) and err.provider == "vertex"
        assert err.status == 400 and not google.vertex_requests
        assertion = google.token_requests[0]["assertion"]
        private = pem(key).splitlines()[5]
        for shown in (str(err), repr(err), err.body or ""):
            assert assertion not in shown and private not in shown
        # not cached: the next call exchanges again, and works
        assert client.chat(MODEL, "hi").content == "Hello from Vertex."
    assert len(google.token_requests) == 2


def test_a_refused_exchange_reaches_every_concurrent_waiter(google: GoogleMock, sa_file: Path, clock: Clock) -> None:
    google.hold = threading.Event()
    google.token_failures.append((400, {"error": "invalid_grant", "error_description": "account disabled"}))

    async def run() -> list[Any]:
        async with AsyncClient(settings(google, credentials_file=str(sa_file))) as client:
            calls = [asyncio.ensure_future(client.chat(MODEL, "q")) for _ in range(4)]
            while not google.token_arrived.is_set():
                await asyncio.sleep(0.01)
            assert google.hold is not None
            google.hold.set()
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, AuthenticationError) and "account disabled" in str(r) for r in results)
    assert len(google.token_requests) == 1


@pytest.mark.parametrize("content, says", [
    ("{not json", "not a JSON credentials file"),
    (json.dumps({"type": "service_account", "client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA"
                 "\n-----END PRIVATE KEY-----\n", "project_id": "proj-123"}), "private_key is not"),
    (json.dumps({"type": "service_account", "project_id": "proj-123"}), "needs client_email and private_key"),
    (json.dumps({"type": "external_account"}), "type 'external_account' is not supported"),
])
def test_a_bad_key_file_is_a_config_error_naming_the_file(tmp_path: Path, google: GoogleMock, clock: Clock,
                                                          content: str, says: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with Client(settings(google, credentials_file=str(bad))) as client:
        with pytest.raises(ConfigError) as caught:
            client.chat(MODEL, "hi")
    assert says in str(caught.value) and str(bad) in str(caught.value)
    assert "AAAA" not in str(caught.value)
    assert not google.token_requests and not google.vertex_requests


def test_vertex_refusing_the_token_names_the_credentials_not_an_api_key(google: GoogleMock, sa_file: Path,
                                                                        clock: Clock) -> None:
    with Client(settings(google, credentials_file=str(sa_file))) as client:
        client.chat(MODEL, "hi")
        google.issued.clear()     # Vertex no longer accepts the cached token
        with pytest.raises(AuthenticationError) as caught:
            client.chat(MODEL, "hi")
    assert "Google credentials" in str(caught.value) and "GEMINI_API_KEY" not in str(caught.value)
    assert "ya29" not in str(caught.value)


# -- through the server: the official OpenAI SDK asks /v1/chat/completions of a vertex/ model ----
def test_chat_completions_with_a_vertex_model(google: GoogleMock, key: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_adapter(get_spec("vertex")), "vertex", VertexCredentials("vertex"))  # no cached token
    sa = write_service_account(tmp_path / "sa.json", key, google.token_uri)
    vertex = ProviderSettings("vertex", base_url=google.url, extra={"credentials_file": str(sa),
                                                                    "location": "us-central1"})
    live = start_live(server_settings(providers={"vertex": vertex}))
    try:
        client = live.openai()
        answer = client.chat.completions.create(model="vertex/gemini-2.5-flash",
                                                messages=[{"role": "user", "content": "hi"}])
        streamed = client.chat.completions.create(model="vertex/gemini-2.5-flash", stream=True,
                                                  messages=[{"role": "user", "content": "hi"}])
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    finally:
        stop_live(live)
    assert answer.choices[0].message.content == "Hello from Vertex." and text == "Hello from Vertex."
    assert answer.usage is not None and answer.usage.prompt_tokens == 1000
    assert len(google.token_requests) == 1 and len(google.claims) == 1
    assert [s.headers["authorization"] for s in google.vertex_requests] == ["Bearer ya29.mock-1"] * 2
    assert google.vertex_requests[0].path == \
        "/v1/projects/proj-123/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
