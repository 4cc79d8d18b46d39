"""Third-party clients as they are used by default (issue 12 item 9): the anthropic SDK's
``tool_runner`` (message threads), LangChain's ``OpenAIEmbeddings`` (token-id input), the
anthropic SDK's ``models.list()``; Anthropic's ``message_start`` usage; unknown top-level
fields refused unless documented as ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from cloverleaf._config import ModelEntry

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[Upstream]:
    upstream = Upstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def live(anthropic_upstream: Upstream) -> Iterator[Live]:
    claude = ModelEntry(name="claude-via-mock", identifier="claude-test", provider="anthropic",
                        base_url=anthropic_upstream.url, api_key="sk-ant-test")
    s = settings(models=[claude], image_model="fake/image")
    server = start_live(s)
    yield server
    stop_live(server)


# --------------------------------------------------------------------------- threads


def test_anthropic_tool_runner_gets_the_right_answer(live: Live) -> None:
    """The SDK's default runner starts a thread; the gateway refuses it the way the SDK
    understands, and the SDK carries on sending the whole conversation."""

    @anthropic.beta_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"12 degrees and rain in {city}"

    client = live.anthropic()
    before = live.fake.served
    runner = client.beta.messages.tool_runner(model="fake/chat", max_tokens=200, tools=[get_weather],
                                              messages=[{"role": "user", "content": "weather in Oslo?"}])
    final = runner.until_done()
    text = "".join(block.text for block in final.content if block.type == "text")
    assert text.startswith("The get_weather tool returned: 12 degrees and rain in ")
    last = list(live.fake.requests)[-1].json
    assert live.fake.served - before == 2  # a tool call, then the answer: no thread ever reached a provider
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "tool"]  # the whole history
    assert last["messages"][0]["content"] in ("weather in Oslo?", [{"type": "text", "text": "weather in Oslo?"}])


def test_thread_is_refused_with_the_code_the_sdk_reads(live: Live) -> None:
    with live.http() as http:
        r = http.post("/v1/messages", json={"model": "fake/echo", "max_tokens": 10, "messages": HELLO,
                                            "thread": {"type": "create"}})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["details"]["error_code"] == "thread_unsupported_request"


# --------------------------------------------------------------------------- embeddings


def _offline_tokenizer() -> None:
    """LangChain tokenises with tiktoken, whose vocabulary files are downloaded at first use
    (no network here): a byte-level stand-in under the same name. What is tested is the
    server's side — the token-id arrays LangChain sends by default."""
    import tiktoken
    import tiktoken.registry

    ranks = {bytes([i]): i for i in range(256)}
    tiktoken.registry.ENCODINGS.setdefault("cl100k_base", tiktoken.Encoding(
        name="cl100k_base", pat_str=r"""\S+|\s+""", mergeable_ranks=ranks, special_tokens={}))


def test_langchain_openai_embeddings_default(live: Live) -> None:
    from langchain_openai import OpenAIEmbeddings

    _offline_tokenizer()
    embeddings = OpenAIEmbeddings(model="fake/text-embedding-3-small", base_url=f"{live.url}/v1", api_key="unused",
                                  max_retries=0)
    vectors = embeddings.embed_documents(["hello world", "another text"])
    assert len(vectors) == 2 and all(len(v) > 0 for v in vectors) and vectors[0] != vectors[1]
    sent = list(live.fake.requests)[-1].json
    assert isinstance(sent["input"][0], list) and all(isinstance(t, int) for t in sent["input"][0])
    assert len(embeddings.embed_query("hello world")) == len(vectors[0])


def test_token_ids_for_a_provider_without_them_are_a_clear_400(live: Live) -> None:
    with live.http() as http:
        r = http.post("/v1/embeddings", json={"model": "simple/hash-embed", "input": [[1, 2, 3]]})
        ok = http.post("/v1/embeddings", json={"model": "fake/embed", "input": [5, 6, 7]})
    assert r.status_code == 400, r.text
    assert "token-id" in r.json()["error"]["message"] and "send the text" in r.json()["error"]["message"]
    assert ok.status_code == 200 and len(ok.json()["data"]) == 1


# --------------------------------------------------------------------------- message_start, models


