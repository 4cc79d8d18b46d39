"""An Ollama embedding of a text longer than the model's context is refused, not silently cut.

Ollama's ``/api/embed`` takes ``truncate`` (default true: "truncates the end of each input to fit
within context length. Returns error if false and context length is exceeded", docs.ollama.com/api/embed).
cloverleaf sent no ``truncate``, so a long document came back as the vector of its first part with
no error, where OpenAI (and Vertex AI here, ``autoTruncate: false``) answer a 400. It now sends
``truncate: false``; Ollama's refusal is a ``ContextWindowExceededError`` whether Ollama says it with a
400 (current versions) or a 500 (some older ones), and ``truncate = true`` in the provider's ``extra``
still asks for the cut. The stand-in below behaves as those docs say, with a context of ``CONTEXT`` words.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import cloverleaf
from cloverleaf import ContextWindowExceededError
from cloverleaf._config import ProviderSettings, Settings
from tests.loopback import Answer, LoopbackServer, Request

CONTEXT = 8
LONG = "word " * 50
REFUSAL = "the input length exceeds the context length"


def ollama_embed(refusal_status: int = 400):
    """``/api/embed`` as Ollama documents it: each input cut to the context unless ``truncate`` is
    false, which refuses an over-long input instead. A vector's one number is how many words it saw."""
    def handle(request: Request) -> Answer:
        body = request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        too_long = any(len(text.split()) > CONTEXT for text in inputs)
        if too_long and body.get("truncate", True) is False:
            return Answer(refusal_status, json.dumps({"error": REFUSAL}).encode(), {"content-type": "application/json"})
        vectors = [[float(min(len(text.split()), CONTEXT))] for text in inputs]
        reply = {"model": body["model"], "embeddings": vectors, "prompt_eval_count": 3}
        return Answer(200, json.dumps(reply).encode(), {"content-type": "application/json"})
    return handle


@pytest.fixture
def ollama() -> Iterator[LoopbackServer]:
    with LoopbackServer(ollama_embed()) as server:
        yield server


def test_an_over_long_text_is_refused_not_cut(ollama: LoopbackServer) -> None:
    with cloverleaf.Client() as client, pytest.raises(ContextWindowExceededError) as caught:
        client.embed("ollama/nomic-embed-text", ["short text", LONG], base_url=ollama.url)
    assert REFUSAL in str(caught.value) and "shorten the input or split it" in str(caught.value)
    assert caught.value.status == 400 and len(ollama.requests) == 1   # not retried
    assert ollama.requests[0].json()["truncate"] is False


def test_texts_that_fit_are_embedded_as_before(ollama: LoopbackServer) -> None:
    with cloverleaf.Client() as client:
        reply = client.embed("ollama/nomic-embed-text", ["short text", "three short words"], base_url=ollama.url)
    assert reply.vectors == [[2.0], [3.0]]


def test_the_cut_is_still_there_for_who_asks_for_it(ollama: LoopbackServer) -> None:
    settings = Settings(providers={"ollama": ProviderSettings("ollama", kind="ollama", base_url=ollama.url,
                                                              extra={"truncate": True})})
    with cloverleaf.Client(settings) as client:
        reply = client.embed("ollama/nomic-embed-text", [LONG])
    assert reply.vectors == [[float(CONTEXT)]] and ollama.requests[0].json()["truncate"] is True


def test_a_500_that_says_the_input_is_too_long_is_the_input_s_fault() -> None:
    """Some Ollama versions answer the same refusal with a 500: as a ServerError it reached a
    server's client as a 502 and moved a gateway to its fallback as if the server were down."""
    with LoopbackServer(ollama_embed(refusal_status=500)) as server, cloverleaf.Client() as client:
        with pytest.raises(ContextWindowExceededError):
            client.embed("ollama/nomic-embed-text", [LONG], base_url=server.url, max_retries=0)


def test_a_500_that_says_the_input_is_too_long_is_sent_once() -> None:
    """The transport retried Ollama's 500 refusal by its status (twice, with backoff) before the
    adapter saw it was the input's fault: three embeddings of a text that cannot fit, and the
    waits between them. The transport reads the 500's words as the adapter does now: one request,
    on the sync and the async path, with the default retries; any other 500 is still retried."""
    with LoopbackServer(ollama_embed(refusal_status=500)) as server:
        with cloverleaf.Client() as client, pytest.raises(ContextWindowExceededError):
            client.embed("ollama/nomic-embed-text", [LONG], base_url=server.url)
        assert len(server.requests) == 1

        async def embed_async() -> None:
            async with cloverleaf.AsyncClient() as client:
                await client.embed("ollama/nomic-embed-text", [LONG], base_url=server.url)

        with pytest.raises(ContextWindowExceededError):
            asyncio.run(embed_async())
        assert len(server.requests) == 2
    failing = [Answer(500, json.dumps({"error": "llama runner process has terminated"}).encode()),
               Answer(200, json.dumps({"model": "nomic-embed-text", "embeddings": [[1.0]]}).encode())]
    with LoopbackServer(lambda request: failing.pop(0)) as server, cloverleaf.Client() as client:
        assert client.embed("ollama/nomic-embed-text", ["hi"], base_url=server.url).vectors == [[1.0]]
        assert len(server.requests) == 2
