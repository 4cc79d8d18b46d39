"""``/v1/embeddings`` to an Ollama model with a text longer than its context: the official OpenAI
SDK gets the 400 ``context_length_exceeded`` OpenAI gives, not a vector of the text's first part
(see tests/providers/test_ollama_embed_truncation.py for the SDK side)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from cloverleaf._config import ProviderSettings
from tests.loopback import LoopbackServer
from tests.providers.test_ollama_embed_truncation import LONG, REFUSAL, ollama_embed

from .conftest import Live, settings, start_live, stop_live


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Live, LoopbackServer]]:
    with LoopbackServer(ollama_embed()) as ollama:
        server = start_live(settings(providers={
            "ollama": ProviderSettings("ollama", kind="ollama", base_url=ollama.url)}))
        yield server, ollama
        stop_live(server)


def test_an_over_long_input_is_a_400_context_length_exceeded(live: tuple[Live, LoopbackServer]) -> None:
    server, _ = live
    with pytest.raises(openai.BadRequestError) as caught:
        server.openai().embeddings.create(model="ollama/nomic-embed-text", input=["fits", LONG])
    assert caught.value.status_code == 400 and caught.value.code == "context_length_exceeded"
    assert REFUSAL in caught.value.message


def test_inputs_that_fit_are_embedded(live: tuple[Live, LoopbackServer]) -> None:
    server, ollama = live
    reply = server.openai().embeddings.create(model="ollama/nomic-embed-text", input=["two words"])
    assert reply.data[0].embedding == [2.0] and ollama.requests[-1].json()["truncate"] is False
