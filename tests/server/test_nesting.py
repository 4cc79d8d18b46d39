"""No 5xx from client input, whatever its shape (issue 12 item 1).

Hypothesis drives every endpoint that takes a JSON body, putting deep and wide structures
into every JSON-valued field of a valid request (and into the JSON-in-a-string field, tool
call arguments), with and without ``\\u`` escapes that need the surrogate check. The server
must answer below 500 every time, and a body (or an arguments string) nested more than
``MAX_DEPTH`` levels is a 400 ``json_too_deep``.

Deep documents are written as text (the standard ``json`` module cannot even serialise
them), into a placeholder of a valid body.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloverleaf._jsoncodec import MAX_DEPTH, JSONTooDeep, loads_bounded, nesting_exceeds

from .conftest import MASTER, Live

HOLE = "__HOLE__"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
ASSISTANT_CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
CHAT = {"model": "fake/echo", "messages": [{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                          ASSISTANT_CALL,
                                          {"role": "tool", "tool_call_id": "call_1", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": SCHEMA}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
        "stop": ["x"], "metadata": {"k": "v"}, "stream_options": {"include_usage": True}}
MESSAGES = {"model": "fake/echo", "max_tokens": 16, "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f",
                                                            "input": {"city": "Oslo"}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                       "content": [{"type": "text", "text": "ok"}]}]}],
            "tools": [{"name": "f", "input_schema": SCHEMA}], "metadata": {"user_id": "u"},
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
#: (method, path, a valid body); every JSON-valued field of each is a place to put a hostile value
ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/messages", MESSAGES),
    ("POST", "/v1/messages/count_tokens", MESSAGES),
    ("POST", "/v1/embeddings", {"model": "fake/embed", "input": ["a", "b"], "encoding_format": "float"}),
    ("POST", "/v1/images/generations", {"model": "fake/image", "prompt": "a cat", "n": 1}),
    ("POST", "/v1/responses", {"model": "fake/echo", "instructions": "be brief", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}],
        "tools": [{"type": "function", "name": "f", "parameters": SCHEMA}], "metadata": {"k": "v"},
        "text": {"format": {"type": "json_schema", "name": "r", "schema": SCHEMA}}}),
    ("POST", "/admin/models", {"name": "nest-entry", "identifier": "echo", "provider": "fake",
                               "additional_config": {"a": [1]}}),
    ("PATCH", "/admin/models/priced-copy", {"additional_config": {"a": [1]}, "is_public": True}),
    ("POST", "/admin/keys", {"name": "k", "allowed_models": ["fake/echo"], "metadata": {"team": "x"}}),
    ("POST", "/admin/traces", {"metadata": {"job": ["a"]}}),
]


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in ``value`` (the root excluded): each is a JSON-valued field."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*at, key))
        out.extend(_paths(child, (*at, key)))
    return out


def _with_hole(body: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = HOLE
    return copy


def _deep_text(kind: str, depth: int, leaf: str) -> str:
    if kind == "arrays":
        return "[" * depth + leaf + "]" * depth
    if kind == "objects":
        return '{"k":' * depth + leaf + "}" * depth
    opens = "".join('[{"k":' for _ in range(depth // 2))  # alternate: two levels per step
    return opens + leaf + "}]" * (depth // 2)


def _wide_text(kind: str, width: int, leaf: str) -> str:
    if kind == "arrays":
        return "[" + ",".join([leaf] * width) + "]"
    return "{" + ",".join(f'"k{i}":{leaf}' for i in range(width)) + "}"


def _depth(text: str) -> int:
    """The nesting depth of a valid JSON text, independently of the code under test."""
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


LEAVES = st.sampled_from(['"x"', "1", "null", '"\\ud83d\\ude00"', '"\\u00e9"', "[]", "{}", "true", "1e400",
                          "123456789012345678901234567890"])
HOSTILE = st.one_of(
    st.tuples(st.just("deep"), st.sampled_from(["arrays", "objects", "mixed"]),
              st.one_of(st.integers(1, 140), st.integers(120, 3000)), LEAVES),
    st.tuples(st.just("wide"), st.sampled_from(["arrays", "objects"]), st.integers(0, 3000), LEAVES),
)


@pytest.fixture(scope="module")
def client(secured_server: Live) -> httpx.Client:
    with secured_server.http(MASTER) as http:
        assert http.post("/admin/models", json={"name": "priced-copy", "identifier": "echo",
                                                "provider": "fake"}).status_code in (201, 409)
        yield http


@settings(max_examples=int(os.environ.get("CLOVERLEAF_NESTING_EXAMPLES", "250")), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), hostile=HOSTILE, as_string=st.booleans(), escaped=st.booleans())
def test_every_field_of_every_endpoint(client: httpx.Client, data: st.DataObject, hostile: tuple[Any, ...],
                                       as_string: bool, escaped: bool) -> None:
    method, path, body = data.draw(st.sampled_from(ENDPOINTS), label="endpoint")
    where = data.draw(st.sampled_from(_paths(body)), label="field")
    shape, kind, size, leaf = hostile
    value = _deep_text(kind, size, leaf) if shape == "deep" else _wide_text(kind, size, leaf)
    if as_string:  # JSON inside a string (what tool-call arguments are)
        value = json.dumps(value)
    text = json.dumps(_with_hole(body, where), ensure_ascii=escaped).replace(json.dumps(HOLE), value)
    response = client.request(method, path, content=text.encode(), headers={"content-type": "application/json"})
    assert response.status_code < 500, (method, path, where, shape, kind, size, response.text[:300])
    if _depth(text) > MAX_DEPTH:
        assert response.status_code == 400, (method, path, where, response.text[:300])
        assert "json_too_deep" in response.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["arrays", "objects", "mixed"]), depth=st.integers(1, 2000), leaf=LEAVES)
def test_tool_call_arguments_are_bounded_too(client: httpx.Client, kind: str, depth: int, leaf: str) -> None:
    """The arguments string is JSON parsed a second time: the same limit holds inside it."""
    arguments = _deep_text(kind, depth, leaf)
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":' + arguments + "}"}}]}
    body = {**CHAT, "messages": [CHAT["messages"][1], call, CHAT["messages"][3]]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code < 500, response.text[:300]
    if _depth(arguments) + 1 > MAX_DEPTH:
        assert response.status_code == 400 and response.json()["error"]["code"] == "json_too_deep"
        assert "messages[1].tool_calls[0].function.arguments" in response.json()["error"]["message"]


@given(kind=st.sampled_from(["arrays", "objects", "mixed"]), depth=st.integers(0, 400),
       prefix=st.text(alphabet='"\\[]{}ab', max_size=6))
def test_depth_check_agrees_with_a_reference_count(kind: str, depth: int, prefix: str) -> None:
    text = '{"s":' + json.dumps(prefix) + ',"v":' + _deep_text(kind, depth, '"[{"') + "}"
    assert nesting_exceeds(text) == (_depth(text) > MAX_DEPTH)
    if _depth(text) > MAX_DEPTH:
        with pytest.raises(JSONTooDeep):
            loads_bounded(text.encode())
    else:
        assert loads_bounded(text.encode())["s"] == prefix
