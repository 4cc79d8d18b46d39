"""Ollama native API: requests built, recorded replies parsed, NDJSON streams decoded.

Chat, streaming and embeddings replay openllmetry's recordings of a real Ollama. Tool calls,
thinking, structured output, images, /api/embed and error lines have no recording: those
fixtures under tests/fixtures/synthetic/ollama/ were built from the published API format
(shared/specs/ollama/openapi.yaml) and are marked SYNTHETIC in their header.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import MalformedResponseError, NotFoundError, ServerError, UnsupportedCapability
from cloverleaf._http import HttpResponse
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    EmbeddingRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
)
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.ollama.adapter import DEFAULT_EMBEDDING_MODEL, OllamaAdapter
from cloverleaf.providers.ollama.parse import tool_call_id
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.wire import cassette

REC = "openllmetry/packages/opentelemetry-instrumentation-ollama/tests/cassettes/"
SYN = "../synthetic/ollama/"
JOKE = [Message.user("Tell me a joke about OpenTelemetry")]
WEATHER = Tool("get_current_weather", "Get the current weather for a location", {
    "type": "object",
    "properties": {"location": {"type": "string"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["location", "format"],
})
SCHEMA = {"type": "object", "properties": {"countries": {"type": "array", "items": {"type": "object", "properties": {
    "country": {"type": "string"}, "population": {"type": "integer"}}, "required": ["country", "population"]}}},
    "required": ["countries"]}


@pytest.fixture(scope="module")
def adapter() -> OllamaAdapter:
    return OllamaAdapter(get_spec("ollama"))


def cfg(**extra) -> ProviderConfig:
    return ProviderConfig("ollama", "ollama", "http://127.0.0.1:11434", extra=extra)


def decode(adapter, req, body: bytes, pieces: list[bytes] | None = None):
    dec = adapter.stream_decoder(req)
    events = []
    for piece in pieces if pieces is not None else [body]:
        events += dec.feed(piece)
    events += dec.close()
    acc = StreamAccumulator(req.model, adapter.name)
    for ev in events:
        acc.add(ev)
    return events, acc.response()


def ndjson_lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


# --------------------------------------------------------------------------- request


def test_build_chat_matches_the_recorded_request(adapter):
    inter = cassette(REC + "test_chat/test_ollama_chat_legacy.yaml")[0]
    http = adapter.build_chat(ChatRequest("llama3", JOKE), cfg())
    sent, recorded = http.json(), inter.request_json
    assert http.method == "POST" and http.url == inter.uri
    assert sent["model"] == recorded["model"] and sent["messages"] == recorded["messages"]
    assert sent["stream"] is False and http.stream is False


def test_tool_history_is_sent_like_the_recording_with_tool_name(adapter):
    inter = cassette(REC + "test_chat/test_ollama_chat_tool_calls_legacy.yaml")[0]
    call = ToolCall("call_1", "get_current_weather", {"location": "San Francisco"})
    req = ChatRequest("llama3.1", [
        Message.assistant([call]),
        Message.tool("call_1", "The weather in San Francisco is 70 degrees and sunny."),
    ])
    sent = adapter.build_chat(req, cfg()).json()["messages"]
    recorded = inter.request_json["messages"]
    assert sent[0] == recorded[0]
    # Ollama matches results by function name; the recording predates `tool_name`.
    assert sent[1] == {**recorded[1], "tool_name": "get_current_weather"}


def test_options_format_think_tools_and_images(adapter):
    png = Attachment(type="image", media_type="image/png", data=b"\x89PNG fake")
    req = ChatRequest(
        "qwen3", [Message.system("Be brief."), Message.user([Text("What is this?"), png])],
        tools=[WEATHER], response_format=ResponseFormat(schema=SCHEMA), max_tokens=50, temperature=0.2,
        top_p=0.9, stop=["\n\n"], seed=7, reasoning=ReasoningConfig(effort="high"), stream=True,
        extra_body={"options": {"top_k": 20}, "keep_alive": "5m"},
    )
    http = adapter.build_chat(req, cfg(num_ctx=8192, options={"repeat_penalty": 1.1}))
    body = http.json()
    assert http.stream is True and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1] == {"role": "user", "content": "What is this?", "images": [png.base64()]}
    assert body["format"] == SCHEMA
    assert body["options"] == {"num_ctx": 8192, "repeat_penalty": 1.1, "num_predict": 50, "temperature": 0.2,
                               "top_p": 0.9, "stop": ["\n\n"], "seed": 7, "top_k": 20}
    assert body["think"] is True  # qwen3 takes a boolean; only gpt-oss takes levels
    assert body["keep_alive"] == "5m"
    assert body["tools"][0]["function"]["name"] == "get_current_weather"
    assert body["tools"][0]["function"]["parameters"] == WEATHER.parameters


def test_json_object_and_tool_choice(adapter):
    other = Tool("other", None)
    base = ChatRequest("llama3", JOKE, tools=[WEATHER, other])
    body = adapter.build_chat(base, cfg()).json()
    assert [t["function"]["name"] for t in body["tools"]] == ["get_current_weather", "other"]
    base.tool_choice = ToolChoice("none")
    assert "tools" not in adapter.build_chat(base, cfg()).json()
    base.tool_choice = ToolChoice("tool", "other")
    assert [t["function"]["name"] for t in adapter.build_chat(base, cfg()).json()["tools"]] == ["other"]
    base.tool_choice, base.response_format = None, ResponseFormat("json_object")
    assert adapter.build_chat(base, cfg()).json()["format"] == "json"


def test_base_url_with_v1_is_accepted_for_the_native_api(adapter):
    conf = ProviderConfig("ollama", "ollama", "http://127.0.0.1:11434/v1/")
    assert adapter.build_chat(ChatRequest("llama3", JOKE), conf).url == "http://127.0.0.1:11434/api/chat"


@pytest.mark.parametrize("kind", ["pdf", "audio"])
def test_pdf_and_audio_are_unsupported(adapter, kind):
    att = Attachment(type=kind, media_type="application/pdf", data=b"%PDF-1.4")
    with pytest.raises(UnsupportedCapability, match=f"{kind} input"):
        adapter.build_chat(ChatRequest("llama3", [Message.user([Text("read this"), att])]), cfg())


def test_api_choice(adapter):
    assert adapter.api_for("llama3.1", cfg()) == "native"
    assert adapter.api_for("gpt-oss:20b", cfg()) == "openai_chat"
    assert adapter.api_for("gpt-oss:20b", cfg(ollama_api="native")) == "native"
    assert adapter.api_for("llama3", cfg(ollama_api="openai_chat")) == "openai_chat"


# --------------------------------------------------------------------------- replies


def test_parse_recorded_chat(adapter):
    inter = cassette(REC + "test_chat/test_ollama_chat_legacy.yaml")[0]
    resp = adapter.parse_chat(inter.response, ChatRequest("llama3", JOKE))
    data = inter.response.json()
    assert resp.text == data["message"]["content"]
    assert resp.text.startswith("A joke about OpenTelemetry!")
    assert resp.finish_reason == "stop" and resp.metadata.raw_finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (17, 66)
    assert resp.model == "llama3" and resp.provider == "ollama"


def test_parse_reply_without_prompt_eval_count(adapter):
    # Ollama omits prompt_eval_count when the prompt was cached from the previous call.
    inter = cassette(REC + "test_chat/test_ollama_async_chat_legacy.yaml")[0]
    resp = adapter.parse_chat(inter.response, ChatRequest("llama3", JOKE))
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (0, 79)
    assert "instrument its issues" in resp.text


def test_parse_synthetic_tool_call(adapter):
    inter = cassette(SYN + "chat_tools.yaml")[0]
    resp = adapter.parse_chat(inter.response, ChatRequest("qwen3", [Message.user("weather?")], tools=[WEATHER]))
    (call,) = resp.tool_calls
    assert call.name == "get_current_weather"
    assert call.arguments == {"location": "Paris, France", "format": "celsius"}
    created = json.loads(inter.response.body)["created_at"]
    assert call.id == tool_call_id(created, 0, call.name, call.arguments) and call.id.startswith("call_")
    assert resp.finish_reason == "tool_calls" and resp.metadata.raw_finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (213, 28)



def test_tool_call_arguments_sent_as_a_json_string_read_a_lone_surrogate_as_u_fffd(adapter):
    """Arguments a model template sends as a JSON string holding a lone surrogate escape: read as every
    upstream decode reads one (U+FFFD). A plain ``json.loads`` kept the lone surrogate, which no UTF-8
    text carries, so the answer could not be written out (a relayed stream, a stored Response)."""
    arguments = json.dumps({"location": "Par\ud800is"})   # the escape as the model wrote it
    body = {"model": "qwen3", "created_at": "2025-01-01T00:00:00Z", "done": True, "done_reason": "stop",
            "message": {"role": "assistant", "content": "",
                        "tool_calls": [{"function": {"name": "get_current_weather", "arguments": arguments}}]}}
    resp = adapter.parse_chat(HttpResponse(200, {}, json.dumps(body).encode()),
                              ChatRequest("qwen3", [Message.user("weather?")], tools=[WEATHER]))
    (call,) = resp.tool_calls
    assert call.arguments == {"location": "Par\ufffdis"}
    json.dumps(call.arguments, ensure_ascii=False).encode()   # UTF-8 text again

def test_parse_synthetic_thinking(adapter):
    inter = cassette(SYN + "chat_thinking.yaml")[0]
    resp = adapter.parse_chat(inter.response, ChatRequest("qwen3", [Message.user("What is 1+1?")]))
    assert resp.reasoning == "The user asks 1+1. That is 2."
    assert resp.text == "1 + 1 = 2."
    assert type(resp.parts[0]).__name__ == "Reasoning"


def test_parse_synthetic_structured(adapter):
    inter = cassette(SYN + "chat_structured.yaml")[0]
    req = ChatRequest("gemma3", [Message.user("populations?")], response_format=ResponseFormat(schema=SCHEMA))
    resp = adapter.parse_chat(inter.response, req)
    assert json.loads(resp.text)["countries"][1] == {"country": "Canada", "population": 38000000}


def test_history_with_reasoning_sends_thinking_back(adapter):
    inter = cassette(SYN + "chat_thinking.yaml")[0]
    first = adapter.parse_chat(inter.response, ChatRequest("qwen3", [Message.user("What is 1+1?")]))
    req = ChatRequest("qwen3", [Message.user("What is 1+1?"), first.to_message(), Message.user("And 2+2?")])
    sent = adapter.build_chat(req, cfg()).json()["messages"][1]
    assert sent == {"role": "assistant", "content": "1 + 1 = 2.", "thinking": "The user asks 1+1. That is 2."}


# --------------------------------------------------------------------------- streams

STREAMS = [
    REC + "test_chat/test_ollama_streaming_chat_legacy.yaml",
    REC + "test_chat/test_ollama_async_streaming_chat_legacy.yaml",
    SYN + "chat_tools_stream.yaml",
    SYN + "chat_thinking_stream.yaml",
    SYN + "chat_structured_stream.yaml",
]


@pytest.mark.parametrize("path", STREAMS)
def test_stream_decodes_to_the_lines_content(adapter, path):
    inter = cassette(path)[0]
    lines = ndjson_lines(inter.response.body)
    events, resp = decode(adapter, ChatRequest("m", JOKE, stream=True), inter.response.body)
    assert [e.type for e in events].count("done") == 1 and events[-1].type == "done"
    assert resp.text == "".join(line["message"].get("content", "") for line in lines)
    assert (resp.reasoning or "") == "".join(line["message"].get("thinking", "") for line in lines)
    last = lines[-1]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (last.get("prompt_eval_count", 0), last["eval_count"])
    assert resp.model == last["model"]


def test_recorded_stream_text(adapter):
    inter = cassette(REC + "test_chat/test_ollama_streaming_chat_legacy.yaml")[0]
    _, resp = decode(adapter, ChatRequest("llama3", JOKE, stream=True), inter.response.body)
    assert resp.text.startswith("Why did the OpenTelemetry agent go to therapy?")
    assert resp.finish_reason == "stop"


def test_streamed_and_whole_tool_calls_agree(adapter):
    req = ChatRequest("qwen3", [Message.user("weather?")], tools=[WEATHER], stream=True)
    _, streamed = decode(adapter, req, cassette(SYN + "chat_tools_stream.yaml")[0].response.body)
    whole = adapter.parse_chat(cassette(SYN + "chat_tools.yaml")[0].response, req)
    assert streamed.tool_calls == [
        ToolCall(c.id, c.name, c.arguments, raw_arguments=c.raw_arguments) for c in whole.tool_calls
    ]
    assert streamed.finish_reason == whole.finish_reason == "tool_calls"


def _reply(body: dict) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())


def test_the_same_call_in_two_turns_gets_two_ids(adapter):
    """Ollama sends calls without ids: a model that makes the same call (name and arguments) in two
    turns of a conversation, or twice in one answer, must not get one id twice — Anthropic refuses a
    history with a repeated tool_use id (on a fallback) and clients pair results with calls by id."""
    req = ChatRequest("qwen3", [Message.user("weather?")], tools=[WEATHER])
    body = json.loads(cassette(SYN + "chat_tools.yaml")[0].response.body)
    later = {**body, "created_at": "2025-10-17T23:15:02.120044Z"}   # the next turn's reply
    first, second = adapter.parse_chat(_reply(body), req), adapter.parse_chat(_reply(later), req)
    assert first.tool_calls[0].id != second.tool_calls[0].id
    twice = {**body, "message": {**body["message"], "tool_calls": body["message"]["tool_calls"] * 2}}
    assert len({c.id for c in adapter.parse_chat(_reply(twice), req).tool_calls}) == 2
    # an Ollama-compatible server that sends no created_at: still one id per call
    bare = {k: v for k, v in body.items() if k != "created_at"}
    assert adapter.parse_chat(_reply(bare), req).tool_calls[0].id != adapter.parse_chat(_reply(bare), req).tool_calls[0].id
    stream = b"\n".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "created_at"}).encode()
                         for line in cassette(SYN + "chat_tools_stream.yaml")[0].response.body.splitlines() if line)
    sreq = ChatRequest("qwen3", [Message.user("weather?")], tools=[WEATHER], stream=True)
    ids = [decode(adapter, sreq, stream)[1].tool_calls[0].id for _ in range(2)]
    assert ids[0] != ids[1]


def merged(events):
    out = []
    for ev in events:
        if out and ev.type in ("text", "reasoning") and out[-1][0] == ev.type:
            out[-1] = (ev.type, out[-1][1] + ev.text)
        else:
            out.append((ev.type, ev.text, ev.id, ev.name, ev.arguments, ev.finish_reason, ev.usage))
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_gives_the_same_events(adapter, data):
    path = data.draw(st.sampled_from(STREAMS))
    body = cassette(path)[0].response.body
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    req = ChatRequest("m", JOKE, stream=True)
    whole_events, whole = decode(adapter, req, body)
    split_events, split = decode(adapter, req, body, pieces)
    assert merged(split_events) == merged(whole_events)
    assert split.parts == whole.parts and split.usage == whole.usage


def test_a_byte_order_mark_before_the_stream_neither_hides_nor_misroutes_it(adapter):
    """A proxy's UTF-8 BOM before the first byte: the native NDJSON stream is still read as
    NDJSON (it was taken for SSE: nothing decoded), and the OpenAI path's SSE keeps its first event."""
    bom = b"\xef\xbb\xbf"
    body = cassette(REC + "test_chat/test_ollama_streaming_chat_legacy.yaml")[0].response.body
    req = ChatRequest("llama3", JOKE, stream=True)
    whole = decode(adapter, req, body)[1].text
    assert decode(adapter, req, bom + body, [bom[:1], bom[1:] + body[:5], body[5:]])[1].text == whole
    sse = (b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Why "}}]}\n\n'
           b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"not"},"finish_reason":"stop"}]}\n\n'
           b"data: [DONE]\n\n")
    assert decode(adapter, req, bom + sse)[1].text == "Why not"


