"""The fake provider end to end: the real OpenAI adapter against the in-process upstream.

Requests go adapter -> httpx (with FakeUpstream as its transport) -> adapter, sync and
async, so these tests exercise the same bytes the engine and the server will see.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import httpx
import jsonschema
import pytest

from cloverleaf._capabilities import Capability
from cloverleaf._errors import (
    AuthenticationError,
    MalformedResponseError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from cloverleaf._http import HttpRequest, HttpResponse
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    EmbeddingRequest,
    ImageRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.fake.adapter import BASE_URL, FakeAdapter, FakeUpstream
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator

CFG = ProviderConfig("fake", "fake", BASE_URL)
WEATHER = Tool("get_weather", "Weather for a city", {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 2},
                   "unit": {"type": "string", "enum": ["c", "f"]},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "unit"],
})
PERSON = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "emails": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1}},
    "required": ["name", "age", "emails"], "additionalProperties": False}


@pytest.fixture
def adapter() -> FakeAdapter:
    a = get_adapter(get_spec("fake"))
    assert isinstance(a, FakeAdapter)
    return a


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


def send(upstream: FakeUpstream, http: HttpRequest, timeout: float | None = 5.0) -> HttpResponse:
    with httpx.Client(transport=upstream, timeout=timeout) as client:
        r = client.request(http.method, http.url, headers=http.headers, content=http.body)
        return HttpResponse(r.status_code, dict(r.headers), r.content, str(r.url))


async def asend(upstream: FakeUpstream, http: HttpRequest, timeout: float | None = 5.0) -> HttpResponse:
    async with httpx.AsyncClient(transport=upstream, timeout=timeout) as client:
        r = await client.request(http.method, http.url, headers=http.headers, content=http.body)
        return HttpResponse(r.status_code, dict(r.headers), r.content, str(r.url))


def chat(adapter, upstream, req: ChatRequest):
    resp = send(upstream, adapter.build_chat(req, CFG))
    if resp.status >= 400:
        raise adapter.parse_error(resp, req.model)
    return adapter.parse_chat(resp, req)


def stream(adapter, upstream, req: ChatRequest, timeout: float | None = 5.0):
    """Stream through httpx chunk by chunk, returning (events, assembled response)."""
    req.stream = True
    http = adapter.build_chat(req, CFG)
    dec, events = adapter.stream_decoder(req), []
    with httpx.Client(transport=upstream, timeout=timeout) as client:
        with client.stream(http.method, http.url, headers=http.headers, content=http.body) as r:
            if r.status_code >= 400:
                r.read()
                raise adapter.parse_error(HttpResponse(r.status_code, dict(r.headers), r.content), req.model)
            for piece in r.iter_raw():
                events += dec.feed(piece)
    events += dec.close()
    acc = StreamAccumulator(req.model, adapter.name)
    for ev in events:
        acc.add(ev)
    return events, acc.response()


# --------------------------------------------------------------------------- behaviour


def test_capabilities_are_all_true(adapter):
    assert all(adapter.capabilities.supports(cap) for cap in Capability)


def test_echo_repeats_the_last_user_message(adapter, upstream):
    req = ChatRequest("echo", [Message.system("sys"), Message.user("first"), Message.assistant("ok"),
                               Message.user("say this back")])
    resp = chat(adapter, upstream, req)
    assert resp.text == "say this back" and resp.finish_reason == "stop" and resp.model == "echo"
    assert resp.usage.output_tokens == 4  # 13 characters, one token per four
    assert resp.usage.input_tokens == 6  # "sys" + "first" + "ok" + "say this back": 23 characters
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert upstream.requests[0].json["messages"][-1] == {"role": "user", "content": "say this back"}


def test_other_models_answer_deterministically_from_the_input(adapter, upstream):
    a = chat(adapter, upstream, ChatRequest("gpt-4o-mini", [Message.user("hello")]))
    b = chat(adapter, upstream, ChatRequest("gpt-4o-mini", [Message.user("hello")]))
    c = chat(adapter, upstream, ChatRequest("gpt-4o-mini", [Message.user("goodbye")]))
    assert a.text == b.text != c.text and a.text.endswith(").")
    assert a.metadata.response_id == b.metadata.response_id


def test_tool_call_then_answer_with_the_result(adapter, upstream):
    req = ChatRequest("chat", [Message.user("weather in Oslo?")], tools=[Tool("noop"), WEATHER],
                      tool_choice=ToolChoice("tool", "get_weather"))
    first = chat(adapter, upstream, req)
    (call,) = first.tool_calls
    assert call.name == "get_weather" and first.finish_reason == "tool_calls"
    jsonschema.validate(call.arguments, WEATHER.parameters)
    req.messages += [first.to_message(), Message.tool(call.id, "12 degrees and rain")]
    second = chat(adapter, upstream, req)
    assert second.text == "The get_weather tool returned: 12 degrees and rain"
    assert second.finish_reason == "stop" and not second.tool_calls


def test_tool_choice_auto_calls_the_first_tool_and_none_calls_nothing(adapter, upstream):
    req = ChatRequest("chat", [Message.user("hi")], tools=[WEATHER, Tool("other")])
    assert chat(adapter, upstream, req).tool_calls[0].name == "get_weather"
    req.tool_choice = ToolChoice("none")
    assert chat(adapter, upstream, req).tool_calls == []


def test_structured_output_validates(adapter, upstream):
    req = ChatRequest("chat", [Message.user("a person")], response_format=ResponseFormat(schema=PERSON))
    resp = chat(adapter, upstream, req)
    jsonschema.validate(json.loads(resp.text), PERSON)
    req.response_format = ResponseFormat("json_object")
    assert isinstance(json.loads(chat(adapter, upstream, req).text), dict)


def test_reasoning(adapter, upstream):
    req = ChatRequest("chat", [Message.user("think about 2+2")], reasoning=ReasoningConfig(effort="low"))
    resp = chat(adapter, upstream, req)
    assert resp.reasoning == "Thinking about: think about 2+2"
    assert resp.usage.reasoning_tokens == 8 and resp.usage.output_tokens > 8
    assert type(resp.parts[0]).__name__ == "Reasoning"


def test_max_tokens_cuts_with_length(adapter, upstream):
    resp = chat(adapter, upstream, ChatRequest("echo", [Message.user("x" * 100)], max_tokens=5))
    assert resp.text == "x" * 20 and resp.finish_reason == "length"


def test_every_attachment_kind_is_accepted(adapter, upstream):
    parts = [Text("describe"), Attachment(type="image", media_type="image/png", data=b"\x89PNG"),
             Attachment(type="pdf", media_type="application/pdf", data=b"%PDF-1.4"),
             Attachment(type="audio", media_type="audio/wav", data=b"RIFF"),
             Attachment(type="image", url="https://example.com/cat.png", fetch="provider"),
             Attachment(type="pdf", url="https://example.com/doc.pdf", fetch="provider")]
    resp = chat(adapter, upstream, ChatRequest("echo", [Message.user(parts)]))
    assert resp.text == "describe"
    kinds = [p["type"] for p in upstream.requests[0].json["messages"][0]["content"]]
    assert kinds == ["text", "image_url", "file", "input_audio", "image_url", "file"]


@pytest.mark.parametrize("req", [
    ChatRequest("echo", [Message.user("stream me please, word by word")]),
    ChatRequest("chat", [Message.user("weather?")], tools=[WEATHER]),
    ChatRequest("chat", [Message.user("person")], response_format=ResponseFormat(schema=PERSON)),
    ChatRequest("chat", [Message.user("hmm")], reasoning=ReasoningConfig(effort="high")),
], ids=["text", "tools", "structured", "reasoning"])
def test_stream_assembles_to_the_non_stream_answer(adapter, upstream, req):
    whole = chat(adapter, upstream, req)
    events, streamed = stream(adapter, upstream, req)
    assert [e.type for e in events].count("done") == 1
    assert streamed.parts == whole.parts
    assert streamed.usage == whole.usage and streamed.finish_reason == whole.finish_reason
    assert sum(e.type == "text" for e in events) >= (2 if whole.text and " " in whole.text else 0)
    body = upstream.requests[-1].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_embeddings(adapter, upstream):
    req = EmbeddingRequest("embed", ["alpha", "beta", "alpha"])
    resp = adapter.parse_embed(send(upstream, adapter.build_embed(req, CFG)), req)
    a, b, a2 = resp.vectors
    assert len(a) == 256 and a == a2 != b
    assert sum(x * x for x in a) == pytest.approx(1.0)
    assert resp.usage.input_tokens == 2 + 1 + 2
    small = EmbeddingRequest("embed", ["alpha"], dimensions=32)
    (v,) = adapter.parse_embed(send(upstream, adapter.build_embed(small, CFG)), small).vectors
    assert len(v) == 32


def test_embeddings_base64_encoding(upstream):
    http = HttpRequest("POST", BASE_URL + "/embeddings", {"content-type": "application/json"},
                       json.dumps({"model": "e", "input": "alpha", "encoding_format": "base64",
                                   "dimensions": 8}).encode())
    item = send(upstream, http).json()["data"][0]
    raw = base64.b64decode(item["embedding"])
    assert len(raw) == 8 * 4


@pytest.mark.parametrize("fmt", ["b64_json", "url"])
def test_images(adapter, upstream, fmt):
    req = ImageRequest("image", "a lighthouse at dusk", n=2, size="1024x1024", response_format=fmt)
    resp = adapter.parse_image(send(upstream, adapter.build_image(req, CFG)), req)
    assert len(resp.images) == 2
    first = resp.images[0]
    data = first.data if fmt == "b64_json" else base64.b64decode(first.url.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and first.revised_prompt == "a lighthouse at dusk"
    assert resp.images[0] != resp.images[1]


def test_models_and_unknown_paths(upstream):
    models = send(upstream, HttpRequest("GET", BASE_URL + "/models")).json()
    assert "echo" in [m["id"] for m in models["data"]]
    missing = send(upstream, HttpRequest("POST", BASE_URL + "/completions", body=b"{}"))
    assert missing.status == 404 and "no such endpoint" in missing.json()["error"]["message"]
    bad = send(upstream, HttpRequest("POST", BASE_URL + "/chat/completions", body=b"{nope"))
    assert bad.status == 400


# --------------------------------------------------------------------------- scripting


def test_script_is_consumed_in_order_then_deterministic(adapter, upstream):
    upstream.script.reply("first scripted").reply(
        tool_calls=[ToolCall("call_x", "get_weather", {"city": "Rome", "unit": "c"})],
        usage=Usage(input_tokens=100, output_tokens=7, cached_tokens=40))
    req = ChatRequest("echo", [Message.user("ignored")], tools=[WEATHER])
    assert chat(adapter, upstream, req).text == "first scripted"
    second = chat(adapter, upstream, req)
    assert second.tool_calls[0].arguments == {"city": "Rome", "unit": "c"} and second.tool_calls[0].id == "call_x"
    assert (second.usage.input_tokens, second.usage.output_tokens, second.usage.cached_tokens) == (100, 7, 40)
    assert upstream.script.pending == 0
    req.tools = None
    assert chat(adapter, upstream, req).text == "ignored"


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitError), (500, ServerError), (529, OverloadedError),
                                                (401, AuthenticationError)])
def test_scripted_failures_map_to_errors(adapter, upstream, status, error):
    upstream.script.fail(status, times=2)
    req = ChatRequest("echo", [Message.user("hi")])
    for _ in range(2):
        with pytest.raises(error) as info:
            chat(adapter, upstream, req)
        assert info.value.status == status
    assert chat(adapter, upstream, req).text == "hi"


def test_fail_with_custom_body_and_retry_after(adapter, upstream):
    upstream.script.fail(429, body={"error": {"message": "slow down", "type": "requests",
                                              "code": "rate_limit_exceeded"}}, headers={"Retry-After": "7"})
    resp = send(upstream, adapter.build_chat(ChatRequest("echo", [Message.user("hi")]), CFG))
    err = adapter.parse_error(resp, "echo")
    assert isinstance(err, RateLimitError) and "slow down" in str(err)
    assert resp.headers["retry-after"] == "7"


def test_model_name_directives(adapter, upstream):
    with pytest.raises(ServerError):
        chat(adapter, upstream, ChatRequest("fail-500", [Message.user("hi")]))
    req = ChatRequest("echo+fail-429x2", [Message.user("third time lucky")])
    for _ in range(2):
        with pytest.raises(RateLimitError) as info:
            chat(adapter, upstream, req)
        assert info.value.retry_after == pytest.approx(0.01)
    assert chat(adapter, upstream, req).text == "third time lucky"


def test_hang_raises_read_timeout(adapter, upstream):
    upstream.script.hang()
    with pytest.raises(httpx.ReadTimeout):
        send(upstream, adapter.build_chat(ChatRequest("echo", [Message.user("hi")]), CFG), timeout=0.05)
    with pytest.raises(httpx.ReadTimeout):
        send(upstream, adapter.build_chat(ChatRequest("hang", [Message.user("hi")]), CFG), timeout=0.05)


async def test_hang_raises_read_timeout_async(adapter, upstream):
    upstream.script.hang()
    with pytest.raises(httpx.ReadTimeout):
        await asend(upstream, adapter.build_chat(ChatRequest("echo", [Message.user("hi")]), CFG), timeout=0.05)


def test_latency_longer_than_the_timeout_times_out(adapter, upstream):
    upstream.script.latency(0.02)
    assert send(upstream, adapter.build_chat(ChatRequest("echo", [Message.user("hi")]), CFG)).status == 200
    with pytest.raises(httpx.ReadTimeout):
        send(upstream, adapter.build_chat(ChatRequest("echo+slow-5s", [Message.user("hi")]), CFG), timeout=0.05)


def test_chunk_delay_still_streams_everything(adapter, upstream):
    upstream.script.chunk_delay(0.001)
    _, resp = stream(adapter, upstream, ChatRequest("echo", [Message.user("one two three")]))
    assert resp.text == "one two three"
    with pytest.raises(httpx.ReadTimeout):
        stream(adapter, upstream, ChatRequest("echo+drip-5s", [Message.user("one two three")]), timeout=0.05)


def test_reset_mid_stream_after_output(adapter, upstream):
    upstream.script.reset_after(3)
    req = ChatRequest("echo", [Message.user("a b c d e f")], stream=True)
    http = adapter.build_chat(req, CFG)
    dec, events = adapter.stream_decoder(req), []
    with httpx.Client(transport=upstream) as client, pytest.raises(httpx.RemoteProtocolError):
        with client.stream(http.method, http.url, headers=http.headers, content=http.body) as r:
            for piece in r.iter_raw():
                events += dec.feed(piece)
    assert [e.text for e in events if e.type == "text"] == ["a", " b"]  # role chunk + 2 words, then reset
    with pytest.raises(MalformedResponseError):
        dec.close()


def test_reset_directive_on_a_plain_body(adapter, upstream):
    with pytest.raises(httpx.RemoteProtocolError):
        send(upstream, adapter.build_chat(ChatRequest("reset-after-1", [Message.user("x" * 300)]), CFG))


def test_garbage_and_truncate_are_malformed(adapter, upstream):
    upstream.script.garbage().garbage().truncate().truncate()
    req = ChatRequest("echo", [Message.user("hi there")])
    with pytest.raises(MalformedResponseError):
        chat(adapter, upstream, req)
    with pytest.raises(MalformedResponseError):
        stream(adapter, upstream, req)
    with pytest.raises(MalformedResponseError):
        chat(adapter, upstream, ChatRequest("echo", [Message.user("hi there")]))
    with pytest.raises(MalformedResponseError, match="finish"):
        stream(adapter, upstream, ChatRequest("echo", [Message.user("hi there")]))


def test_requests_are_recorded_with_headers(adapter, upstream):
    cfg = ProviderConfig("fake", "fake", BASE_URL, api_key="sk-test-secret")
    send(upstream, adapter.build_chat(ChatRequest("echo", [Message.user("hi")]), cfg))
    (recorded,) = upstream.requests
    assert recorded.method == "POST" and recorded.headers["authorization"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in repr(recorded)


# --------------------------------------------------------------------------- concurrency


def test_thread_safe_under_concurrent_sync_clients(adapter, upstream):
    upstream.script.fail(500, times=5)
    results: list[object] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        req = ChatRequest("echo", [Message.user(f"message {i}")])
        try:
            out: object = chat(adapter, upstream, req).text
        except ServerError as exc:
            out = exc
        with lock:
            results.append((i, out))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(upstream.requests) == 40
    assert sum(isinstance(out, ServerError) for _, out in results) == 5
    assert all(out == f"message {i}" for i, out in results if not isinstance(out, ServerError))


async def test_async_concurrency(adapter, upstream):
    async def one(i: int) -> str:
        req = ChatRequest("echo", [Message.user(f"async {i}")])
        return adapter.parse_chat(await asend(upstream, adapter.build_chat(req, CFG)), req).text

    texts = await asyncio.gather(*(one(i) for i in range(25)))
    assert texts == [f"async {i}" for i in range(25)]


def test_an_invalid_schema_is_a_400_not_a_crash():
    from cloverleaf import Client, InvalidRequestError

    with Client(env={}, max_retries=0) as c:
        bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "weird"}}}
        with pytest.raises(InvalidRequestError) as err:
            c.chat("fake/x", "call it", tools=[bad], tool_choice="f")
        assert err.value.status == 400 and "weird" in str(err.value)
