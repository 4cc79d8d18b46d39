"""One conformance suite over every adapter.

For each case contributed by ``cases_<provider>.py``: the provider claims the capability;
the adapter builds the request without error; the recorded response parses (streams are
decoded from several random splits and must agree); and the capability's invariant holds
(text for text, complete tool calls for tools, valid JSON for structured output, the
attachment's bytes in the request body for inputs, vectors, images, reasoning). Then the
matrix is checked for honesty: every "yes" has a case, every "no" raises
UnsupportedCapability naming alternatives before any network call.
"""

from __future__ import annotations

import base64
import importlib
import json
import pkgutil
import random
from dataclasses import replace
from pathlib import Path

import pytest

from cloverleaf._capabilities import Capability
from cloverleaf._config import Settings
from cloverleaf._engine import Engine, Target
from cloverleaf._errors import UnsupportedCapability
from cloverleaf._structured import parse_output
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    ImageRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Tool,
)
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import ROWS, capabilities_of, get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.conformance.case import Case
from tests.wire import FIXTURES, cassette

HERE = Path(__file__).parent


def _all_cases() -> list[Case]:
    cases: list[Case] = []
    for mod in pkgutil.iter_modules([str(HERE)]):
        if mod.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"tests.conformance.{mod.name}").CASES)
    return cases


CASES = _all_cases()
CHAT_CAPS = {Capability.TEXT, Capability.TOOLS, Capability.STRUCTURED, Capability.STREAMING, Capability.STREAM_TOOLS,
             Capability.STREAM_STRUCTURED, Capability.IMAGE_INPUT, Capability.PDF_INPUT, Capability.AUDIO_INPUT,
             Capability.REASONING}