def test_stream_cut_off_before_done_is_malformed(adapter):
    body = cassette(REC + "test_chat/test_ollama_streaming_chat_legacy.yaml")[0].response.body
    cut = body[: body.rindex(b'{"model"')]
    dec = adapter.stream_decoder(ChatRequest("llama3", JOKE, stream=True))
    assert [e.type for e in dec.feed(cut)][:1] == ["text"]
    with pytest.raises(MalformedResponseError, match="done"):
        dec.close()


def test_stream_error_line_raises(adapter):
    body = cassette(SYN + "stream_error.yaml")[0].response.body
    dec = adapter.stream_decoder(ChatRequest("qwen3", JOKE, stream=True))
    with pytest.raises(ServerError, match="unexpected EOF") as info:
        dec.feed(body)
    assert info.value.provider == "ollama"


def test_invalid_json_line_is_malformed(adapter):
    dec = adapter.stream_decoder(ChatRequest("qwen3", JOKE, stream=True))
    with pytest.raises(MalformedResponseError):
        dec.feed(b'{"model":"qwen3","message":{"content":"hi"},"done":false}\n{"model": nope}\n')


def test_empty_stream_is_malformed(adapter):
    dec = adapter.stream_decoder(ChatRequest("qwen3", JOKE, stream=True))
    assert dec.feed(b"\n") == []
    with pytest.raises(MalformedResponseError):
        dec.close()


