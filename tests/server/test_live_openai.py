"""The OpenAI-compatible API, live, through the official ``openai`` SDK; every response body
and stream chunk is also validated against OpenAI's published OpenAPI schema."""

from __future__ import annotations

import base64
import json
import socket

import httpx
import openai
import pytest
from pydantic import BaseModel

from .conftest import Live
from .openai_schema import validate

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city", "days"], "additionalProperties": False}}}


def _sse_data(raw: str) -> list[str]:
    return [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]


def test_chat_echo_validates_and_reports_overhead(open_server: Live) -> None:
    client = open_server.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="fake/echo", messages=[{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "hello from the SDK"}])
    validate("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from the SDK"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "fake/echo"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert float(raw.headers["x-cloverleaf-overhead-ms"]) >= 0
    assert raw.headers["x-cloverleaf-target"] == "fake/echo"


def test_a_failed_calls_overhead_leaves_out_the_upstreams_time(open_server: Live) -> None:
    """The provider took at least 200 ms to refuse; the header counts only the gateway's time,
    as it does for an answer (so it stays at most the round trip less those 200 ms)."""
    import time

    with open_server.http() as http:
        t0 = time.perf_counter()
        r = http.post("/v1/chat/completions", json={"model": "fake/fail-400+slow-200ms",
                                                    "messages": [{"role": "user", "content": "hi"}]})
        round_trip_ms = (time.perf_counter() - t0) * 1000.0
    assert r.status_code == 400
    assert float(r.headers["x-cloverleaf-overhead-ms"]) <= round_trip_ms - 200.0


def test_stream_with_usage_validates_every_chunk(open_server: Live) -> None:
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "stream these words please"}],
            "stream": True, "stream_options": {"include_usage": True}}
    with open_server.http() as http:
        r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert "x-cloverleaf-overhead-ms" in r.headers
    data = _sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "stream these words please"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"

    # and the SDK's own stream reader assembles the same
    stream = open_server.openai().chat.completions.create(stream=True, **{k: v for k, v in body.items()
                                                                          if k != "stream"})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "stream these words please" and usage is not None


def test_tools_non_stream_and_stream(open_server: Live) -> None:
    client = open_server.openai()
    messages = [{"role": "user", "content": "what's the weather in Oslo?"}]
    raw = client.chat.completions.with_raw_response.create(model="fake/tools", messages=messages,
                                                           tools=[WEATHER_TOOL], tool_choice="required")
    validate("CreateChatCompletionResponse", raw.http_response.json())
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather"
    assert isinstance(args["city"], str) and isinstance(args["days"], int)

    with client.chat.completions.stream(model="fake/tools", messages=messages, tools=[WEATHER_TOOL],  # type: ignore[arg-type]
                                        tool_choice={"type": "function", "function": {"name": "get_weather"}}) as s:
        final = s.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.name == "get_weather"
    assert set(json.loads(streamed.function.arguments)) == {"city", "days"}
    assert final.choices[0].finish_reason == "tool_calls"

    # the tool result goes back as a tool message and the conversation continues
    follow = client.chat.completions.create(model="fake/echo", messages=[
        *messages, {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "get_weather",
                                                             "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "12C and sunny"},
        {"role": "user", "content": "thanks"}])
    assert follow.choices[0].message.content == "thanks"


class Forecast(BaseModel):
    city: str
    temperature_c: float
    sunny: bool


def test_structured_output_parse(open_server: Live) -> None:
    client = open_server.openai()
    completion = client.beta.chat.completions.parse(
        model="fake/structured", messages=[{"role": "user", "content": "forecast for Oslo"}],
        response_format=Forecast)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert json.loads(completion.choices[0].message.content or "") == parsed.model_dump()

    json_mode = client.chat.completions.create(model="fake/json", messages=[{"role": "user", "content": "any json"}],
                                               response_format={"type": "json_object"})
    assert isinstance(json.loads(json_mode.choices[0].message.content or ""), dict)


def test_image_input_data_url(open_server: Live) -> None:
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    client = open_server.openai()
    completion = client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": [
        {"type": "text", "text": "describe the picture"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}]}])
    assert completion.choices[0].message.content == "describe the picture"
    sent = open_server.fake.requests[-1].json
    parts = sent["messages"][-1]["content"]
    assert any(p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
               for p in parts)


