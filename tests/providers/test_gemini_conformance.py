"""The Gemini conformance cases hold against the adapter: each request builds to what the
recording sent (same endpoint, same contents) and the recorded answer meets ``expect``."""

from __future__ import annotations

import pytest

from cloverleaf._capabilities import Capability
from cloverleaf._types import ChatRequest, EmbeddingRequest, ImageRequest, Reasoning
from tests.conformance.case import Case
from tests.conformance.cases_gemini import CASES
from tests.providers.test_gemini_support import API, adapter, config, decode, normalise_contents
from tests.wire import cassette


def test_every_claimed_capability_has_a_case():
    claimed = {cap for cap in Capability if adapter().default_capabilities.supports(cap)}
    assert claimed == {case.capability for case in CASES} == set(Capability)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case):
    it = cassette(case.cassette)[case.interaction]
    cfg = config(case.base_url or API, **case.extra)
    req = case.request
    if isinstance(req, EmbeddingRequest):
        http = adapter().build_embed(req, cfg)
        assert http.url == it.uri and http.json() == it.request_json
        out = adapter().parse_embed(it.response, req)
        assert len(out.vectors) == case.expect["vectors"]
        return
    if isinstance(req, ImageRequest):
        http = adapter().build_image(req, cfg)
        assert http.url == it.uri and http.json()["contents"] == it.request_json["contents"]
        assert len(adapter().parse_image(it.response, req).images) == case.expect["images"]
        return
    assert isinstance(req, ChatRequest)
    http = adapter().build_chat(req, cfg)
    assert http.url == it.uri
    sent, recorded = http.json(), it.request_json
    assert normalise_contents(sent["contents"]) == normalise_contents(_snake_to_camel(recorded["contents"]))
    if "systemInstruction" in recorded:
        assert sent["systemInstruction"]["parts"] == recorded["systemInstruction"]["parts"]
    response = decode(req, [it.response.body])[1] if req.stream else adapter().parse_chat(it.response, req)
    expect = case.expect
    if "content_contains" in expect:
        assert expect["content_contains"] in response.content
    if "tool_names" in expect:
        assert [c.name for c in response.tool_calls] == expect["tool_names"]
    if "finish_reason" in expect:
        assert response.finish_reason == expect["finish_reason"]
    if "input_tokens" in expect:
        assert response.usage.input_tokens == expect["input_tokens"]
    if "output_tokens" in expect:
        assert response.usage.output_tokens == expect["output_tokens"]
    if expect.get("reasoning"):
        assert any(isinstance(p, Reasoning) and p.text for p in response.parts)


def _snake_to_camel(value):
    """Vertex recordings spell some fields in snake_case (``file_uri``); the API takes both."""
    if isinstance(value, list):
        return [_snake_to_camel(v) for v in value]
    if isinstance(value, dict):
        return {_camel(k): _snake_to_camel(v) for k, v in value.items()}
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)