INPUT_KIND = {Capability.IMAGE_INPUT: "image", Capability.PDF_INPUT: "pdf", Capability.AUDIO_INPUT: "audio"}
BEDROCK_CREDS = {"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE",
                 "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


def _config(case: Case) -> ProviderConfig:
    spec = get_spec(case.provider)
    extra = {**spec.extra, **case.extra}
    if spec.kind == "bedrock":
        extra = {**BEDROCK_CREDS, **extra}
    return ProviderConfig(spec.name, spec.kind, case.base_url or spec.base_url or "https://example.invalid",
                          api_key="test-key", extra=extra)


def _decode(adapter, req: ChatRequest, body: bytes, rng: random.Random) -> ChatResponse:
    """Decode a recorded stream split at random points; return the assembled response."""
    cuts = sorted(rng.sample(range(1, max(2, len(body))), k=min(8, max(0, len(body) - 1))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    dec = adapter.stream_decoder(req)
    acc = StreamAccumulator(req.model, adapter.name)
    events = []
    for piece in pieces:
        events.extend(dec.feed(piece))
    events.extend(dec.close())
    assert [e.type for e in events].count("done") == 1, "a stream decoder must emit exactly one done event"
    for e in events:
        acc.add(e)
    return acc.response()


def _check_expect(resp, expect: dict) -> None:
    if "content_contains" in expect:
        assert expect["content_contains"] in resp.content
    if "tool_names" in expect:
        assert [c.name for c in resp.tool_calls] == expect["tool_names"]
    if "finish_reason" in expect:
        assert resp.finish_reason == expect["finish_reason"]
    if "input_tokens" in expect:
        assert resp.usage.input_tokens == expect["input_tokens"]
    if "output_tokens" in expect:
        assert resp.usage.output_tokens == expect["output_tokens"]
    if "reasoning_tokens" in expect:
        assert resp.usage.reasoning_tokens == expect["reasoning_tokens"]
    if expect.get("reasoning"):
        assert resp.reasoning or resp.usage.reasoning_tokens
    if "vectors" in expect:
        assert len(resp.vectors) == expect["vectors"]
    if "images" in expect:
        assert len(resp.images) == expect["images"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case) -> None:
    spec = get_spec(case.provider)
    adapter = get_adapter(spec)
    assert adapter.capabilities.supports(case.capability), (
        f"{case.provider} has a case for {case.capability.value} but does not claim it")
    if case.synthetic is None:
        assert not case.cassette.startswith("../synthetic"), "a synthetic fixture must say why (synthetic=...)"
    cfg = _config(case)
    interactions = cassette(case.cassette)
    inter = interactions[case.interaction]
    resp = inter.response
    assert resp.status < 400, "conformance cases prove successes; errors are tested per provider"
    rng = random.Random(case.id)
    req = case.request
    if isinstance(req, EmbeddingRequest):
        assert case.capability is Capability.EMBEDDINGS
        built = adapter.build_embed(req, cfg)
        out = adapter.parse_embed([i.response for i in interactions] if isinstance(built, list) else resp, req)
        assert out.vectors and all(isinstance(x, float) for v in out.vectors for x in v[:5])
        assert len(out.vectors) == (len(req.inputs) if not isinstance(built, list) else len(out.vectors))
        _check_expect(out, case.expect)
        return
    if isinstance(req, ImageRequest):
        assert case.capability is Capability.IMAGE_GENERATION
        adapter.build_image(req, cfg)
        out = adapter.parse_image(resp, req)
        assert out.images and all(img.data or img.url for img in out.images)
        _check_expect(out, case.expect)
        return
    assert case.capability in CHAT_CAPS
    engine_target = Target(case.provider, spec, cfg, req.model, adapter)
    Engine(Settings(env={})).check(engine_target, req)  # the engine's own pre-flight check accepts it
    http = adapter.build_chat(req, cfg)
    assert http.method == "POST" and http.url
    if req.stream:
        results = [_decode(adapter, req, resp.body, random.Random(f"{case.id}-{n}")) for n in range(3)]
        whole = _decode(adapter, req, resp.body, rng)
        for r in results:
            assert r.content == whole.content and [c.name for c in r.tool_calls] == [c.name for c in whole.tool_calls]
        out = whole
    else:
        out = adapter.parse_chat(resp, req)
    cap = case.capability
    if cap in (Capability.TEXT, Capability.STREAMING):
        assert out.content.strip() or out.tool_calls
    if cap in (Capability.TOOLS, Capability.STREAM_TOOLS):
        assert req.tools, "a tools case must declare tools"
        assert out.tool_calls and all(c.name for c in out.tool_calls)
        assert all("_raw" not in c.arguments for c in out.tool_calls)
        assert out.finish_reason == "tool_calls"
    if cap in (Capability.STRUCTURED, Capability.STREAM_STRUCTURED):
        assert req.response_format is not None
        parsed = parse_output(out, req.response_format if req.response_format.model is None
                              else replace(req.response_format, model=None))
        assert isinstance(parsed, (dict, list))
    if cap in INPUT_KIND:
        atts = [p for m in req.messages for p in m.parts if isinstance(p, Attachment)]
        assert atts and all(a.type == INPUT_KIND[cap] for a in atts)
        body = http.body or b""
        for a in atts:
            if a.data is not None:
                b64 = base64.b64encode(a.data)
                assert b64 in body or base64.urlsafe_b64encode(a.data).rstrip(b"=") in body or a.data in body, (
                    "the attachment's bytes must be in the request body")
            else:
                assert a.url and a.url.encode() in body
        assert out.content.strip() or out.tool_calls
    if cap is Capability.REASONING:
        assert out.reasoning or out.usage.reasoning_tokens or any(
            getattr(p, "redacted", None) for p in out.parts)
    _check_expect(out, case.expect)


# --------------------------------------------------------------------------- matrix honesty

#: Rows whose capability flags describe a service we have no recording of; their wire format
#: is the "openai" kind, proven by the openai/groq/mistral/openrouter cases.
UNRECORDED_OPENAI_ROWS = {"together", "deepseek", "fireworks", "perplexity", "xai", "lmstudio", "vllm", "localai",
                          "chat_completions"}
NO_HTTP = {"local", "simple"}


@pytest.mark.parametrize("row", [r.name for r in ROWS if r.name not in NO_HTTP], ids=str)
def test_every_claimed_capability_has_a_case(row: str) -> None:
    """(local/simple compute embeddings in-process, with no wire format to replay: they are
    tested for real in tests/providers/test_local_embeddings.py.)"""
    spec = get_spec(row)
    caps = capabilities_of(spec)
    covered = {c.capability for c in CASES if c.provider == row}
    if row in UNRECORDED_OPENAI_ROWS:
        covered = {c.capability for c in CASES if get_spec(c.provider).kind == "openai"}
    missing = [cap.value for cap in Capability if caps.supports(cap) and cap not in covered]
    assert not missing, f"{row} claims {missing} without a conformance case"


def _request_needing(cap: Capability) -> ChatRequest | EmbeddingRequest | ImageRequest:
    msgs = [Message.user("hi")]
    tool = Tool("f", "a tool", {"type": "object", "properties": {}})
    fmt = ResponseFormat(schema={"type": "object", "properties": {}})
    att = {"image": (b"\x89PNG\r\n\x1a\n", "image/png"), "pdf": (b"%PDF-1.4", "application/pdf"),
           "audio": (b"RIFF\x00\x00\x00\x00WAVE", "audio/wav")}
    if cap is Capability.EMBEDDINGS:
        return EmbeddingRequest("m", ["x"])
    if cap is Capability.IMAGE_GENERATION:
        return ImageRequest("m", "a cat")
    kw: dict = {}
    if cap in (Capability.STREAMING, Capability.STREAM_TOOLS, Capability.STREAM_STRUCTURED):
        kw["stream"] = True
    if cap in (Capability.TOOLS, Capability.STREAM_TOOLS):
        kw["tools"] = [tool]
    if cap in (Capability.STRUCTURED, Capability.STREAM_STRUCTURED):
        kw["response_format"] = fmt
    if cap is Capability.REASONING:
        kw["reasoning"] = ReasoningConfig(effort="low")
    if cap in INPUT_KIND:
        data, mt = att[INPUT_KIND[cap]]
        msgs = [Message.user([Attachment(type=INPUT_KIND[cap], data=data, media_type=mt)])]
    return ChatRequest("m", msgs, **kw)


def _missing() -> list[tuple[str, Capability]]:
    out = []
    for row in ROWS:
        caps = capabilities_of(row)
        out.extend((row.name, cap) for cap in Capability if not caps.supports(cap))
    return out


class _NoNetwork:
    def handle_request(self, request):  # pragma: no cover - reaching here is the failure
        raise AssertionError(f"network call attempted: {request.url}")


@pytest.mark.parametrize("row, cap", _missing(), ids=lambda v: v if isinstance(v, str) else v.name.lower())
def test_every_missing_capability_raises_before_io(row: str, cap: Capability) -> None:
    env = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k", "AZURE_OPENAI_API_KEY": "k",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
           **{name: "k" for r in ROWS for name in r.key_env}}
    engine = Engine(Settings(env=env))
    engine.transport.mount("all://", _NoNetwork())
    target = engine.resolve(f"{row}/some-model", base_url="http://127.0.0.1:9/v1")
    req = _request_needing(cap)
    with pytest.raises(UnsupportedCapability) as err:
        if isinstance(req, EmbeddingRequest):
            engine.embed(target, req)
        elif isinstance(req, ImageRequest):
            engine.image(target, req)
        elif req.stream:
            list(engine.stream(target, req))
        else:
            engine.chat(target, req)
    e = err.value
    assert e.provider == row and e.operation
    # the error names the first capability the request needs that the row lacks (an
    # embeddings-only row refuses any chat as "text"), and providers that have it
    refused = {c.value: c for c in Capability}.get(e.operation)
    assert refused is not None and not capabilities_of(get_spec(row)).supports(refused)
    assert refused is cap or refused is Capability.TEXT
    assert e.alternatives and row not in e.alternatives, "the error must name providers that can"
    assert all(capabilities_of(get_spec(a)).supports(refused) for a in e.alternatives)


def test_fixture_files_used_by_cases_exist_and_are_licensed() -> None:
    for case in CASES:
        path = (FIXTURES / case.cassette).resolve()
        assert path.is_file(), case.cassette
        if case.synthetic is None:
            source = path.relative_to(FIXTURES.resolve()).parts[0]
            assert (FIXTURES / source / "LICENSE").is_file()


def test_matrix_rows_are_json_serialisable_for_the_admin_api() -> None:
    from cloverleaf._matrix import rows

    json.dumps(rows())
