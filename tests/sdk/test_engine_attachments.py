"""The engine's handling of attachments and of the keys it sends, seen from the caller.

Types the loader accepts (``"document"``, ``"PDF"``) used to be a KeyError in the capability
check, and an unknown one a bare KeyError; a URL attachment to a provider that takes no such
input at all was told to switch to ``fetch='local'``; resolving attachments wrote the loaded
copies into the caller's own messages; and an upstream error that echoed the key back (in an
error response, or inside a 200: its JSON body or its stream) handed it to the caller's logs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cloverleaf
from cloverleaf import Attachment, AttachmentError, Client, Message, Role, Text, UnsupportedCapability

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"


@pytest.fixture
def client():
    with Client(env={"ANTHROPIC_API_KEY": "sk-ant-test"}, max_retries=0) as c:
        yield c


@pytest.mark.parametrize(("kind", "name"), [("document", "document.pdf"), ("PDF", "document.pdf"),
                                            (" pdf", "document.pdf"), ("Image", "image.png")])
def test_every_type_the_loader_accepts_passes_the_capability_check(client, kind: str, name: str) -> None:
    r = client.chat("fake/echo", "hi", attachments=[Attachment(source=str(MEDIA / name), type=kind)])  # type: ignore[arg-type]
    assert r.content == "hi"


def test_an_unknown_type_is_the_loaders_error_before_anything_is_sent(client) -> None:
    with pytest.raises(AttachmentError, match="unsupported attachment type 'video'") as err:
        client.chat("fake/echo", "hi", attachments=[Attachment(source=str(MEDIA / "image.png"), type="video")])  # type: ignore[arg-type]
    assert err.value.rule == "unsupported-type"
    assert client.fake.requests == []


def test_a_url_the_provider_cannot_take_in_any_form_is_not_told_to_fetch_locally(client) -> None:
    audio = Attachment(source="https://example.com/clip.wav", fetch="provider")
    with pytest.raises(UnsupportedCapability) as err:
        client.chat("anthropic/claude-haiku-4-5", "hi", attachments=[audio])
    assert "audio input" in str(err.value) and "fetch='local'" not in str(err.value)


def test_resolving_attachments_leaves_the_callers_messages_as_they_were(client) -> None:
    att = Attachment(source=str(MEDIA / "image.png"))
    result = cloverleaf.ToolResult("c1", [Text("shot"), Attachment(source=str(MEDIA / "image.png"))])
    messages = [Message(Role.USER, parts=[Text("describe"), att]),
                Message(Role.ASSISTANT, parts=[cloverleaf.ToolCall("c1", "shoot", {})]),
                Message(Role.TOOL, parts=[result])]
    tool_parts = list(result.content)
    client.chat("fake/echo", messages)
    assert messages[0].parts[1] is att and att.data is None and att.type is None
    assert result.content == tool_parts and all(a.data is None for a in result.content if isinstance(a, Attachment))
    sent = client.fake.requests[-1].json["messages"]
    assert any(isinstance(m["content"], list) and any(p["type"] == "image_url" for p in m["content"]) for m in sent)


def test_an_upstream_error_that_echoes_the_key_does_not_pass_it_on(client) -> None:
    key = "cl-live-SECRET0123456789"  # no provider's key shape: only knowing the key masks it
    body = {"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error"}}
    client.fake.script.fail(401, body=body)
    with pytest.raises(cloverleaf.AuthenticationError) as err:
        client.chat("fake/echo", "hi", api_key=key)
    assert key not in str(err.value) and key not in (err.value.body or "") and key not in repr(err.value.args)
    assert "Incorrect API key provided: <redacted>" in str(err.value)
    client.fake.script.fail(401, body=body)
    with pytest.raises(cloverleaf.AuthenticationError) as err:
        list(client.stream("fake/echo", "hi", api_key=key))
    assert key not in str(err.value) and key not in (err.value.body or "")


def test_the_fake_has_a_default_embedding_model(client) -> None:
    r = client.embed("fake", ["a", "b"])
    assert r.provider == "fake" and len(r.vectors) == 2
    assert r.vectors == client.embed("fake/embed", ["a", "b"]).vectors


def test_a_base_url_password_an_upstream_echoes_is_redacted(upstream) -> None:
    """A base_url with credentials (``http://user:password@host``) is sent as ``Authorization:
    Basic <base64>``; an upstream that echoed that header (or the password) in its error body
    handed the operator's password to every caller, and into call records. The key shapes now
    include a Basic header value, and the URL's credentials are masked in every form."""
    import base64
    import json

    from .upstream import Reply

    secret = "SuperSecretPW123"
    basic = base64.b64encode(f"user:{secret}".encode()).decode()
    body = json.dumps({"error": {"message": f"Invalid key provided: Basic {basic} (password {secret})",
                                 "type": "invalid_request_error"}}).encode()
    upstream.queue(Reply(status=400, body=body))
    with Client(max_retries=0) as c:
        with pytest.raises(cloverleaf.InvalidRequestError) as err:
            c.chat("openai/gpt-4o", "hi", base_url=upstream.url.replace("://", f"://user:{secret}@") + "/v1")
    text = f"{err.value} {err.value.body} {err.value.args!r}"
    assert secret not in text and basic not in text and "Invalid key provided: Basic <redacted>" in text


def test_the_basic_shape_leaves_prose_alone() -> None:
    from cloverleaf._errors import redact

    assert redact("Authorization: Basic dXNlcjpwYXNzd29yZA==") == "Authorization: <redacted>"
    prose = "basic requirements not met; Basic authentication failed; use basic auth"
    assert redact(prose) == prose


@pytest.mark.parametrize("inputs", ["", ["a", ""]])
def test_an_empty_embedding_input_is_refused_before_anything_is_sent(client, inputs) -> None:
    """The server refused it; the SDK sent it upstream (a round trip for a provider's 400)."""
    with pytest.raises(cloverleaf.InvalidRequestError, match="is an empty string"):
        client.embed("fake/embed", inputs)
    assert client.fake.requests == []


async def test_a_url_whose_host_no_lookup_can_take_is_a_dns_refusal() -> None:
    """A DNS label over 63 characters: the system resolver's IDNA codec refuses the name with a
    ``UnicodeError`` before any lookup, which reached the caller as is (the server's 500). It
    is a failed lookup like any other: an AttachmentError. (Here, not in tests/attachments,
    whose guard stands in for the system resolver: this is about the real one.)"""
    from cloverleaf.attachments import AttachmentPolicy, aresolve, resolve

    source = "http://" + "a" * 64 + ".example/x.png"
    with pytest.raises(AttachmentError) as info:
        resolve(source, policy=AttachmentPolicy(), type="image")
    assert info.value.rule == "dns" and "not a valid host name" in str(info.value)
    with pytest.raises(AttachmentError) as info:
        await aresolve(source, policy=AttachmentPolicy(), type="image")
    assert info.value.rule == "dns"


def _errors_inside_a_200(key: str) -> list[tuple[str, str, object]]:
    """(model, base_url path, reply) for each way an upstream puts an error in a 200 answer."""
    import json

    from .upstream import Reply

    error = {"message": f"upstream auth proxy rejected credential {key}", "type": "server_error"}
    sse = {"content-type": "text/event-stream"}
    start = {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c",
                                                  "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}}
    return [
        ("openai/gpt-4o", "/v1", Reply(body=json.dumps({"error": error}).encode())),
        ("openai/gpt-4o", "/v1", Reply(headers=sse, chunks=[
            b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
            b"data: " + json.dumps({"error": error}).encode() + b"\n\n"])),
        ("anthropic/claude-haiku-4-5", "", Reply(headers=sse, chunks=[
            b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n",
            b"event: error\ndata: " + json.dumps({"type": "error", "error": {**error, "type": "api_error"}}).encode()
            + b"\n\n"]))]



def _call(model: str, base_url: str, key: str, streamed: bool) -> None:
    with Client(max_retries=0) as c:
        if streamed:
            list(c.stream(model, "hi", api_key=key, base_url=base_url))
        else:
            c.chat(model, "hi", api_key=key, base_url=base_url)


async def _acall(model: str, base_url: str, key: str, streamed: bool) -> None:
    async with cloverleaf.AsyncClient(max_retries=0) as c:
        if streamed:
            async for _ in c.stream(model, "hi", api_key=key, base_url=base_url):
                pass
        else:
            await c.chat(model, "hi", api_key=key, base_url=base_url)


@pytest.mark.parametrize("case", [0, 1, 2], ids=["json-body", "openai-stream", "anthropic-stream"])
def test_an_error_inside_a_200_that_echoes_the_key_does_not_pass_it_on(upstream, case: int) -> None:
    """An upstream that answers 200 and puts its error in the body or the stream (a JSON body
    holding ``error``, ``data: {"error": ...}``, Anthropic's ``event: error``) is scrubbed as an
    error response is, sync and async."""
    import asyncio

    key = "cl-live-SECRET0123456789"  # no provider's key shape: only knowing the key masks it
    model, path, reply = _errors_inside_a_200(key)[case]
    for run_async in (False, True):
        upstream.queue(reply)
        with pytest.raises(cloverleaf.ProviderError) as err:
            if run_async:
                asyncio.run(_acall(model, upstream.url + path, key, streamed=case > 0))
            else:
                _call(model, upstream.url + path, key, streamed=case > 0)
        text = f"{err.value} {err.value.body} {err.value.args!r}"
        assert key not in text and "rejected credential <redacted>" in text, text