# --------------------------------------------------------------------------- embeddings


def test_build_embed_uses_api_embed_and_the_default_model(adapter):
    http = adapter.build_embed(EmbeddingRequest("", ["a", "b"], dimensions=128), cfg())
    assert http.url == "http://127.0.0.1:11434/api/embed"
    assert http.json() == {"model": DEFAULT_EMBEDDING_MODEL, "input": ["a", "b"], "truncate": False,
                           "dimensions": 128}
    assert DEFAULT_EMBEDDING_MODEL == "nomic-embed-text"


def test_keep_alive_reaches_the_embedding_model_too(adapter):
    """``keep_alive`` (how long Ollama keeps the model loaded) was sent with chat calls only: an
    embedding model configured to stay loaded was unloaded after Ollama's default five minutes,
    and the next embed call (a RAG query) waited for it to load again."""
    http = adapter.build_embed(EmbeddingRequest("nomic-embed-text", ["a"]), cfg(keep_alive="1h", num_ctx=2048))
    assert http.json() == {"model": "nomic-embed-text", "input": ["a"], "truncate": False,
                           "options": {"num_ctx": 2048}, "keep_alive": "1h"}
    assert "keep_alive" not in adapter.build_embed(EmbeddingRequest("nomic-embed-text", ["a"]), cfg()).json()


