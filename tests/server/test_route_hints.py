"""A client set up for LiteLLM's proxy (the OpenAI SDK at the server's root, its health probes)
gets a 404 that names the path serving it here, read through the SDK as users see it."""

from __future__ import annotations

import openai
import pytest

from .conftest import Live


def test_the_openai_sdk_at_the_root_is_told_to_add_v1(open_server: Live) -> None:
    root = openai.OpenAI(base_url=open_server.url, api_key="unused", max_retries=0)   # LiteLLM's docs' base_url
    with pytest.raises(openai.NotFoundError) as err:
        root.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "hi"}])
    message = err.value.response.json()["error"]["message"]
    assert "POST /v1/chat/completions" in message and 'base_url="http://HOST:PORT/v1"' in message
    with pytest.raises(openai.NotFoundError) as err:
        root.models.list()
    assert "GET /v1/models" in err.value.response.json()["error"]["message"]
    fixed = openai.OpenAI(base_url=f"{open_server.url}/v1", api_key="unused", max_retries=0)
    assert fixed.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "hi"}]).choices


@pytest.mark.parametrize("path, says", [("/health/liveliness", "GET /health"), ("/health/readiness", "GET /ready"),
                                        ("/v1/completions", "POST /v1/chat/completions")])
def test_litellm_s_probes_and_legacy_completions_name_the_path_here(open_server: Live, path: str, says: str) -> None:
    with open_server.http() as http:
        method = "POST" if "completions" in path else "GET"
        answer = http.request(method, path, json={"model": "fake/echo", "prompt": "hi"} if method == "POST" else None)
    assert answer.status_code == 404 and says in answer.json()["error"]["message"]


def test_an_unknown_path_still_says_only_that(open_server: Live) -> None:
    with open_server.http() as http:
        assert http.get("/v1/nothing").json()["error"]["message"] == "no route for /v1/nothing"
        assert http.get("/nothing").json()["error"]["message"] == "no route for /nothing"
        # /v1/models serves GET only: a POST is not pointed at a path that would answer 405
        assert http.post("/models", json={}).json()["error"]["message"] == "no route for /models"
