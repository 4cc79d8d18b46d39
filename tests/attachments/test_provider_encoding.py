"""Resolved attachments, encoded by each provider's adapter, as that provider's API expects.

For every provider the real fixture files are resolved with :func:`resolve` and put into a
chat request; the adapter builds the HTTP request and the test reads the attachment back out
of the JSON body: the base64 payload must decode to the very file, under the provider's own
field names. Kinds a provider cannot take must raise :class:`UnsupportedCapability` (and
agree with the adapter's capability flags, which the client checks before any network call).
"""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Callable
from typing import Any

import pytest

from cloverleaf._errors import UnsupportedCapability
from cloverleaf._types import Attachment, ChatRequest, Message, Text
from cloverleaf.attachments import resolve
from cloverleaf.providers.base import ProviderConfig

from .conftest import MEDIA, MediaServer, loopback_policy, media


def _adapter_or_skip(row: str) -> Any:
    from cloverleaf.providers.registry import KINDS, get_adapter, get_spec

    spec = get_spec(row)
    module = KINDS[spec.kind].partition(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip("adapter not present")
    return get_adapter(spec)


CONFIGS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig("openai", "openai", "https://api.openai.com/v1", api_key="sk-test"),
    "azure": ProviderConfig("azure", "azure", "https://res.openai.azure.com/openai/deployments/gpt-4o",
                            api_key="az-test"),
    "anthropic": ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test"),
    "gemini": ProviderConfig("gemini", "gemini", "https://generativelanguage.googleapis.com", api_key="g-test"),
    "bedrock": ProviderConfig("bedrock", "bedrock", "", extra={
        "region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}),
    "ollama": ProviderConfig("ollama", "ollama", "http://127.0.0.1:11434"),
}
MODELS = {"openai": "gpt-4o", "azure": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash",
          "bedrock": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "ollama": "llama3.2-vision"}


def _body(provider: str, att: Attachment) -> dict[str, Any]:
    adapter = _adapter_or_skip(provider)
    req = ChatRequest(MODELS[provider], [Message.user([Text("What is in this file?"), att])])
    body = adapter.build_chat(req, CONFIGS[provider]).json()
    assert isinstance(body, dict)
    return body


def _user_content(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The first user message's content list (OpenAI, Anthropic and Bedrock shapes)."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _decoded(b64: str) -> bytes:
    return base64.b64decode(b64, validate=True)


# --------------------------------------------------------------------------- per-provider readers
# Each returns the encoded attachment block, or raises if the body does not carry one.


def openai_block(body: dict[str, Any]) -> dict[str, Any]:
    blocks = [b for b in _user_content(body) if b["type"] != "text"]
    assert len(blocks) == 1
    return blocks[0]


def check_openai(att: Attachment, name: str, block: dict[str, Any]) -> None:
    if att.type == "image":
        assert block["type"] == "image_url"
        prefix = f"data:{att.media_type};base64,"
        assert block["image_url"]["url"].startswith(prefix)
        assert _decoded(block["image_url"]["url"][len(prefix):]) == media(name)
    elif att.type == "pdf":
        assert block["type"] == "file"
        assert block["file"]["filename"] == name
        prefix = "data:application/pdf;base64,"
        assert block["file"]["file_data"].startswith(prefix)
        assert _decoded(block["file"]["file_data"][len(prefix):]) == media(name)
    else:
        assert block["type"] == "input_audio"
        assert block["input_audio"]["format"] == {"audio/wav": "wav", "audio/mpeg": "mp3"}[att.media_type or ""]
        assert _decoded(block["input_audio"]["data"]) == media(name)


def check_anthropic(att: Attachment, name: str, body: dict[str, Any]) -> None:
    blocks = [b for b in _user_content(body) if b["type"] != "text"]
    assert len(blocks) == 1
    block = blocks[0]
    assert block["type"] == {"image": "image", "pdf": "document"}[att.type or ""]
    assert block["source"]["type"] == "base64"
    assert block["source"]["media_type"] == att.media_type
    assert _decoded(block["source"]["data"]) == media(name)


def check_gemini(att: Attachment, name: str, body: dict[str, Any]) -> None:
    parts = body["contents"][0]["parts"]
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    assert len(inline) == 1
    assert inline[0]["mimeType"] == att.media_type
    assert _decoded(inline[0]["data"]) == media(name)
    assert any(p.get("text") == "What is in this file?" for p in parts)


def check_bedrock(att: Attachment, name: str, body: dict[str, Any]) -> None:
    blocks = [b for b in _user_content(body) if "text" not in b]
    assert len(blocks) == 1
    if att.type == "image":
        image = blocks[0]["image"]
        assert image["format"] == {"image/png": "png", "image/jpeg": "jpeg"}[att.media_type or ""]
        assert _decoded(image["source"]["bytes"]) == media(name)
    else:
        document = blocks[0]["document"]
        assert document["format"] == "pdf"
        assert document["name"]  # Converse requires a document name
        assert _decoded(document["source"]["bytes"]) == media(name)


def check_ollama(att: Attachment, name: str, body: dict[str, Any]) -> None:
    user = next(m for m in body["messages"] if m["role"] == "user")
    assert user["content"] == "What is in this file?"
    assert [_decoded(i) for i in user["images"]] == [media(name)]


CHECKS: dict[str, Callable[[Attachment, str, dict[str, Any]], None]] = {
    "openai": lambda att, name, body: check_openai(att, name, openai_block(body)),
    "azure": lambda att, name, body: check_openai(att, name, openai_block(body)),
    "anthropic": check_anthropic,
    "gemini": check_gemini,
    "bedrock": check_bedrock,
    "ollama": check_ollama,
}

FILES = {"image.png": "image", "image.jpg": "image", "document.pdf": "pdf", "audio.wav": "audio",
         "audio.mp3": "audio"}
#: What each provider's API takes (and so what its adapter must encode rather than refuse).
SUPPORTED = {
    "openai": {"image", "pdf", "audio"},
    "azure": {"image"},
    "anthropic": {"image", "pdf"},
    "gemini": {"image", "pdf", "audio"},
    "bedrock": {"image", "pdf"},
    "ollama": {"image"},
}
_CAPABILITY = {"image": "image_input", "pdf": "pdf_input", "audio": "audio_input"}

CASES = [pytest.param(p, f, id=f"{p}-{f}") for p in CONFIGS for f in FILES]


@pytest.mark.parametrize(("provider", "name"), CASES)
def test_attachment_encoding(provider: str, name: str) -> None:
    att = resolve(str(MEDIA / name))
    assert att.type == FILES[name]
    adapter = _adapter_or_skip(provider)
    supported = att.type in SUPPORTED[provider]
    assert getattr(adapter.capabilities, _CAPABILITY[att.type]) is supported  # the matrix agrees
    if supported:
        CHECKS[provider](att, name, _body(provider, att))
    else:
        with pytest.raises(UnsupportedCapability) as info:
            _body(provider, att)
        assert info.value.provider == provider
        assert info.value.alternatives, "the error names providers that can take it"


def test_downloaded_image_reaches_the_body_intact(server: MediaServer) -> None:
    """The whole path: fetched through the SSRF guard from the loopback server, then encoded."""
    att = resolve(server.url("/media/image.jpg"), policy=loopback_policy())
    check_anthropic(att, "image.jpg", _body("anthropic", att))
    check_openai(att, "image.jpg", openai_block(_body("openai", att)))


@pytest.mark.parametrize(("provider", "expected"), [
    ("openai", {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}),
    ("anthropic", {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}),
])
def test_provider_fetched_urls_are_passed_through(provider: str, expected: dict[str, Any]) -> None:
    att = resolve("https://example.com/cat.png", fetch="provider")
    body = _body(provider, att)
    blocks = [b for b in _user_content(body) if b["type"] != "text"]
    assert blocks == [expected]


@pytest.mark.parametrize("provider", ["bedrock", "ollama"])
def test_providers_without_url_input_refuse_provider_fetched_urls(provider: str) -> None:
    att = resolve("https://example.com/cat.png", fetch="provider")
    with pytest.raises(UnsupportedCapability):
        _body(provider, att)


def _iso_image(brand: bytes) -> bytes:
    """An ISO base media image head (HEIC, AVIF): size, ``ftyp``, major brand, version, brands."""
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1" + brand + bytes(64)


@pytest.mark.parametrize(("provider", "brand"), [
    pytest.param(p, b, id=f"{p}-{b.decode()}") for p in ("openai", "azure", "anthropic", "bedrock")
    for b in (b"heic", b"avif")] + [pytest.param("gemini", b"avif", id="gemini-avif")])
def test_an_image_format_the_provider_does_not_take_is_refused_naming_those_it_does(provider: str,
                                                                                     brand: bytes) -> None:
    from cloverleaf._errors import InvalidRequestError

    att = resolve(_iso_image(brand))
    assert att.type == "image" and att.media_type == ("image/heic" if brand == b"heic" else "image/avif")
    with pytest.raises(InvalidRequestError, match=f"takes png, jpeg.* images, not '{att.media_type}'"):
        _body(provider, att)


def test_gemini_takes_heic_and_the_fake_takes_any_image() -> None:
    att = resolve(_iso_image(b"heic"))
    assert _body("gemini", att)["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/heic"
    fake = _adapter_or_skip("fake")
    req = ChatRequest("echo", [Message.user([Text("What is this?"), resolve(_iso_image(b"avif"))])])
    assert b"image/avif" in fake.build_chat(req, ProviderConfig("fake", "fake", "http://fake.invalid/v1")).body