def test_parse_recorded_legacy_embedding(adapter):
    inter = cassette(REC + "test_embeddings/test_ollama_embeddings_legacy.yaml")[0]
    resp = adapter.parse_embed(inter.response, EmbeddingRequest("llama3", ["all-minilm"]))
    (vector,) = resp.vectors
    assert vector == inter.response.json()["embedding"] and len(vector) == 4096
    assert resp.provider == "ollama" and resp.model == "llama3"


def test_parse_synthetic_embed(adapter):
    inter = cassette(SYN + "embed.yaml")[0]
    resp = adapter.parse_embed(inter.response, EmbeddingRequest("embeddinggemma", inter.request_json["input"]))
    assert len(resp.vectors) == 2 and resp.vectors[1][0] == pytest.approx(0.054916814)
    assert resp.usage.input_tokens == 16 and resp.model == "embeddinggemma"
    assert resp.usage.reported is True


def test_an_embedding_without_prompt_eval_count_has_estimated_usage(adapter):
    """The older /api/embeddings reply (and servers that leave the count out) says nothing of
    usage: the input is estimated and marked unreported, never a reported 0 (a free call)."""
    inter = cassette(REC + "test_embeddings/test_ollama_embeddings_legacy.yaml")[0]
    assert "prompt_eval_count" not in inter.response.json()
    usage = adapter.parse_embed(inter.response, EmbeddingRequest("llama3", ["all-minilm"])).usage
    assert usage.reported is False and usage.input_tokens == 3   # 10 characters, about 4 a token