def _sse(*events: dict) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def test_message_start_carries_the_input_tokens_known_up_front(live: Live, anthropic_upstream: Upstream) -> None:
    anthropic_upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=_sse(
        {"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant",
                                              "model": "claude-test", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 42, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi there"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"})))
    with live.anthropic().messages.stream(model="claude-via-mock", max_tokens=50, messages=HELLO) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = events[0]
    assert start.type == "message_start" and start.message.usage.input_tokens == 42
    assert final.usage.input_tokens == 42 and final.content[0].text == "hi there"


def test_anthropic_sdk_lists_models_in_its_shape(live: Live) -> None:
    client = live.anthropic()
    page = client.models.list()
    assert page.data and all(m.type == "model" and m.display_name and m.created_at is not None for m in page.data)
    ids = [m.id for m in page.data]
    assert "claude-via-mock" in ids
    one = client.models.retrieve("fake/echo")
    assert one.id == "fake/echo" and one.type == "model" and one.created_at is not None
    first = client.models.list(limit=1)
    assert len(first.data) == 1 and first.has_more == (len(ids) > 1)
    if len(ids) > 1:
        after = client.models.list(limit=1, after_id=first.data[0].id)
        assert after.data[0].id == ids[1]
    with pytest.raises(anthropic.NotFoundError) as err:
        client.models.retrieve("nope/unknown-provider-model")
    assert err.value.body["type"] == "error"  # Anthropic's error shape for an Anthropic client
    openai_shape = live.openai().models.list()
    assert all(m.object == "model" for m in openai_shape.data)


# --------------------------------------------------------------------------- top-level fields


@pytest.mark.parametrize("path, body, field, status", [
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "colour": "red"}, "colour", 400),
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "frequency_penalty": 0.5}, None, 200),
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "frequency_penalty": "lots"},
     "frequency_penalty", 400),
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "audio": {"voice": "x", "format": "mp3"}},
     "audio", 400),
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "modalities": ["text", "audio"]},
     "modalities", 400),  # an audio answer asked for without 'audio' (the voice defaults) is no text-only 200
    ("/v1/chat/completions", {"model": "fake/echo", "messages": HELLO, "modalities": ["text"]}, None, 200),
    ("/v1/messages", {"model": "fake/echo", "max_tokens": 5, "messages": HELLO, "colour": "red"}, "colour", 400),
    ("/v1/messages", {"model": "fake/echo", "max_tokens": 5, "messages": HELLO, "top_k": 5}, None, 200),
    ("/v1/messages", {"model": "fake/echo", "max_tokens": 5, "messages": HELLO, "mcp_servers": []},
     None, 200),  # no MCP servers asks for nothing the gateway lacks
    ("/v1/messages", {"model": "fake/echo", "max_tokens": 5, "messages": HELLO,
                      "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]},
     "mcp_servers", 400),
    ("/v1/embeddings", {"model": "fake/embed", "input": "x", "user": {}}, "user", 400),
    ("/v1/images/generations", {"model": "fake/image", "prompt": "a cat", "style": "vivid"}, None, 200),
    ("/v1/images/generations", {"model": "fake/image", "prompt": "a cat", "colour": "red"}, "colour", 400),
])
def test_top_level_fields(live: Live, path: str, body: dict, field: str | None, status: int) -> None:
    with live.http() as http:
        r = http.post(path, json=body)
    assert r.status_code == status, r.text
    if field is not None:
        assert field in r.json()["error"]["message"]


def test_openai_spec_shapes_are_served(live: Live) -> None:
    """What schemathesis sent from OpenAI's own spec: a legacy function message, an image
    request without a model (the server's image_model)."""
    with live.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo", "messages": [
            {"role": "user", "content": "what did it say?"},
            {"role": "function", "name": "lookup", "content": "forty-two"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "Result of function lookup: forty-two"
        image = http.post("/v1/images/generations", json={"prompt": "a cat", "model": None})
        assert image.status_code == 200, image.text
        assert image.json()["data"]


def test_no_default_image_model_is_a_400() -> None:
    server = start_live(settings())
    try:
        with httpx.Client(base_url=server.url) as http:
            r = http.post("/v1/images/generations", json={"prompt": "a cat"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    finally:
        stop_live(server)
