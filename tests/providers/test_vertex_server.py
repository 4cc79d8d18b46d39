"""A ``vertex/`` model through ``cloverleaf serve``: the official OpenAI SDK asks the server's
/v1/chat/completions, the gateway gets a Google access token with a service account key and
calls Vertex AI with it (both mocked on loopback, ``vertex_mock``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials
from cloverleaf.providers.registry import get_adapter, get_spec
from tests.server.conftest import settings, start_live, stop_live

from .vertex_mock import GoogleMock, new_key, write_service_account


@pytest.fixture()
def key() -> Any:
    return new_key()


@pytest.fixture()
def google(key: Any) -> Iterator[GoogleMock]:
    mock = GoogleMock(accounts={"runner@proj-123.iam.gserviceaccount.com": key.public_key()}).start()
    yield mock
    mock.close()


def test_chat_completions_with_a_vertex_model(google: GoogleMock, key: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_adapter(get_spec("vertex")), "vertex", VertexCredentials("vertex"))  # no cached token
    sa = write_service_account(tmp_path / "sa.json", key, google.token_uri)
    vertex = ProviderSettings("vertex", base_url=google.url, extra={"credentials_file": str(sa),
                                                                    "location": "us-central1"})
    live = start_live(settings(providers={"vertex": vertex}))
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
