"""Claude Code's ``anthropic-beta`` through ``/v1/messages`` to Claude on Vertex AI.

Vertex AI takes the header, but refuses a call that names a beta it lacks, and Claude Code sends
several on every call. Driven by the official Anthropic SDK against the gateway, with the mock
Google (token endpoint and ``:rawPredict``) on loopback recording what reached it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials
from cloverleaf.providers.registry import get_adapter, get_spec

from ..providers.vertex_mock import GoogleMock, new_key, write_service_account
from .conftest import Live, settings, start_live, stop_live

CLAUDE = "vertex/claude-sonnet-4-5@20250929"
MESSAGE = {"id": "msg_vrtx_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
#: what Claude Code 2.x sends on a call with tool search on (Anthropic's API names)
CLAUDE_CODE_BETAS = ["claude-code-20250219", "interleaved-thinking-2025-05-14", "context-1m-2025-08-07",
                     "context-management-2025-06-27", "prompt-caching-scope-2026-01-05", "effort-2025-11-24",
                     "advanced-tool-use-2025-11-20"]


@pytest.fixture()
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleMock]:
    monkeypatch.setattr(get_adapter(get_spec("vertex")), "vertex", VertexCredentials("vertex"))
    key = new_key()
    mock = GoogleMock(accounts={"runner@proj-123.iam.gserviceaccount.com": key.public_key()}).start()
    mock.key = key  # type: ignore[attr-defined]
    yield mock
    mock.close()


@pytest.fixture()
def live(google: GoogleMock, tmp_path: Path) -> Iterator[Live]:
    account = write_service_account(tmp_path / "sa.json", google.key, google.token_uri)  # type: ignore[attr-defined]
    vertex = ProviderSettings("vertex", base_url=google.url,
                              extra={"location": "us-east5", "credentials_file": str(account)})
    server = start_live(settings(providers={"vertex": vertex}))
    yield server
    stop_live(server)


def test_claude_codes_betas_reach_vertex_as_vertex_takes_them(live: Live, google: GoogleMock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Those Vertex AI takes go on in ``anthropic-beta``, tool search under Vertex AI's name; the
    rest (which Vertex AI answers with a 400 for the whole call) are left out, said in the log."""
    google.replies.append((200, "application/json", json.dumps(MESSAGE).encode()))
    with caplog.at_level("DEBUG", logger="cloverleaf.providers"):
        message = live.anthropic().beta.messages.create(
            model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}], betas=CLAUDE_CODE_BETAS)
    assert message.content[0].text == "hi"   # type: ignore[union-attr]
    [seen] = google.vertex_requests
    assert seen.path.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")
    assert seen.headers["anthropic-beta"] == ("interleaved-thinking-2025-05-14,context-1m-2025-08-07,"
                                              "context-management-2025-06-27,tool-search-tool-2025-10-19")
    body: dict[str, Any] = json.loads(seen.body)
    assert body["anthropic_version"] == "vertex-2023-10-16" and "anthropic_beta" not in body
    said = [r.getMessage() for r in caplog.records if "left out for Claude on Vertex AI" in r.getMessage()]
    assert said and all(name in said[0] for name in ("claude-code-20250219", "prompt-caching-scope-2026-01-05",
                                                     "effort-2025-11-24"))


def test_a_call_whose_betas_vertex_takes_none_of_goes_without_the_header(live: Live, google: GoogleMock) -> None:
    google.replies.append((200, "application/json", json.dumps(MESSAGE).encode()))
    live.anthropic().beta.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}],
                                          betas=["claude-code-20250219", "structured-outputs-2025-11-13"])
    [seen] = google.vertex_requests
    assert "anthropic-beta" not in seen.headers