def test_embeddings_base64_default_and_float(open_server: Live) -> None:
    client = open_server.openai()
    texts = ["the quick brown fox jumps", "over the lazy sleeping dog"]
    result = client.embeddings.create(model="fake/embed", input=texts)  # the SDK asks for base64
    assert [d.index for d in result.data] == [0, 1]
    vectors = [d.embedding for d in result.data]
    assert len(vectors[0]) == len(vectors[1]) > 0 and vectors[0] != vectors[1]
    assert result.usage.prompt_tokens > 0
    with open_server.http() as http:
        r = http.post("/v1/embeddings", json={"model": "fake/embed", "input": texts, "encoding_format": "float"})
    validate("CreateEmbeddingResponse", r.json())
    floats = [d["embedding"] for d in r.json()["data"]]
    assert floats[0] == pytest.approx(vectors[0], rel=1e-6, abs=1e-7)


def test_images_b64(open_server: Live) -> None:
    client = open_server.openai()
    raw = client.images.with_raw_response.generate(model="fake/image", prompt="a clover leaf", n=2,
                                                    response_format="b64_json")
    validate("ImagesResponse", raw.http_response.json())
    images = raw.parse().data or []
    assert len(images) == 2
    assert all(base64.b64decode(i.b64_json or "").startswith(b"\x89PNG\r\n\x1a\n") for i in images)


def test_models_list(open_server: Live) -> None:
    with open_server.http() as http:
        r = http.get("/v1/models")
    validate("ListModelsResponse", r.json())
    ids = [m.id for m in open_server.openai().models.list()]
    assert "priced" in ids
    assert open_server.openai().models.retrieve("priced").id == "priced"


# ----------------------------------------------------------------------------- errors


def _error(r: httpx.Response) -> dict:
    validate("ErrorResponse", r.json())
    assert "x-cloverleaf-overhead-ms" in r.headers
    return r.json()["error"]  # type: ignore[no-any-return]


def test_malformed_json_is_400(open_server: Live) -> None:
    with open_server.http() as http:
        r = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in _error(r)["message"]
        r = http.post("/v1/chat/completions", json=["a list"])
        assert r.status_code == 400


def test_invalid_field_is_400_naming_it(open_server: Live) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        open_server.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "x"}],
                                                     temperature="hot")  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.body["param"] == "temperature"  # type: ignore[index]


def test_local_file_attachment_refused(open_server: Live) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        open_server.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}])
    assert "does not read local files" in str(info.value)


def test_unknown_model_is_404(open_server: Live) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        open_server.openai().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_body_too_large_is_413(open_server: Live) -> None:
    big = "x" * 400_000
    with open_server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo",
                                                     "messages": [{"role": "user", "content": big}]})
        assert r.status_code == 413 and _error(r)["code"] == "request_too_large"

        def chunks():  # no Content-Length: the cap is enforced while reading
            for _ in range(100):
                yield b"x" * 10_000

        r = http.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_a_413_before_the_body_is_read_closes_the_connection_and_is_still_read(open_server: Live) -> None:
    """The rest of the body is never read, so the connection cannot carry another request: the
    413 said nothing about that and the connection stayed open. Now ``connection: close``, and
    a client still sending its body neither loses the answer nor meets a reset."""
    port = int(open_server.url.rsplit(":", 1)[1])
    declared = 1_000_000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % declared + b"x" * 300_000)
        answer = b""
        while b"request_too_large" not in answer:
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 ") and b"\r\nconnection: close\r\n" in answer.lower()
        s.sendall(b"x" * (declared - 300_000))  # the rest of the body: dropped, no reset
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""  # and then the server closes


def test_unsupported_capability_is_422_structured(open_server: Live) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        open_server.openai().chat.completions.create(model="simple/default",
                                                     messages=[{"role": "user", "content": "x"}])
    body = info.value.body
    assert body["code"] == "unsupported_capability"  # type: ignore[index]
    assert body["provider"] == "simple"  # type: ignore[index]
    assert body["operation"]  # type: ignore[index]
    assert "fake" in body["providers_that_can"]  # type: ignore[index]


