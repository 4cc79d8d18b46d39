"""Shared bits of the Gemini adapter tests: the adapter, configs, recording paths, replay helpers."""

from __future__ import annotations

import base64
from typing import Any

from cloverleaf._types import ChatRequest, ChatResponse, StreamEvent
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.gemini.adapter import GeminiAdapter
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator

GOOGLE = "pydantic-ai/tests/models/cassettes/test_google/"
GOOGLE_NEW = "pydantic-ai/tests/models/google/cassettes/"
EMBED = "pydantic-ai/tests/cassettes/test_embeddings/"
SYNTHETIC = "../synthetic/gemini/"
API = "https://generativelanguage.googleapis.com"
VERTEX = "https://aiplatform.googleapis.com/v1beta1/projects/pydantic-ai/locations/global/publishers/google"
KEY = "AIza-test-secret-key"


def adapter() -> GeminiAdapter:
    a = get_adapter(get_spec("gemini"))
    assert isinstance(a, GeminiAdapter)
    return a


def config(base_url: str = API, **extra: Any) -> ProviderConfig:
    return ProviderConfig(name="gemini", kind="gemini", base_url=base_url, api_key=KEY, extra=extra)


def decode(req: ChatRequest, chunks: list[bytes]) -> tuple[list[StreamEvent], ChatResponse]:
    """Every event the decoder yields for ``chunks`` and the response they assemble into."""
    decoder = adapter().stream_decoder(req)
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    acc = StreamAccumulator(req.model, adapter().name)
    for event in events:
        acc.add(event)
    return events, acc.response()


def signature_bytes(sig: str) -> bytes:
    """Base64 in either alphabet (Gemini answers in the standard one, the recorded SDK sent
    URL-safe) as bytes, so both spellings of the same value compare equal."""
    padded = sig + "=" * (-len(sig) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))


def normalise_contents(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contents with what legitimately differs between clients made comparable: call ids are
    renumbered in order of appearance, signatures and inline data compared as bytes, and a function
    response's value taken from whatever key the client used (``return_value``/``output``)."""
    ids: dict[str, str] = {}

    def call_id(value: str | None) -> str | None:
        if value is None:
            return None
        return ids.setdefault(value, f"id{len(ids)}")

    out = []
    for content in contents:
        parts = []
        for part in content["parts"]:
            part = dict(part)
            if "thoughtSignature" in part:
                part["thoughtSignature"] = signature_bytes(part["thoughtSignature"])
            if "inlineData" in part:
                part["inlineData"] = {**part["inlineData"], "data": signature_bytes(part["inlineData"]["data"])}
            if "functionCall" in part:
                fc = dict(part["functionCall"])
                fc["id"] = call_id(fc.get("id"))
                part["functionCall"] = fc
            if "functionResponse" in part:
                fr = dict(part["functionResponse"])
                fr["id"] = call_id(fr.get("id"))
                fr["response"] = next(iter(fr["response"].values()))
                part["functionResponse"] = fr
            parts.append(part)
        out.append({"role": content["role"], "parts": parts})
    return out
