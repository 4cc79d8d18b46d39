"""A base_url with a query string (Azure-style ``?api-version=...``, a gateway's tenant
parameter): the operation's path goes before the query, which stays. It was appended to the
query: path ``/v1`` with query ``api-version=2024/chat/completions``."""

from __future__ import annotations

import json

import pytest

from cloverleaf import Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, EmbeddingRequest, Message
from cloverleaf.providers.base import base_url_join
from tests.providers._openai_replay import adapter, config
from tests.sdk.upstream import Reply, Upstream

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m1",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.mark.parametrize("base, path, url", [
    ("http://h/v1?api-version=2024", "/chat/completions", "http://h/v1/chat/completions?api-version=2024"),
    ("http://h/v1/?a=1&b=2", "embeddings", "http://h/v1/embeddings?a=1&b=2"),
    ("http://h/v1?tenant=7", "/x?alt=sse", "http://h/v1/x?alt=sse&tenant=7"),
    ("http://h/v1", "/chat/completions", "http://h/v1/chat/completions"),
])
def test_the_path_goes_before_the_base_urls_query(base, path, url):
    assert base_url_join(base, path) == url


def test_a_provider_whose_base_url_has_a_query_is_called_at_the_right_path(upstream):
    upstream.queue(Reply(body=json.dumps(ANSWER).encode()))
    lab = ProviderSettings("mylab", kind="openai", base_url=f"{upstream.url}/v1?api-version=2024")
    with Client(Settings.load(env={}, providers={"mylab": lab})) as client:
        assert client.chat("mylab/m1", "hi").content == "hi there"
    assert [seen.path for seen in upstream.seen] == ["/v1/chat/completions?api-version=2024"]


def test_a_full_endpoint_with_a_query_is_recognised_as_the_operation():
    chat = adapter("openai")
    assert chat.split_endpoint("http://h/v1/chat/completions?api-version=2024") == ("http://h/v1?api-version=2024",
                                                                                    "chat")


def test_azure_keeps_the_base_urls_api_version_and_adds_its_own_only_when_absent():
    req = ChatRequest("gpt-4o-mini", [Message.user("hi")])
    base = "https://r.openai.azure.com/openai/deployments/d"
    pinned = adapter("azure").build_chat(req, config("azure", base_url=f"{base}?api-version=2024-10-21"))
    assert pinned.url == f"{base}/chat/completions?api-version=2024-10-21"
    other = adapter("azure").build_embed(EmbeddingRequest("d", ["x"]), config("azure", base_url=f"{base}?tenant=a"))
    assert other.url == f"{base}/embeddings?tenant=a&api-version=2025-04-01-preview"


@pytest.mark.parametrize("row, base, stream, url", [
    ("anthropic", "http://h/v1?key=7", False, "http://h/v1/messages?key=7"),
    ("anthropic", "http://h?key=7", False, "http://h/v1/messages?key=7"),
    ("gemini", "http://h/v1beta?key=7", False, "http://h/v1beta/models/gemini-2.5-flash:generateContent?key=7"),
    ("gemini", "http://h?key=7", True, "http://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=7"),
    ("ollama", "http://h/v1?key=7", False, "http://h/api/chat?key=7"),
    ("ollama", "http://h?key=7", False, "http://h/api/chat?key=7"),
])
def test_the_adapters_that_build_their_own_paths_keep_the_query_last(row, base, stream, url):
    """Anthropic (its ``/v1`` check), Gemini (``models/{model}:{method}``) and Ollama (its root
    under an OpenAI-style ``/v1``) build their URLs themselves: a query went into the path."""
    model = "gemini-2.5-flash" if row == "gemini" else "m1"
    http = adapter(row).build_chat(ChatRequest(model, [Message.user("hi")], stream=stream), config(row, base_url=base))
    assert http.url == url


def test_ollama_through_its_openai_path_keeps_the_query_last():
    from cloverleaf.providers.ollama.adapter import openai_base

    assert openai_base("http://h/v1?key=7") == "http://h/v1?key=7"
    assert base_url_join(openai_base("http://h?key=7"), "/chat/completions") == "http://h/v1/chat/completions?key=7"
