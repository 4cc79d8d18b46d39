"""The fake provider keeps no unbounded state and refuses schemas it cannot honour with a
400 (issue 12 item 11): a long ``cloverleaf serve`` over it stays flat, and no tool schema
is a 500, a hang or a runaway allocation."""

from __future__ import annotations

import httpx
import pytest

from cloverleaf import Client, InvalidRequestError
from cloverleaf.providers.fake.adapter import BASE_URL, FakeUpstream

BODY = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}'


def test_the_request_record_is_a_bounded_ring() -> None:
    upstream = FakeUpstream(record_limit=5)
    with httpx.Client(transport=upstream) as http:
        ids = [http.post(f"{BASE_URL}/chat/completions", content=BODY).headers["x-request-id"] for _ in range(12)]
    assert len(upstream.requests) == 5 and upstream.served == 12
    assert ids[-1] == "req_fake_12"  # numbering counts every request, not the record
    assert FakeUpstream().requests.maxlen == FakeUpstream.RECORD_LIMIT


def test_per_model_fault_counters_are_bounded() -> None:
    upstream = FakeUpstream()
    upstream.COUNTED_MODELS = 10
    with httpx.Client(transport=upstream) as http:
        for i in range(40):
            body = BODY.replace(b'"echo"', f'"m{i}+fail-500x1"'.encode())
            assert http.post(f"{BASE_URL}/chat/completions", content=body).status_code == 500
    assert len(upstream._calls_by_model) == 10


@pytest.mark.parametrize("parameters", [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10**400}}, "required": ["n"]},
    {"type": "object", "properties": {"n": {"type": "number", "maximum": -(10**400)}}, "required": ["n"]},
    {"type": "object", "properties": {"a": {"type": "array", "minItems": 10**12}}, "required": ["a"]},
    {"type": "object", "properties": {"s": {"type": "string", "minLength": 10**9}}, "required": ["s"]},
    {"type": "object", "minProperties": 10**9},
    {"type": "object", "properties": {"a": {"type": "array", "minItems": "many"}}, "required": ["a"]},
    {"type": "object", "properties": {"self": {"$ref": "#"}}, "required": ["self"]},
])
def test_schemas_the_fake_cannot_honour_are_400s(parameters: dict) -> None:
    with Client(env={}, max_retries=0) as c:
        tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
        with pytest.raises(InvalidRequestError) as err:
            c.chat("fake/x", "call it", tools=[tool], tool_choice="f")
    assert err.value.status == 400
