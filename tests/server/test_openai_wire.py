"""openai_wire: request parsing (with precise 400s) and rendering checked against OpenAI's
published schema and the official SDK's own types and stream accumulator."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import CreateEmbeddingResponse, ImagesResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from cloverleaf._types import (
    Attachment,
    ChatResponse,
    EmbeddingResponse,
    GeneratedImage,
    ImageResponse,
    Reasoning,
    ResponseMetadata,
    Role,
    StreamEvent,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from cloverleaf.attachments import AttachmentPolicy, resolve
from cloverleaf.server import openai_wire as ow
from cloverleaf.server.errors import BadRequest
from cloverleaf.server.openai_stream import ChatChunkEncoder

from .openai_schema import validate

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WAV = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + b"\0" * 24
SERVER_POLICY = AttachmentPolicy(allow_local_paths=False)
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _resolved(part: object) -> Attachment:
    assert isinstance(part, Attachment)
    return resolve(part, policy=SERVER_POLICY)


def test_parse_full_chat_request() -> None:
    body = {
        "model": "fake/echo",
        "messages": [
            {"role": "developer", "content": "be terse"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            ]},
            {"role": "assistant", "content": None, "reasoning_content": "thinking...",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12C"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                     "parameters": {"type": "object",
                                                                    "properties": {"city": {"type": "string"}}},
                                                     "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                   "strict": True}},
        "reasoning_effort": "low",
        "max_completion_tokens": 50,
        "temperature": 0.5,
        "stop": "END",
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
        "parallel_tool_calls": False,
        "frequency_penalty": 0.1,  # accepted, ignored
    }
    req, include_usage = ow.parse_chat_request(body)
    assert include_usage is True and req.stream is True
    assert [m.role for m in req.messages] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL]
    assert req.messages[0].content == "be terse"
    user = req.messages[1].parts
    assert isinstance(user[0], Text) and user[0].text == "what is this?"
    # attachments are passed on unread; the engine resolves them under the server's policy
    assert all(isinstance(p, Attachment) and not p.resolved for p in user[1:])
    image, audio, pdf = (_resolved(user[i]) for i in (1, 3, 4))
    assert (image.type, image.media_type, image.data) == ("image", "image/png", PNG)
    assert isinstance(user[2], Attachment) and user[2].source == "https://example.com/cat.png"
    assert (audio.type, audio.media_type, audio.data) == ("audio", "audio/wav", WAV)
    assert (pdf.type, pdf.data, pdf.filename) == ("pdf", b"%PDF-", "a.pdf")
    reasoning, call = req.messages[2].parts
    assert isinstance(reasoning, Reasoning) and reasoning.text == "thinking..."
    assert isinstance(call, ToolCall) and call.arguments == {"city": "Oslo"} and call.id == "call_1"
    result = req.messages[3].parts[0]
    assert isinstance(result, ToolResult) and result.tool_call_id == "call_1" and result.content == "12C"
    assert req.tools and req.tools[0].name == "get_weather" and req.tools[0].strict is True
    assert req.tool_choice is not None and (req.tool_choice.mode, req.tool_choice.name) == ("tool", "get_weather")
    assert req.response_format is not None and req.response_format.type == "json_schema"
    assert req.response_format.name == "w"
    assert req.reasoning is not None and req.reasoning.effort == "low"
    assert (req.max_tokens, req.temperature, req.stop, req.seed, req.parallel_tool_calls) == (50, 0.5, ["END"], 7, False)


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "/etc/passwd"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}, "logprobs"),
    ({"model": "m" * 257, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**30}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 2**64}, "seed"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER],
      "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
          {"type": "function", "function": {"name": "nope"}}]}}}, "tool_choice.allowed_tools"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
     "tools[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
     "response_format.type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"},
     "reasoning_effort"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "modalities": ["text", "audio"]}, "modalities"),
])
def test_bad_chat_requests_name_the_field(body: dict, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        ow.parse_chat_request(body)
    assert info.value.param == param
    assert info.value.status == 400


OPTIONAL_CHAT_FIELDS = ("n", "logprobs", "top_logprobs", "stream", "stream_options", "max_completion_tokens",
                        "max_tokens", "tools", "temperature", "top_p", "stop", "seed", "reasoning_effort",
                        "thinking", "user", "parallel_tool_calls")


def test_a_plain_chat_body_reads_none_of_the_optional_fields(monkeypatch) -> None:
    """The readers of optional fields run only for the fields a body has (a Python call each
    saved, every request): a body of model and messages calls none of them."""
    def read(*args, **kw):
        raise AssertionError(f"an absent field was read: {args[1:2]}")

    for reader in ("get_int", "get_bool", "get_dict", "get_number", "get_stop", "_tools", "_reasoning"):
        monkeypatch.setattr(ow, reader, read)
    req, include_usage = ow.parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert (req.max_tokens, req.temperature, req.top_p, req.stop, req.seed, req.reasoning, req.user, req.tools,
            req.stream, req.parallel_tool_calls, include_usage) == (None,) * 8 + (False, None, False)


@pytest.mark.parametrize("field", OPTIONAL_CHAT_FIELDS)
def test_an_optional_chat_field_sent_as_null_is_as_absent(field: str) -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert ow.parse_chat_request({**base, field: None}) == ow.parse_chat_request(base)


@pytest.mark.parametrize("field", [f for f in OPTIONAL_CHAT_FIELDS if f not in ("stop", "tools")])
def test_an_optional_chat_field_of_the_wrong_type_is_still_refused(field: str) -> None:
    with pytest.raises(BadRequest) as info:
        ow.parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}], field: ["x"]})
    assert info.value.status == 400


def _response(parts: list, finish: str = "stop", usage: Usage | None = None) -> ChatResponse:
    return ChatResponse(parts=parts, model="echo", provider="fake", finish_reason=finish,  # type: ignore[arg-type]
                        usage=usage or Usage(10, 5, cached_tokens=3, reasoning_tokens=2),
                        metadata=ResponseMetadata(response_id="chatcmpl-1"))


def test_chat_completion_text_validates() -> None:
    out = ow.chat_completion(_response([Reasoning("hmm"), Text("Hello")]), response_id="chatcmpl-1",
                             model="fake/echo", created=1700000000)
    validate("CreateChatCompletionResponse", out)
    parsed = ChatCompletion.model_validate(out)
    assert parsed.choices[0].message.content == "Hello"
    assert parsed.choices[0].finish_reason == "stop"
    assert out["choices"][0]["message"]["reasoning_content"] == "hmm"
    assert parsed.usage is not None and parsed.usage.prompt_tokens == 10 and parsed.usage.total_tokens == 15
    assert parsed.usage.prompt_tokens_details.cached_tokens == 3  # type: ignore[union-attr]
    assert parsed.usage.completion_tokens_details.reasoning_tokens == 2  # type: ignore[union-attr]


def test_chat_completion_tool_calls_validate() -> None:
    resp = _response([ToolCall("call_9", "get_weather", {"city": "Oslo"})], finish="tool_calls")
    out = ow.chat_completion(resp, response_id="chatcmpl-2", model="m", created=1)
    validate("CreateChatCompletionResponse", out)
    msg = ChatCompletion.model_validate(out).choices[0].message
    assert msg.content is None
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("finish", ["error", "other", None])
def test_non_openai_finish_reasons_map_to_valid_values(finish: str | None) -> None:
    out = ow.chat_completion(_response([Text("x")], finish=finish), response_id="c", model="m", created=1)  # type: ignore[arg-type]
    validate("CreateChatCompletionResponse", out)
    assert out["choices"][0]["finish_reason"] == "stop"


def _sse_chunks(raw: bytes) -> list[dict | str]:
    out: list[dict | str] = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        assert frame.startswith("data: ")
        data = frame[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _encode(events: list[StreamEvent], include_usage: bool) -> list[dict | str]:
    enc = ChatChunkEncoder(response_id="chatcmpl-s", model="fake/echo", created=1700000000,
                              include_usage=include_usage)
    raw = enc.start()
    for ev in events:
        raw += enc.encode(ev) or b""
    raw += enc.finish()
    return _sse_chunks(raw)


STREAM = [
    StreamEvent("reasoning", text="let me think"),
    StreamEvent("text", text="Hel"),
    StreamEvent("text", text="lo \"world\""),
    StreamEvent("tool_call_delta", index=1, id="call_a", name="get_weather", arguments='{"ci'),
    StreamEvent("tool_call_delta", index=2, id="call_b", name="get_time", arguments=""),
    StreamEvent("tool_call_delta", index=1, arguments='ty": "Oslo"}'),
    StreamEvent("tool_call_delta", index=2, arguments="{}"),
    StreamEvent("usage", usage=Usage(input_tokens=12)),
    StreamEvent("usage", usage=Usage(output_tokens=7)),
    StreamEvent("done", finish_reason="tool_calls", raw_finish_reason="tool_calls"),
]


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_chunks_validate_and_accumulate(include_usage: bool) -> None:
    chunks = _encode(STREAM, include_usage)
    assert chunks[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    for chunk in chunks[:-1]:
        assert isinstance(chunk, dict)
        validate("CreateChatCompletionStreamResponse", chunk)
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    final = state.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == 'Hello "world"'
    assert final.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        ("call_a", "get_weather", {"city": "Oslo"}), ("call_b", "get_time", {})]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "")  # type: ignore[index]
                        for c in chunks[:-1] if isinstance(c, dict) and c["choices"])
    assert reasoning == "let me think"
    usage_chunks = [c for c in chunks if isinstance(c, dict) and "usage" in c]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0]["choices"] == []
        assert usage_chunks[0]["usage"]["prompt_tokens"] == 12
        assert usage_chunks[0]["usage"]["completion_tokens"] == 7
        assert final.usage is not None and final.usage.total_tokens == 19
    else:
        assert usage_chunks == []


def test_stream_finish_is_tool_calls_when_provider_says_stop() -> None:
    chunks = _encode([StreamEvent("tool_call_delta", index=0, id="c", name="f", arguments="{}"),
                      StreamEvent("done", finish_reason="stop")], include_usage=False)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if isinstance(c, dict) and c["choices"]]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}


def test_embedding_request_and_response() -> None:
    req, enc = ow.parse_embedding_request({"model": "fake/embed", "input": ["a", "b"], "encoding_format": "base64",
                                           "dimensions": 4})
    assert req.inputs == ["a", "b"] and req.dimensions == 4 and enc == "base64"
    resp = EmbeddingResponse(vectors=[[0.5, -1.0], [0.25, 2.0]], model="e", provider="fake", usage=Usage(6, 0))
    for encoding in ("float", "base64"):
        out = ow.embedding_response(resp, model="fake/embed", encoding=encoding)
        validate("CreateEmbeddingResponse", out) if encoding == "float" else None
        parsed = CreateEmbeddingResponse.model_validate(out) if encoding == "float" else None
        if parsed is not None:
            assert parsed.data[1].embedding == [0.25, 2.0] and parsed.usage.prompt_tokens == 6
        else:
            raw = base64.b64decode(out["data"][0]["embedding"])
            assert list(struct.unpack("<2f", raw)) == [0.5, -1.0]


@pytest.mark.parametrize("body, param", [
    ({"model": "m"}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": [1, "a"]}, "input"),
    ({"model": "m", "input": [-1, 2]}, "input"),
    ({"model": "m", "input": [[1, 2], []]}, "input[1]"),
    ({"model": "m", "input": [[1, 2], [True]]}, "input[1]"),
    ({"model": "m", "input": "x", "user": {}}, "user"),
    ({"model": "m", "input": "x", "colour": "red"}, "colour"),
    ({"model": "m", "input": ["ok", ""]}, "input[1]"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x"}, "model"),
])
def test_bad_embedding_requests(body: dict, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        ow.parse_embedding_request(body)
    assert info.value.param == param


def test_embedding_inputs_are_capped_as_openai_caps_them() -> None:
    """A short input still gets a whole vector back: the count, not the body size, bounds the answer."""
    req, _ = ow.parse_embedding_request({"model": "m", "input": ["x"] * ow.MAX_EMBEDDING_INPUTS})
    assert len(req.inputs) == 2048
    for many in (["x"] * 2049, [[7]] * 2049):
        with pytest.raises(BadRequest, match="at most 2048 inputs per request.*got 2,049.*batches") as info:
            ow.parse_embedding_request({"model": "m", "input": many})
        assert info.value.param == "input"


def test_token_id_embedding_input_is_parsed() -> None:
    req, _ = ow.parse_embedding_request({"model": "m", "input": [1, 2, 3]})
    assert req.token_ids == [[1, 2, 3]] and req.inputs == []
    req, _ = ow.parse_embedding_request({"model": "m", "input": [[1, 2], [3]]})
    assert req.token_ids == [[1, 2], [3]]


def test_images_response_validates() -> None:
    req = ow.parse_image_request({"model": "fake/img", "prompt": "a cat", "n": 2, "response_format": "b64_json"})
    assert (req.n, req.response_format) == (2, "b64_json")
    resp = ImageResponse(images=[GeneratedImage(data=PNG), GeneratedImage(url="https://x.test/a.png")],
                         model="img", provider="fake")
    out = ow.images_response(resp, created=1, want="b64_json")
    validate("ImagesResponse", out)
    parsed = ImagesResponse.model_validate(out)
    assert parsed.data and base64.b64decode(parsed.data[0].b64_json or "") == PNG
    assert parsed.data[1].url == "https://x.test/a.png"
    as_url = ow.images_response(resp, created=1, want="url")
    validate("ImagesResponse", as_url)
    assert as_url["data"][0]["url"].startswith("data:image/png;base64,")


def test_models_list_validates() -> None:
    out = ow.models_list([ow.model_object("fake/echo", owned_by="fake"), ow.model_object("smart", owned_by="route")])
    validate("ListModelsResponse", out)


def test_a_text_chunk_is_its_frame_around_the_text_json_without_formatting_the_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Per streamed chunk, text is written as bytes made once per stream around the text's JSON
    (no text formatting of the whole frame, no decode and re-encode): the same bytes as the
    frame written whole, for any text; a refusal still names its field."""
    from cloverleaf.server import openai_stream

    enc = ChatChunkEncoder(response_id='chatcmpl-"q', model="m\u00e9", created=7, include_usage=False)
    monkeypatch.setattr(openai_stream, "dumps_text", lambda value: pytest.fail("formatted as text"))
    texts = ["hi", 'é\n"\\', "\u2028", "a" * 300]
    chunks = [enc.encode(StreamEvent("text", text=t)) for t in texts]
    monkeypatch.undo()
    for text, chunk in zip(texts, chunks, strict=True):
        assert chunk == (b'data: {"id":"chatcmpl-\\"q","object":"chat.completion.chunk","created":7,'
                         b'"model":"m\xc3\xa9","choices":[{"index":0,"delta":{"content":'
                         + json.dumps(text, ensure_ascii=False).encode() + b'},"finish_reason":null,"logprobs":null}]}\n\n')
        assert ChatCompletionChunk.model_validate_json(chunk[6:-2]).choices[0].delta.content == text
    refusal = enc.encode(StreamEvent("text", text="no", extra={"refusal": True}))
    assert refusal is not None and b'"delta":{"refusal":"no"}' in refusal