def test_upstream_429_has_retry_after(open_server: Live) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        open_server.openai().chat.completions.create(model="fake/fail-429", messages=[{"role": "user", "content": "x"}])
    assert int(info.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("model, status, cls", [
    ("fake/fail-500", 502, openai.APIStatusError),
    ("fake/fail-529", 503, openai.InternalServerError),
    ("fake/garbage", 502, openai.APIStatusError),
    ("fake/hang", 504, openai.APIStatusError),
])
def test_upstream_failures_are_5xx(open_server: Live, model: str, status: int, cls: type) -> None:
    with pytest.raises(cls) as info:
        open_server.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status  # type: ignore[attr-defined]
    _error(info.value.response)  # type: ignore[attr-defined]


def test_stream_error_before_first_token_is_an_http_error(open_server: Live) -> None:
    with pytest.raises(openai.RateLimitError):
        open_server.openai().chat.completions.create(model="fake/fail-429", stream=True,
                                                     messages=[{"role": "user", "content": "x"}])


def test_stream_error_after_first_token_is_in_band(open_server: Live) -> None:
    with open_server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/reset-after-2", "stream": True,
                                                     "messages": [{"role": "user", "content": "one two three four"}]})
    assert r.status_code == 200
    data = _sse_data(r.text)
    assert "[DONE]" not in data
    last = json.loads(data[-1])
    assert "error" in last and last["error"]["type"] == "api_error"


def test_unexpected_exception_is_500_without_internals(open_server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    async def explode(*a: object, **k: object) -> None:
        raise RuntimeError("secret internal detail /srv/app.py")

    monkeypatch.setattr(open_server.state.backend, "achat", explode)
    with open_server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo",
                                                     "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 500
    assert "secret" not in r.text and "RuntimeError" not in r.text and "incident" in _error(r)["message"]


def test_route_falls_back_and_names_the_target(open_server: Live) -> None:
    raw = open_server.openai().chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": "routed hello"}])
    completion = raw.parse()
    assert completion.model == "smart" and completion.choices[0].message.content == "routed hello"
    assert raw.headers["x-cloverleaf-target"] == "fake/echo"
    assert "smart" in [m.id for m in open_server.openai().models.list()]


def test_a_streamed_answer_names_its_target_in_its_head_too(open_server: Live) -> None:
    """The head of a stream goes out with its first output, when the answering target is known:
    it says which one, as a one-shot answer does (after a fallback too)."""
    body = {"model": "smart", "stream": True, "messages": [{"role": "user", "content": "routed stream"}]}
    with open_server.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["x-cloverleaf-target"] == "fake/echo"
        assert r.read().decode().endswith("data: [DONE]\n\n")


def test_route_with_every_target_failing_lists_attempts(open_server: Live) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        open_server.openai().chat.completions.create(model="doomed", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    body = info.value.body
    assert body["code"] == "all_targets_failed"  # type: ignore[index]
    assert [a["target"] for a in body["attempts"]] == ["fake/fail-500", "fake/garbage"]  # type: ignore[index]


def test_client_hanging_up_mid_stream_closes_the_upstream_call(open_server: Live) -> None:
    import time

    body = {"model": "fake/echo+drip-50ms", "stream": True,
            "messages": [{"role": "user", "content": " ".join(f"word{i}" for i in range(60))}]}
    before = open_server.state.metrics.in_flight
    with open_server.http() as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            next(r.iter_raw())  # the first chunk arrived; now hang up
    store = open_server.state.backend.store
    deadline = time.monotonic() + 10
    while True:
        store.flush()
        calls = store.recent_calls(20, model="fake/echo+drip-50ms")
        settled = open_server.state.metrics.in_flight == before
        if (calls and settled) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert calls and calls[0].status in ("cancelled", "interrupted")
    assert settled
    metrics = httpx.get(f"{open_server.url}/metrics").text  # counted as the client closing, not as a success
    # under the provider that had answered (its final event, which named it, never came)
    assert 'cloverleaf_requests_total{api="openai",model="fake/echo+drip-50ms",provider="fake",status="499"} 1' in metrics
    assert 'model="fake/echo+drip-50ms",provider="fake",status="200"' not in metrics


def test_allowed_tools_sends_only_those_tools(open_server: Live) -> None:
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    out = open_server.openai().chat.completions.create(
        model="fake/tools", messages=[{"role": "user", "content": "weather in Oslo?"}], tools=[WEATHER_TOOL, clock],
        tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
            {"type": "function", "function": {"name": "get_weather"}}]}})
    sent = open_server.fake.requests[-1].json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"] and sent["tool_choice"] == "required"
    calls = out.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
