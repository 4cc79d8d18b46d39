"""The server says what a provider cannot do (422) before what configuration it lacks (404)."""

from __future__ import annotations

from .conftest import Live


def test_embeddings_from_a_provider_that_cannot_embed_is_422_even_without_its_key(open_server: Live) -> None:
    with open_server.http() as http:
        r = http.post("/v1/embeddings", json={"model": "anthropic/claude-haiku-4-5", "input": "x"})
        assert r.status_code == 422, r.text
        assert "does not support embeddings" in r.json()["error"]["message"]
        r = http.post("/v1/chat/completions", json={"model": "anthropic/claude-haiku-4-5",
                                                     "messages": [{"role": "user", "content": "hi"}]})
        # capable: then the configuration (this gateway is not set up for anthropic: 404, naming the key)
        assert r.status_code == 404 and "ANTHROPIC_API_KEY" in r.json()["error"]["message"]
