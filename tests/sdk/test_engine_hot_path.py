"""The engine's and the OpenAI adapter's per-call shortcuts give the same requests as the
long way: a retargeted request keeps every field, cached URLs and headers follow the config."""

from __future__ import annotations

from dataclasses import fields

from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._engine import Engine
from cloverleaf._types import ChatRequest, Message, ResponseFormat, Text, Tool


def _engine() -> Engine:
    return Engine(Settings(providers={"acme": ProviderSettings("acme", kind="openai", base_url="http://127.0.0.1:9/v1",
                                                              api_key_env="ACME_KEY", headers={"X-Team": "blue"})},
                           env={"ACME_KEY": "sk-acme-123456"}))


def test_a_request_retargeted_to_the_provider_model_keeps_every_other_field() -> None:
    engine = _engine()
    target = engine.resolve("acme/big-model")
    req = ChatRequest(model="acme/big-model", messages=[Message("user", [Text("hi")])],
                      tools=[Tool("lookup", "find a thing", {"type": "object", "properties": {}})],
                      response_format=ResponseFormat(type="json_object"), temperature=0.2, top_p=0.9, max_tokens=7,
                      stop=["END"], seed=3, user="u1", parallel_tool_calls=False, extra_body={"x": 1})
    out = Engine._for_target(target, req, stream=True)
    assert (out.model, out.stream) == ("big-model", True)
    assert (req.model, req.stream) == ("acme/big-model", False)          # the caller's request is untouched
    for f in fields(ChatRequest):
        if f.name not in ("model", "stream"):
            assert getattr(out, f.name) is getattr(req, f.name), f.name
    same = ChatRequest(model="big-model", messages=req.messages, stream=True)
    assert Engine._for_target(target, same, stream=True) is same         # nothing to change: no copy


def test_cached_url_and_headers_are_per_config_and_never_shared_between_requests() -> None:
    engine = _engine()
    target = engine.resolve("acme/big-model")
    req = ChatRequest(model="big-model", messages=[Message("user", [Text("hi")])])
    first = target.adapter.build_chat(req, target.cfg)
    first.headers["X-Mutated"] = "yes"                                    # e.g. a transport adding a header
    second = target.adapter.build_chat(req, target.cfg)
    assert second.url == "http://127.0.0.1:9/v1/chat/completions"
    assert second.headers == {"Content-Type": "application/json", "Accept": "application/json",
                              "Authorization": "Bearer sk-acme-123456", "X-Team": "blue"}
    other = engine.resolve("acme/big-model", api_key="sk-other-654321", base_url="http://127.0.0.1:8/v2")
    third = other.adapter.build_chat(req, other.cfg)
    assert third.url == "http://127.0.0.1:8/v2/chat/completions"
    assert third.headers["Authorization"] == "Bearer sk-other-654321"


def test_a_traced_copy_of_a_target_keeps_every_other_field_and_its_requests_carry_the_headers() -> None:
    """``Target.traced`` (a gateway attempt's copy, built field by field because
    ``dataclasses.replace`` costs ten times as much) must copy every field, a new one included."""
    from cloverleaf._resolve import Target

    engine = _engine()
    target = engine.resolve("acme/big-model")
    for f in fields(Target):   # every field set, so a field the copy forgot would show
        if getattr(target, f.name) is None:
            setattr(target, f.name, object())
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    out = target.traced(headers)
    assert out is not target and out.trace_headers is headers
    for f in fields(Target):
        if f.name != "trace_headers":
            assert getattr(out, f.name) is getattr(target, f.name), f.name
    engine = _engine()
    plain = engine.resolve("acme/big-model")
    req = ChatRequest(model="big-model", messages=[Message("user", [Text("hi")])])
    built = engine._build_chat(plain.traced(headers), req)
    assert built.headers["traceparent"] == headers["traceparent"] and built.headers["X-Team"] == "blue"
    assert "traceparent" not in engine._build_chat(plain, req).headers        # the shared target's requests: none
