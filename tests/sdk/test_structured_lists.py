"""``response_format=list[Model]`` (top-level arrays) for chat and stream, and a PartialJSON whose
scanning work is linear in the output, however finely it is split."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from cloverleaf._capabilities import Capability
from cloverleaf._client import AsyncClient, Client
from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import ConfigError
from cloverleaf._structured import PartialJSON, complete_partial_json, parse_output, to_response_format
from cloverleaf._types import ChatRequest, ChatResponse, Message, Text
from cloverleaf.providers.registry import ROWS, capabilities_of


class City(BaseModel):
    name: str
    population: int


def test_list_of_models_is_an_object_on_the_wire_and_a_list_in_parsed() -> None:
    fmt = to_response_format(list[City])
    assert fmt is not None and fmt.wrapped_key == "items"
    assert fmt.schema is not None and fmt.schema["type"] == "object" and fmt.schema["required"] == ["items"]
    assert fmt.schema["properties"]["items"]["type"] == "array" and "$defs" in fmt.schema
    wrapped = ChatResponse([Text('{"items": [{"name": "Oslo", "population": 700000}]}')], "m", "p")
    bare = ChatResponse([Text('[{"name": "Oslo", "population": 700000}]')], "m", "p")
    for resp in (wrapped, bare):  # a provider that answers with the bare array is accepted too
        assert parse_output(resp, fmt) == [City(name="Oslo", population=700000)]
    schema_fmt = to_response_format({"type": "array", "items": {"type": "integer"}})
    assert schema_fmt is not None and parse_output(ChatResponse([Text('{"items": [1, 2]}')], "m", "p"), schema_fmt) == [1, 2]
    openai_fmt = to_response_format({"type": "json_schema", "json_schema": {"name": "nums", "schema": {
        "type": "array", "items": {"type": "integer"}}}})
    assert openai_fmt is not None and openai_fmt.wrapped_key == "items"


def _schemas_with_items_property(node: Any) -> int:
    if isinstance(node, dict):
        here = int(isinstance(node.get("properties"), dict) and "items" in node["properties"]
                   and node.get("type") in ("object", "OBJECT", None))
        return here + sum(_schemas_with_items_property(v) for v in node.values())
    if isinstance(node, list):
        return sum(_schemas_with_items_property(v) for v in node)
    return 0


@pytest.mark.parametrize("row", [r.name for r in ROWS if capabilities_of(r).supports(Capability.STRUCTURED)])
def test_every_provider_with_structured_output_sends_a_list_as_an_object_root(row: str, tmp_path: Path) -> None:
    login = tmp_path / "adc.json"   # Vertex AI: a gcloud login (building a request fetches no token)
    login.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                                 "refresh_token": "r"}))
    env = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k", "GROQ_API_KEY": "k",
           "TOGETHER_API_KEY": "k", "MISTRAL_API_KEY": "k", "FIREWORKS_API_KEY": "k", "OPENROUTER_API_KEY": "k",
           "PERPLEXITY_API_KEY": "k", "XAI_API_KEY": "k", "AZURE_OPENAI_API_KEY": "k", "AWS_REGION": "us-east-1",
           "AWS_BEARER_TOKEN_BEDROCK": "k", "GOOGLE_APPLICATION_CREDENTIALS": str(login),
           "GOOGLE_CLOUD_PROJECT": "proj-123"}
    engine = Engine(Settings.load(env=env))
    target = engine.resolve(f"{row}/m", base_url="http://127.0.0.1:9/v1" if row in ("azure", "chat_completions")
                            else None)
    for stream in (False, True) if target.adapter.capabilities.stream_structured else (False,):
        req = ChatRequest(model="m", messages=[Message.user("cities")], stream=stream,
                          response_format=to_response_format(list[City]))
        body = engine._build_chat(target, req).json()
        assert _schemas_with_items_property(body) >= 1, body


def test_chat_and_stream_with_list_of_models_on_the_fake() -> None:
    with Client(Settings.load(env={})) as client:
        items = [{"name": f"C{i}", "population": i} for i in range(4)]
        client.fake.script.reply(text=json.dumps({"items": items}))
        assert client.chat("fake/x", "cities", response_format=list[City]).parsed == [City(**c) for c in items]
        client.fake.script.reply(text=json.dumps({"items": items}))
        s = client.stream("fake/x", "cities", response_format=list[City])
        got, done_when_yielded = [], []
        for city in s.items():
            got.append(city)
            done_when_yielded.append(s.response is not None)
        assert got == [City(**c) for c in items] and done_when_yielded[0] is False
        assert s.response is not None and s.response.parsed == got
        client.fake.script.reply(text=json.dumps({"items": items}))
        partials = list(client.stream("fake/x", "cities", response_format=list[City]).partial_objects())
        assert all(isinstance(p, list) for p in partials) and partials[-1] == items


async def test_async_items_of_a_list_of_models() -> None:
    async with AsyncClient(env={}) as client:
        client.fake.script.reply(text=json.dumps({"items": [{"name": "A", "population": 1}]}))
        assert [c.name async for c in client.stream("fake/x", "one", response_format=list[City]).items()] == ["A"]


class AliasedCity(BaseModel):
    name: str = Field(alias="cityName")
    population: int


class AliasedCities(BaseModel):
    cities: list[City] = Field(alias="Cities")


def test_items_yields_every_element_validated_when_fields_have_aliases() -> None:
    """The last element was re-validated from the parsed object dumped by field name, so an
    item field alias made it fail; an aliased list field was looked up by name, so elements
    came as dicts and the last one not at all."""
    cities = [{"cityName": "Oslo", "population": 1}, {"cityName": "Rome", "population": 2}]
    with Client(Settings.load(env={})) as client:
        client.fake.script.reply(text=json.dumps({"items": cities}))
        s = client.stream("fake/x", "cities", response_format=list[AliasedCity])
        got = list(s.items())
        assert got == [AliasedCity.model_validate(c) for c in cities]
        assert s.response is not None and s.response.parsed == got
        held = [{"name": "Oslo", "population": 1}, {"name": "Rome", "population": 2}]
        client.fake.script.reply(text=json.dumps({"Cities": held}))
        s = client.stream("fake/x", "cities", response_format=AliasedCities)
        items = list(s.items())
        assert items == [City(**c) for c in held] and all(isinstance(i, City) for i in items)
        assert s.response is not None and s.response.parsed.cities == items


async def test_async_items_with_aliases() -> None:
    async with AsyncClient(env={}) as client:
        client.fake.script.reply(text=json.dumps({"Cities": [{"name": "A", "population": 1},
                                                             {"name": "B", "population": 2}]}))
        s = client.stream("fake/x", "two", response_format=AliasedCities)
        assert [c async for c in s.items()] == [City(name="A", population=1), City(name="B", population=2)]


@dataclasses.dataclass
class Town:
    name: str
    population: int


@dataclasses.dataclass
class Towns:
    towns: list[Town]


class TownDict(TypedDict):
    name: str
    population: int


def test_a_dataclass_or_typeddict_is_a_response_format_like_a_pydantic_model() -> None:
    """_options promised dataclasses and list[Town] worked, yet a bare dataclass was refused."""
    for tp in (Town, TownDict):
        fmt = to_response_format(tp)
        assert fmt is not None and fmt.schema is not None and fmt.model is tp and fmt.wrapped_key is None
        assert fmt.schema["required"] == ["name", "population"] and fmt.schema["additionalProperties"] is False
    with Client(Settings.load(env={})) as client:
        client.fake.script.reply(text=json.dumps({"name": "Oslo", "population": 7}))
        assert client.chat("fake/x", "a town", response_format=Town).parsed == Town("Oslo", 7)
        client.fake.script.reply(text=json.dumps({"name": "Oslo", "population": 7}))
        assert client.chat("fake/x", "a town", response_format=TownDict).parsed == {"name": "Oslo", "population": 7}
        client.fake.script.reply(text=json.dumps({"name": "Oslo", "population": "many"}))
        from cloverleaf import StructuredOutputError

        with pytest.raises(StructuredOutputError, match="does not match Town: population"):
            client.chat("fake/x", "a town", response_format=Town)
        towns = [{"name": "A", "population": 1}, {"name": "B", "population": 2}]
        client.fake.script.reply(text=json.dumps({"towns": towns}))
        s = client.stream("fake/x", "towns", response_format=Towns)
        assert list(s.items()) == [Town("A", 1), Town("B", 2)]
        assert s.response is not None and s.response.parsed == Towns([Town("A", 1), Town("B", 2)])
    class Older(typing.TypedDict):
        name: str

    try:  # pydantic takes typing.TypedDict from Python 3.12 on; before, a ConfigError says what to use
        assert to_response_format(Older) is not None
    except ConfigError as err:
        assert "typing_extensions.TypedDict" in str(err)


def _document(size: int) -> str:
    rows, text = [], ""
    while len(text) < size:
        rows.append({"name": f'city "{len(rows)}" \u00e9', "population": len(rows) * 1000, "ok": True,
                     "tags": ["a", None, 1.5]})
        text = json.dumps({"items": rows})
    return text


def test_partial_json_scans_each_character_once_however_the_text_is_split() -> None:
    """The issue's case: 20.8 KB in 5-character deltas (each feed re-scanned everything: quadratic)."""
    text = _document(20_800)
    for step in (1, 5, 64, len(text)):
        partial = PartialJSON()
        last = None
        for i in range(0, len(text), step):
            last = partial.feed(text[i:i + step])
        assert last == json.loads(text)
        assert partial.scanned == len(text), (step, partial.scanned)  # linear: each character once


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=15), st.lists(st.integers(1, 7), min_size=1, max_size=50))
def test_incremental_feeds_agree_with_parsing_each_prefix_whole(value: Any, steps: list[int]) -> None:
    text = json.dumps(value, ensure_ascii=bool(steps[0] % 2))
    partial, at, k = PartialJSON(), 0, 0
    while at < len(text):
        nxt = min(len(text), at + steps[k % len(steps)])
        got = partial.feed(text[at:nxt])
        assert got == complete_partial_json(text[:nxt])
        at, k = nxt, k + 1
    assert partial.feed("") == value and partial.scanned == len(text)