# --------------------------------------------------------------------------- errors


def test_model_not_found_says_to_pull(adapter):
    inter = cassette(SYN + "error_model_not_found.yaml")[0]
    err = adapter.parse_error(inter.response, "llama9")
    assert isinstance(err, NotFoundError) and err.status == 404
    assert "run `ollama pull llama9`" in str(err)


def test_openai_shaped_404_also_says_to_pull(adapter):
    body = json.dumps({"error": {"message": 'model "qwen9" not found, try pulling it first',
                                 "type": "api_error", "code": None}}).encode()
    err = adapter.parse_error(HttpResponse(404, {}, body), "qwen9")
    assert isinstance(err, NotFoundError) and "`ollama pull qwen9`" in str(err)


def test_a_404_that_names_no_model_does_not_say_to_pull(adapter):
    """Ollama's router answers a path it lacks with a plain-text ``404 page not found`` (a base_url
    under the root, or another server on the port). The message told the user to ``ollama pull``
    the model they already had; it now says what is wrong. Ollama's own missing-model 404, in
    either wording, still says to pull."""
    err = adapter.parse_error(HttpResponse(404, {"content-type": "text/plain"}, b"404 page not found"), "llama3.1")
    assert isinstance(err, NotFoundError) and "ollama pull" not in str(err)
    assert "base_url must be the Ollama server's root" in str(err)
    newer = adapter.parse_error(HttpResponse(404, {}, b'{"error":"model \'llama9\' not found"}'), "llama9")
    assert "run `ollama pull llama9`" in str(newer)


