"""What a hostile or clumsy client can do to the live server, and what it gets back: bodies
that are not JSON, never finish or are cut off, text that is not Unicode, attachments that
are too big, malformed or point inside the network (also inside tool results), and requests
that a page in the developer's browser could forge. None of it may be a 500."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from cloverleaf.server.options import ServerOptions

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import csrf_of, sign_in

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
CHAT = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello"}]}
ATTACHMENT_LIMIT = 4096


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Live]:
    """Open mode, a short body deadline, and a small attachment cap."""
    s = settings(attachments={"max_bytes": ATTACHMENT_LIMIT})
    live = start_live(s, ServerOptions.from_settings({"body_timeout_seconds": 0.5}, s.env))
    yield live
    stop_live(live)


def _metric(live: Live, needle: str) -> float:
    text = httpx.get(f"{live.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("cloverleaf_requests_total") and needle in line)


def _raw(live: Live, request: bytes, *, hang_up: bool = False) -> bytes:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        if hang_up:
            return b""
        return sock.recv(65536)


# --------------------------------------------------------------------------- bodies


def test_a_body_not_sent_as_json_is_415(strict_server: Live) -> None:
    """A page can make a browser POST text/plain (or a form) cross-site without asking; the
    JSON content type it cannot send that way is required, so such a request never runs."""
    with strict_server.http() as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"content-type": content_type} if content_type else {}
            r = http.post("/v1/chat/completions", content=httpx.Request("POST", "/", json=CHAT).content,
                          headers=headers)
            assert r.status_code == 415, content_type
            assert r.json()["error"]["code"] == "unsupported_media_type"
        ok = http.post("/v1/chat/completions", json=CHAT, headers={"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 200


def test_a_compressed_body_is_415_not_read_as_json(strict_server: Live) -> None:
    """gzip used to read as "not valid JSON" (400), and plain JSON labelled gzip went through."""
    import gzip
    import json

    plain = json.dumps(CHAT).encode()
    with strict_server.http() as http:
        for body, encoding in ((gzip.compress(plain), "gzip"), (plain, "gzip"), (plain, "br")):
            r = http.post("/v1/chat/completions", content=body,
                          headers={"content-type": "application/json", "content-encoding": encoding})
            assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_content_encoding"
            assert "send the JSON uncompressed" in r.json()["error"]["message"]
        ok = http.post("/v1/chat/completions", content=plain,
                       headers={"content-type": "application/json", "content-encoding": "identity"})
        assert ok.status_code == 200


def test_a_body_that_never_finishes_is_408_and_the_connection_closed(strict_server: Live) -> None:
    """The 408 kept the connection open, still waiting for the rest of the declared body
    (RFC 9110 §15.5.9: the server closes it, and says so)."""
    host, port = strict_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\":")
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert b"\r\nconnection: close\r\n" in answer.partition(b"\r\n\r\n")[0].lower() + b"\r\n"


def test_a_client_hanging_up_mid_body_is_counted_not_an_incident(strict_server: Live,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    before = _metric(strict_server, 'status="499"')
    _raw(strict_server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\":", hang_up=True)
    deadline = time.monotonic() + 10
    while _metric(strict_server, 'status="499"') == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _metric(strict_server, 'status="499"') == before + 1
    assert "incident" not in caplog.text


def test_lone_surrogate_is_400_not_an_upstream_error(strict_server: Live) -> None:
    with strict_server.http() as http:
        r = http.post("/v1/chat/completions", headers={"content-type": "application/json"},
                      content=b'{"model":"fake/echo","messages":[{"role":"user","content":"a\\ud800b"}]}')
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_unicode"
        paired = http.post("/v1/chat/completions", headers={"content-type": "application/json"},
                           content=b'{"model":"fake/echo","messages":[{"role":"user","content":"\\ud83d\\ude00"}]}')
        assert paired.status_code == 200 and paired.json()["choices"][0]["message"]["content"] == "\U0001F600"


#: a lone surrogate (U+DCFF) encoded as if it were UTF-8 text: bytes no UTF-8 decoder accepts
NOT_UTF8 = b"\xed\xb3\xbf"
RAW_BODIES = {
    "/v1/chat/completions": b'{"model":"fake/echo' + NOT_UTF8 + b'","messages":[{"role":"user","content":"hi"}]}',
    "/v1/embeddings": b'{"model":"fake/echo","input":"a' + NOT_UTF8 + b'"}',
    "/v1/images/generations": b'{"model":"fake/echo","prompt":"a' + NOT_UTF8 + b'"}',
    "/v1/messages": b'{"model":"fake/echo","max_tokens":5,"messages":[{"role":"user","content":"' + NOT_UTF8 + b'"}]}',
    "/v1/messages/count_tokens": b'{"model":"fake/echo","messages":[{"role":"user","content":"' + NOT_UTF8 + b'"}]}',
    "/v1/responses": b'{"model":"fake/echo' + NOT_UTF8 + b'","input":"hi"}',
    "/admin/keys": b'{"name":"k' + NOT_UTF8 + b'"}',
    "/admin/models": b'{"name":"m' + NOT_UTF8 + b'","provider":"fake","identifier":"echo"}',
    "/admin/traces": b'{"metadata":{"a":"' + NOT_UTF8 + b'"}}',
}


def test_a_body_that_is_not_utf8_is_400_on_every_json_endpoint(secured_server: Live) -> None:
    """The bytes ED B3 BF were parsed (json.loads decodes bytes with surrogatepass) into a string
    nothing can encode again: admin POSTs answered 500, a chat call a bare text/plain 500, and the
    model name it left in the breaker table made /metrics and /admin/breakers 500 until restart."""
    with secured_server.http(MASTER) as http:
        for path, body in RAW_BODIES.items():
            lone_in_utf16 = body.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
            for content in (body, body.replace(NOT_UTF8, b"\xff"), lone_in_utf16):
                r = http.post(path, content=content, headers={"content-type": "application/json"})
                assert r.status_code == 400, (path, content, r.text)
                error = r.json()["error"]
                assert error["type"] == "invalid_request_error" and "not valid UTF" in error["message"], (path, error)
                if path.startswith("/v1/messages"):            # Anthropic's shape
                    assert r.json()["type"] == "error" and error["details"]["error_code"] == "invalid_unicode"
                else:
                    assert error["code"] == "invalid_unicode"
        utf16 = http.post("/v1/chat/completions", content=json.dumps(CHAT).encode("utf-16"),
                          headers={"content-type": "application/json"})
        assert utf16.status_code == 200                    # valid UTF-16 JSON text is still read
        for path in ("/metrics", "/admin/breakers"):
            assert http.get(path).status_code == 200, path
    ui = sign_in(secured_server)
    token = csrf_of(ui.get("/ui/playground").text)
    r = ui.post("/ui/playground/stream", content=RAW_BODIES["/v1/chat/completions"],
                headers={"content-type": "application/json", "x-csrf-token": token})
    assert r.status_code == 400 and "not valid UTF-8" in r.text


def test_a_held_name_utf8_cannot_carry_never_makes_a_listing_500(secured_server: Live) -> None:
    """Defence in depth: a target or model name with a lone surrogate that reached the breaker
    table or the metrics (as one did through raw bytes before bodies were checked) made /metrics,
    /admin/breakers and the Health page answer 500 until restart. They show U+FFFD instead."""
    import asyncio

    from cloverleaf.gateway.breaker import BreakerPolicy

    name = "fake/held\udcff"
    st = secured_server.state
    policy = BreakerPolicy(failure_threshold=1)
    asyncio.run(st.backend.gateway.state.breaker_record(name, False, time.time(), policy, error="x\udcff"))
    st.metrics.record("openai", name, "fake", 400, 0.01)
    with secured_server.http(MASTER) as http:
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and 'target="fake/held\ufffd"' in metrics.text
        breakers = http.get("/admin/breakers")
        assert breakers.status_code == 200
        assert "fake/held\ufffd" in breakers.json()["data"]
    health = sign_in(secured_server).get("/ui/health")
    assert health.status_code == 200 and "fake/held\ufffd" in health.text


# --------------------------------------------------------------------------- attachments


def _image_message(url: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_oversized_base64_is_refused_without_being_decoded(strict_server: Live,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real = base64.b64decode

    def spy(data: str | bytes, *args: object, **kwargs: object) -> bytes:
        decoded.append(len(data))
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(base64, "b64decode", spy)
    big = base64.b64encode(PNG + b"\0" * (ATTACHMENT_LIMIT * 4)).decode()
    with pytest.raises(openai.BadRequestError) as info:
        strict_server.openai().chat.completions.create(model="fake/echo",
                                                       messages=_image_message(f"data:image/png;base64,{big}"))
    assert info.value.body["code"] == "attachment_too_large"  # type: ignore[index]
    assert all(n < ATTACHMENT_LIMIT * 2 for n in decoded), decoded  # refused from its length alone


def test_malformed_base64_is_400(strict_server: Live) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        strict_server.anthropic().messages.create(model="fake/echo", max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@not base64@@"}}]}])
    assert "base64" in info.value.body["error"]["message"]  # type: ignore[index]


def test_audio_and_files_are_typed_from_their_bytes(strict_server: Live) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    strict_server.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "file", "file": {"file_data": data_url, "filename": "shot.png"}},
        {"type": "file", "file": {"file_data": base64.b64encode(b"%PDF-1.7 tiny").decode(), "filename": "a.pdf"}}]}])
    parts = strict_server.fake.requests[-1].json["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "file"]
    assert parts[1]["image_url"]["url"] == data_url
    assert parts[2]["file"]["file_data"].startswith("data:application/pdf;base64,")
    with pytest.raises(openai.BadRequestError) as info:  # a PNG that says it is audio
        strict_server.openai().chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(PNG).decode(), "format": "wav"}}]}])
    assert info.value.body["code"] == "attachment_type_mismatch"  # type: ignore[index]


def _tool_result_turns(block: dict[str, object]) -> list[dict[str, object]]:
    return [{"role": "user", "content": "take a screenshot"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [{"type": "text", "text": "here"}, block]}]}]


TOOLS = [{"name": "shot", "input_schema": {"type": "object"}}]


def test_attachments_inside_tool_results_are_resolved_and_guarded(strict_server: Live) -> None:
    client = strict_server.anthropic()
    sent_before = len(strict_server.fake.requests)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="fake/echo", max_tokens=10, tools=TOOLS, messages=_tool_result_turns(
            {"type": "image", "source": {"type": "url", "url": "http://169.254.169.254/latest/shot.png"}}))
    assert "169.254.169.254" in info.value.body["error"]["message"]  # type: ignore[index]
    assert len(strict_server.fake.requests) == sent_before  # refused before anything was sent

    client.messages.create(model="fake/echo", max_tokens=10, tools=TOOLS, messages=_tool_result_turns(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(PNG).decode()}}))
    tool_message = strict_server.fake.requests[-1].json["messages"][2]
    assert tool_message["role"] == "tool" and "here" in str(tool_message["content"])
    assert base64.b64encode(PNG).decode() in str(strict_server.fake.requests[-1].json)


# --------------------------------------------------------------------------- structured output


def test_structured_output_that_does_not_parse_is_passed_through(strict_server: Live) -> None:
    """The server is a proxy: JSON cut off by max_tokens reaches the client as the provider
    sent it (finish_reason "length"), for the client to handle, as it would from OpenAI."""
    client = strict_server.openai()
    strict_server.fake.script.reply('{"city": "Os', finish_reason="length")
    out = client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "x"}],
                                         response_format={"type": "json_object"}, max_tokens=5)
    assert out.choices[0].message.content == '{"city": "Os' and out.choices[0].finish_reason == "length"
    strict_server.fake.script.reply('{"city": "Os', finish_reason="length")
    stream = client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "x"}],
                                            response_format={"type": "json_object"}, max_tokens=5, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == '{"city": "Os'
    assert chunks[-1].choices[0].finish_reason == "length"


# --------------------------------------------------------------------------- DNS rebinding


def test_open_mode_refuses_requests_addressed_to_another_host(strict_server: Live) -> None:
    """A page on evil.example whose name is re-pointed at 127.0.0.1 reaches the port, but
    its requests still say ``Host: evil.example``."""
    with strict_server.http() as http:
        r = http.post("/v1/chat/completions", json=CHAT, headers={"host": "evil.example:4000"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "open_mode_loopback_only"
        for host in ("localhost:4000", "127.0.0.1", "[::1]:4000"):
            assert http.post("/v1/chat/completions", json=CHAT, headers={"host": host}).status_code == 200