def test_a_unicode_escape_cut_in_the_middle_keeps_the_string_so_far() -> None:
    assert complete_partial_json('{"a": "caf\\u00') == {"a": "caf"}
    assert complete_partial_json('{"a": "x\\\\u00') == {"a": "x\\u00"}  # an escaped backslash, then text


def test_half_a_surrogate_pair_is_never_in_a_partial_value() -> None:
    text = '{"a": "hi \\ud83d\\ude00!"}'
    partial = PartialJSON()
    for ch in text:  # every split point, one character at a time
        value = partial.feed(ch)
        if isinstance(value, dict) and "a" in value:
            value["a"].encode("utf-8")  # a lone surrogate cannot be encoded
    assert complete_partial_json('{"a": "hi \\ud83d') == {"a": "hi "}
    assert complete_partial_json('{"a": "hi \\ud83d\\ude') == {"a": "hi "}
    assert complete_partial_json('{"a": "hi \\ud83d\\') == {"a": "hi "}
    assert complete_partial_json('{"a": "hi \\ud83d\\ude00') == {"a": "hi \U0001f600"}
    assert complete_partial_json('{"a": "x\\\\ud83d') == {"a": "x\\ud83d"}  # an escaped backslash, then text


def test_a_user_array_schema_keeps_its_optional_item_fields() -> None:
    item = {"type": "object", "properties": {"name": {"type": "string"}, "nickname": {"type": "string"}},
            "required": ["name"]}
    for value in ({"type": "array", "items": item},
                  {"type": "json_schema", "json_schema": {"name": "people", "schema": {"type": "array", "items": item}}}):
        fmt = to_response_format(value)
        assert fmt is not None and fmt.schema is not None
        assert fmt.schema["properties"]["items"]["items"]["required"] == ["name"], "as the object path: as given"
    assert item["required"] == ["name"]
    with Client(env={}) as c:  # the adapter decides strictness: optional fields cannot be strict, so it says so
        c.chat("fake/chat", "x", response_format={"type": "array", "items": item})
        sent = c.fake.requests[-1].json["response_format"]["json_schema"]
        assert sent["schema"]["properties"]["items"]["items"]["required"] == ["name"] and sent["strict"] is False
    pydantic_fmt = to_response_format(list[City])  # a pydantic list's schema is made strict, as a model's is
    assert pydantic_fmt is not None and pydantic_fmt.schema is not None
    assert pydantic_fmt.schema["$defs"]["City"]["additionalProperties"] is False


def test_an_invalid_streamed_item_is_a_structured_output_error_without_the_answer() -> None:
    from cloverleaf import StructuredOutputError

    bad = json.dumps({"items": [{"name": "Tokyo", "population": "lots (secret-ish text)"},
                                {"name": "Osaka", "population": 2}]})
    with Client(env={}) as c:
        c.fake.script.reply(text=bad)
        s = c.stream("fake/chat", "x", response_format=list[City])
        with pytest.raises(StructuredOutputError, match="item 0 .*population") as err:
            list(s.items())
    assert "secret-ish" not in str(err.value)


def test_a_refusal_is_reported_as_a_refusal_not_a_json_error() -> None:
    from cloverleaf import StructuredOutputError
    from cloverleaf._types import ResponseMetadata

    fmt = to_response_format(City)
    assert fmt is not None
    refused = ChatResponse([Text("I'm sorry, I can't help with that.")], "m", "p", finish_reason="content_filter",
                           metadata=ResponseMetadata(extra={"refusal": "I'm sorry, I can't help with that."}))
    with pytest.raises(StructuredOutputError, match="refused.*I'm sorry, I can't help with that") as err:
        parse_output(refused, fmt)
    assert "JSON" not in str(err.value) and err.value.response is refused
