"""A model name a caller sends never steps out of its place in the provider's URL path.

Gemini (and Claude on Vertex AI) take the model in the request's path,
``.../models/{model}:generateContent``, not in its body. A key allowed ``gem/gemini-1.5-*``
asked for ``gem/gemini-1.5-flash/../gemini-2.5-pro``: the name matched the key's pattern, and
the path the gateway sent resolved (as servers resolve dot segments) to a model the key may not
use, priced as the allowed one; a ``?`` or ``#`` in the name rewrote the query or cut the method
off. A dot segment is now a 400 naming the model, and what a path gives a meaning to is encoded.
The upstream is a mock Gemini on 127.0.0.1; the client is the official OpenAI SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.gemini.vertex_claude import VertexClaudeAdapter

from ..sdk.upstream import Reply, Upstream
from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}
ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock")}
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, providers=providers))
    yield server
    stop_live(server)


def test_a_dot_segment_cannot_reach_a_model_the_key_does_not_allow(live: Live, upstream: Upstream) -> None:
    client = live.openai(create_key(live, allowed_models=["gem/gemini-1.5-*"])["key"])
    upstream.queue(Reply(body=json.dumps(ANSWER).encode()))
    assert client.chat.completions.create(model="gem/gemini-1.5-flash", messages=ASK).choices[0].message.content == "hi"
    assert upstream.seen[-1].path == "/v1beta/models/gemini-1.5-flash:generateContent"
    asked = len(upstream.seen)
    for name in ("gem/gemini-1.5-flash/../gemini-2.5-pro", "gem/gemini-1.5-x/../../../v1/models/gemini-2.5-pro",
                 "gem/gemini-1.5-flash/./x", "gem/gemini-1.5-flash//x"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=name, messages=ASK)
        assert "is not a model id" in str(refused.value), name
    assert len(upstream.seen) == asked   # nothing was sent


def test_what_a_path_gives_a_meaning_to_is_encoded_in_the_model_name(live: Live, upstream: Upstream) -> None:
    client = live.openai(create_key(live, allowed_models=["gem/gemini-1.5-*"])["key"])
    upstream.queue(Reply(body=json.dumps(ANSWER).encode()))
    client.chat.completions.create(model="gem/gemini-1.5-flash?key=x#", messages=ASK)
    assert upstream.seen[-1].path == "/v1beta/models/gemini-1.5-flash%3Fkey%3Dx%23:generateContent"


def test_claude_on_vertex_keeps_its_version_and_refuses_a_dot_segment() -> None:
    cfg = ProviderConfig(name="vertex", kind="gemini", base_url="https://h/v1/projects/p/locations/l/publishers/google")
    url = VertexClaudeAdapter._url(cfg, "claude-sonnet-4@20250514", "rawPredict")
    assert url == "https://h/v1/projects/p/locations/l/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    with pytest.raises(Exception, match="is not a model id"):
        VertexClaudeAdapter._url(cfg, "claude-sonnet-4/../claude-opus-4", "rawPredict")