def test_a_base_url_ending_in_api_reaches_api_chat(adapter):
    """``OLLAMA_BASE_URL=http://host:11434/api`` sent every call to ``/api/api/chat`` (a 404)."""
    import cloverleaf
    from tests.sdk.upstream import Reply, Upstream

    upstream = Upstream()
    reply = {"model": "llama3.1", "created_at": "2025-01-01T00:00:00.1Z", "done": True, "done_reason": "stop",
             "message": {"role": "assistant", "content": "hi"}, "prompt_eval_count": 3, "eval_count": 1}
    upstream.queue(Reply(body=json.dumps(reply).encode()),
                   Reply(body=json.dumps({"model": "nomic-embed-text", "embeddings": [[0.5]]}).encode()))
    try:
        with cloverleaf.Client() as client:
            assert client.chat("ollama/llama3.1", "hello", base_url=f"{upstream.url}/api/").content == "hi"
            client.embed("ollama/nomic-embed-text", ["a"], base_url=f"{upstream.url}/api")
    finally:
        upstream.close()
    assert [seen.path for seen in upstream.seen] == ["/api/chat", "/api/embed"]


def test_server_error_and_hint(adapter):
    err = adapter.parse_error(HttpResponse(500, {}, b'{"error":"llama runner process has terminated"}'), "x")
    assert isinstance(err, ServerError) and "runner process" in str(err)
    assert "ollama serve" in adapter.connect_hint(cfg())


# --------------------------------------------------------------------------- the OpenAI-compatible path


def test_gpt_oss_goes_through_the_openai_path(adapter):
    req = ChatRequest("gpt-oss:20b", JOKE, reasoning=ReasoningConfig(effort="low"), max_tokens=64)
    http = adapter.build_chat(req, cfg())
    body = http.json()
    assert http.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
    assert body["reasoning_effort"] == "low" and body["max_tokens"] == 64 and "options" not in body


def test_openai_path_round_trip_against_an_openai_compatible_upstream(adapter):
    """The composed OpenAI adapter parses JSON and SSE answers; the decoder sniffs SSE."""
    import httpx

    from cloverleaf.providers.fake.adapter import FakeUpstream

    upstream = FakeUpstream()
    conf = ProviderConfig("ollama", "ollama", "http://fake.cloverleaf.invalid", extra={"ollama_api": "openai_chat"})
    req = ChatRequest("echo", [Message.user("hello from the openai path")], tools=None)
    with httpx.Client(transport=upstream) as client:
        http = adapter.build_chat(req, conf)
        r = client.request(http.method, http.url, headers=http.headers, content=http.body)
        whole = adapter.parse_chat(HttpResponse(r.status_code, dict(r.headers), r.content), req)
        req.stream = True
        http = adapter.build_chat(req, conf)
        r = client.request(http.method, http.url, headers=http.headers, content=http.body)
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert whole.text == "hello from the openai path" and whole.provider == "ollama"
    events, streamed = decode(adapter, req, r.content)
    assert streamed.text == whole.text and streamed.usage == whole.usage
    assert events[-1].type == "done" and events[-1].finish_reason == "stop"
