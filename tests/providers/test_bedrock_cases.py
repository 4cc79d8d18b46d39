"""The Bedrock conformance cases hold against the adapter (until the shared runner covers them)."""

from __future__ import annotations

import pytest

from cloverleaf._types import ChatRequest, EmbeddingRequest
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.conformance.case import Case
from tests.conformance.cases_bedrock import CASES
from tests.wire import cassette


def test_every_claimed_capability_has_a_case() -> None:
    caps = get_adapter(get_spec("bedrock")).capabilities.as_row()
    assert {cap for cap, on in caps.items() if on} == {case.capability for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case) -> None:
    adapter = get_adapter(get_spec(case.provider))
    cfg = ProviderConfig(case.provider, "bedrock", case.base_url or "", extra=case.extra)
    inter = cassette(case.cassette)[case.interaction]
    req, expect = case.request, case.expect
    if isinstance(req, EmbeddingRequest):
        assert adapter.build_embed(req, cfg).url == inter.uri  # type: ignore[union-attr]
        emb = adapter.parse_embed(inter.response, req)
        assert (len(emb.vectors), emb.usage.input_tokens) == (expect["vectors"], expect["input_tokens"])
        return
    if not isinstance(req, ChatRequest):
        assert adapter.build_image(req, cfg).url == inter.uri  # type: ignore[union-attr]
        assert len(adapter.parse_image(inter.response, req).images) == expect["images"]
        return
    assert adapter.build_chat(req, cfg).url == inter.uri
    if req.stream:
        acc = StreamAccumulator(req.model, adapter.name)
        decoder = adapter.stream_decoder(req)
        for ev in decoder.feed(inter.response.body) + decoder.close():
            acc.add(ev)
        out = acc.response()
    else:
        out = adapter.parse_chat(inter.response, req)
    assert expect.get("content_contains", "") in out.text
    assert [c.name for c in out.tool_calls] == expect.get("tool_names", [])
    assert out.finish_reason == expect["finish_reason"]
    assert (out.usage.input_tokens, out.usage.output_tokens) == (expect["input_tokens"], expect["output_tokens"])
    assert bool(out.reasoning) == expect.get("reasoning", bool(out.reasoning))
