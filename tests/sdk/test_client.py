"""The public API end to end against the in-process fake provider (offline)."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json

import pytest
from pydantic import BaseModel

import cloverleaf
from cloverleaf import (
    AsyncClient,
    Attachment,
    Client,
    ConfigError,
    Message,
    Role,
    ServerError,
    StructuredOutputError,
    TimeoutError,
    TransportError,
    UnsupportedCapability,
)


class City(BaseModel):
    name: str
    population: int
    tags: list[str]


def get_weather(city: str, unit: str = "c") -> str:
    """Current weather for a city.

    Args:
        city: City name.
        unit: c or f.
    """
    return f"21{unit} and sunny in {city}"


@pytest.fixture
def client():
    with Client(env={}, max_retries=0) as c:
        yield c


def test_chat_response_shape(client):
    r = client.chat("fake/echo", "Hello, world")
    assert r.content == "Hello, world" and r.text == r.content
    assert r.provider == "fake" and r.model == "echo" and r.finish_reason == "stop"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.cost == 0.0  # the fake provider bills nothing
    assert r.metadata.latency_ms is not None and r.metadata.latency_ms >= 0
    assert r.metadata.response_id
    assert r.tool_calls == [] and r.reasoning is None and r.parsed is None


def test_messages_as_objects_dicts_and_system(client):
    r = client.chat("fake/echo", [Message(role=Role.USER, content="first"), {"role": "assistant", "content": "ok"},
                                  {"role": "user", "content": "second"}], system="be brief")
    assert r.content == "second"
    sent = client.fake.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_stream_events_then_response(client):
    s = client.stream("fake/echo", "one two three")
    events = list(s)
    types = [e.type for e in events]
    assert types[-1] == "done" and types.count("done") == 1 and "usage" in types
    assert "".join(e.text for e in events if e.type == "text") == "one two three"
    assert s.response.content == "one two three" and s.response.usage.output_tokens > 0
    assert s.response.cost is not None and s.response.metadata.time_to_first_token_ms is not None
    assert events[-1].response is s.response


def test_text_stream_helper(client):
    assert "".join(client.stream("fake/echo", "a b c").text_stream) == "a b c"


def test_structured_output_with_pydantic(client):
    r = client.chat("fake/x", "a city please", response_format=City)
    assert isinstance(r.parsed, City) and r.parsed.name and isinstance(r.parsed.tags, list)
    body = client.fake.requests[-1].json
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"]


def test_structured_output_with_json_schema(client):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    r = client.chat("fake/x", "number", response_format=schema)
    assert isinstance(r.parsed, dict) and isinstance(r.parsed["n"], int)


def test_streaming_structured_partials_then_validated_object(client):
    s = client.stream("fake/x", "a city", response_format=City)
    partials = list(s.partial_objects())
    assert partials and isinstance(partials[-1], dict)
    assert isinstance(s.response.parsed, City) and partials[-1]["name"] == s.response.parsed.name


def test_invalid_structured_output_keeps_the_response(client):
    client.fake.script.reply(text='{"name": "Paris"')
    with pytest.raises(StructuredOutputError) as err:
        client.chat("fake/x", "a city", response_format=City)
    assert err.value.response.content == '{"name": "Paris"'


def test_tools_from_function_pydantic_and_dict(client):
    class Lookup(BaseModel):
        """Find a record."""
        key: str

    raw = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    r = client.chat("fake/x", "use a tool", tools=[get_weather, Lookup, raw], tool_choice="get_weather")
    assert r.finish_reason == "tool_calls"
    call = r.tool_calls[0]
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)
    tools = client.fake.requests[-1].json["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather", "Lookup", "ping"]
    assert tools[0]["function"]["parameters"]["properties"]["city"]["description"] == "City name."
    assert tools[0]["function"]["description"] == "Current weather for a city."


def test_tool_loop_runs_functions_until_an_answer(client):
    r = client.chat("fake/x", "weather in Paris?", tools=[get_weather], run_tools=True, max_tool_turns=3)
    assert r.finish_reason == "stop" and "sunny" in r.content
    sent = client.fake.requests[-1].json["messages"]
    assert sent[-1]["role"] == "tool" and "sunny" in sent[-1]["content"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"


class Loc(BaseModel):
    city: str
    country: str = "FR"


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


def test_tool_functions_get_their_own_types_not_raw_json() -> None:
    """The schema sent was built from the type hints, so the function gets those types: a
    model, an enum, a date and an int where the JSON had an object and strings."""
    from cloverleaf._tools import run_tool, tool_from_function
    from cloverleaf._types import ToolCall

    seen = {}

    def forecast(loc: Loc, unit: Unit, when: datetime.date, days: int = 1) -> str:
        seen.update(loc=loc, unit=unit, when=when, days=days)
        return f"{loc.city}: fine"

    tools = {"forecast": tool_from_function(forecast)}
    call = ToolCall("c1", "forecast", {"loc": {"city": "Paris"}, "unit": "celsius", "when": "2026-12-03", "days": "3"})
    result = run_tool(call, tools)
    assert result.content == "Paris: fine" and not result.is_error
    assert seen == {"loc": Loc(city="Paris"), "unit": Unit.C, "when": datetime.date(2026, 12, 3), "days": 3}
    wrong = run_tool(ToolCall("c2", "forecast", {"loc": {"town": "Paris"}, "unit": "kelvin", "when": "soon"}), tools)
    assert wrong.is_error and "ValidationError" in wrong.content and "city" in wrong.content   # the model can fix it


def test_streamed_tool_calls_are_assembled(client):
    s = client.stream("fake/x", "weather?", tools=[get_weather], tool_choice="required")
    deltas = [e for e in s if e.type == "tool_call_delta"]
    assert deltas and deltas[0].name == "get_weather"
    assert s.response.tool_calls[0].name == "get_weather" and "city" in s.response.tool_calls[0].arguments


def test_embeddings_in_order_and_deterministic(client):
    a = client.embed("fake/emb", ["alpha", "beta", "alpha"])
    assert len(a.vectors) == 3 and a.vectors[0] == a.vectors[2] and a.vectors[0] != a.vectors[1]
    assert a.usage.input_tokens > 0 and a.model
    assert len(client.embed("fake/emb", "x", dimensions=16).vectors[0]) == 16


def test_image_generation_gives_a_png(client):
    img = client.generate_image("fake/img", "a lighthouse").images[0]
    assert img.data is not None and img.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_provider_errors_are_mapped_and_retried():
    with Client(env={}, max_retries=2) as c:
        c.fake.script.fail(503).fail(503)
        assert c.chat("fake/echo", "retry me").content == "retry me"
        assert len(c.fake.requests) == 3
    with Client(env={}, max_retries=0) as c, pytest.raises(ServerError) as err:
        c.chat("fake/fail-500", "x")
    assert err.value.status == 500 and err.value.provider == "fake"


def test_hang_becomes_a_timeout(client):
    with pytest.raises(TimeoutError):
        client.chat("fake/hang", "x", timeout=0.2)


def test_reset_mid_stream_raises_after_partial_output(client):
    s = client.stream("fake/echo+reset-after-2", "one two three four five six")
    got = []
    with pytest.raises(TransportError):
        for ev in s:
            got.append(ev)
    assert got and all(e.type != "done" for e in got)


def test_unsupported_capability_raises_before_any_request():
    with Client(env={"ANTHROPIC_API_KEY": "k"}) as c:
        with pytest.raises(UnsupportedCapability) as err:
            c.chat("anthropic/claude-sonnet-4-5", "listen",
                   attachments=[Attachment(type="audio", data=b"RIFF....WAVE", media_type="audio/wav")])
        assert err.value.provider == "anthropic" and "openai" in err.value.alternatives
        with pytest.raises(UnsupportedCapability, match="embeddings"):
            c.embed("anthropic/claude-sonnet-4-5", "x")


def test_unknown_option_is_an_error(client):
    with pytest.raises(TypeError, match="temprature"):
        client.chat("fake/echo", "x", temprature=0.2)


def test_missing_model_and_missing_key_errors():
    with Client(env={}) as c:
        with pytest.raises(ConfigError, match="CLOVERLEAF_MODEL"):
            c.chat(None, "x")
        with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
            c.chat("openai/gpt-4o-mini", "x")


def test_get_provider_registry_style():
    p = cloverleaf.get_provider("fake", model="echo", env={})
    r = p.chat([Message(role=Role.USER, content="via provider")])
    assert isinstance(r, cloverleaf.ChatResponse) and r.content == "via provider"


def test_backend_fake_serves_any_model_id():
    with Client(env={"CLOVERLEAF_BACKEND": "fake"}) as c:
        r = c.chat("openai/gpt-4o-mini", "hello")
        assert r.provider == "fake" and r.content


async def test_async_client_chat_stream_embed_and_tools():
    async with AsyncClient(env={}) as c:
        r = await c.chat("fake/echo", "async hello")
        assert r.content == "async hello"
        s = c.stream("fake/echo", "async stream")
        texts = [e.text async for e in s if e.type == "text"]
        assert "".join(texts) == "async stream" and s.response.usage.output_tokens > 0

        async def lookup(key: str) -> str:
            """Look a key up."""
            await asyncio.sleep(0)
            return f"value-of-{key}"

        r = await c.chat("fake/x", "look it up", tools=[lookup], run_tools=True)
        assert "value-of-" in r.content
        e = await c.embed("fake/emb", ["a", "b"])
        assert len(e.vectors) == 2


async def test_async_calls_run_concurrently_on_one_pool():
    async with AsyncClient(env={}) as c:
        rs = await asyncio.gather(*(c.chat("fake/echo", f"n{i}") for i in range(50)))
        assert [r.content for r in rs] == [f"n{i}" for i in range(50)]


class Cities(BaseModel):
    cities: list[City]


def test_streaming_structured_yields_each_validated_item_as_it_completes(client):
    items = [{"name": f"City{i}", "population": i * 1000, "tags": ["t"]} for i in range(4)]
    client.fake.script.reply(text=json.dumps({"cities": items}))
    s = client.stream("fake/x", "four cities", response_format=Cities)
    got = []
    done_when_yielded = []
    for item in s.items():
        got.append(item)
        done_when_yielded.append(s.response is not None)
    assert [c.name for c in got] == [f"City{i}" for i in range(4)]
    assert done_when_yielded[:3] == [False, False, False], "items arrive while the stream is still running"
    assert all(isinstance(c, City) for c in got)
    assert isinstance(s.response.parsed, Cities) and len(s.response.parsed.cities) == 4


class Point(BaseModel):
    x: int
    y: int


def test_items_needs_a_list_shaped_schema(client):
    s = client.stream("fake/x", "x", response_format=Point)
    with pytest.raises(ConfigError, match="array"):
        list(s.items())


async def test_async_items():
    async with AsyncClient(env={}) as c:
        c.fake.script.reply(text=json.dumps({"cities": [{"name": "A", "population": 1, "tags": []},
                                                        {"name": "B", "population": 2, "tags": []}]}))
        s = c.stream("fake/x", "two", response_format=Cities)
        names = [item.name async for item in s.items()]
        assert names == ["A", "B"]


def test_closing_a_stream_early_closes_the_connection(client):
    s = client.stream("fake/echo+drip-1ms", "one two three four five six seven eight")
    for ev in s:
        if ev.type == "text":
            break
    assert s._events.gi_frame is not None, "a break leaves the stream to be resumed"
    s.close()
    # the engine's generator was closed (not left for the garbage collector): its context exited
    assert s._events.gi_frame is None
    assert s.response is None


def test_dropping_an_unfinished_stream_closes_the_connection(client):
    import weakref

    s = client.stream("fake/echo+drip-1ms", "one two three four five six seven eight")
    next(iter(s))
    events = weakref.ref(s._events)
    del s
    assert events() is None, "nothing but the stream held the engine's generator: it went with it"


def test_a_stream_refuses_run_tools_rather_than_ignore_it(client) -> None:
    with pytest.raises(cloverleaf.ConfigError, match="use chat\\(..., run_tools=True\\)"):
        client.stream("fake/x", "weather?", tools=[get_weather], run_tools=True)


def test_a_closed_client_says_so_instead_of_answering_unrecorded(tmp_path) -> None:
    c = cloverleaf.Client(store={"url": f"sqlite:///{tmp_path / 'a.db'}"})
    assert c.chat("fake/echo", "first").content == "first"
    c.close()
    for call in (lambda: c.chat("fake/echo", "again"), lambda: c.stream("fake/echo", "again"),
                 lambda: c.embed("simple", "again")):
        with pytest.raises(cloverleaf.CloverleafError, match="this client is closed"):
            call()


async def test_a_closed_async_client_says_so_too() -> None:
    c = cloverleaf.AsyncClient()
    await c.aclose()
    with pytest.raises(cloverleaf.CloverleafError, match="this client is closed"):
        await c.chat("fake/echo", "again")


def test_a_reasoning_budget_is_a_whole_number_of_at_least_zero(client) -> None:
    from cloverleaf._options import to_reasoning

    assert to_reasoning(0).budget_tokens == 0 and to_reasoning(2048).budget_tokens == 2048
    for bad in (-5, {"budget_tokens": -1}, {"budget_tokens": 1.5}):
        with pytest.raises(cloverleaf.ConfigError, match="at least 0"):
            to_reasoning(bad)
    with pytest.raises(cloverleaf.ConfigError, match="at least 0"):
        client.chat("fake/x", "think", reasoning=-5)


def test_reading_breakers_does_not_change_how_calls_are_made() -> None:
    """Per-call base_url/api_key address a provider directly; they must keep working after a
    look at .breakers (which makes the gateway), and stop only once routes are registered."""
    c = cloverleaf.Client(env={})
    try:
        assert dict(c.breakers) == {}
        assert c.chat("fake/echo", "direct", base_url="http://fake.cloverleaf.invalid/v1", api_key="k").content
        c.gateway.register("fake/echo", route="default")
        with pytest.raises(cloverleaf.ConfigError, match="cannot be combined with the gateway"):
            c.chat("fake/echo", "direct", base_url="http://fake.cloverleaf.invalid/v1", api_key="k")
    finally:
        c.close()


def test_run_tools_reports_the_whole_conversations_usage_and_cost() -> None:
    """Each turn of the tool loop is a billed call: the answer's usage and cost are their sums."""
    from cloverleaf._tools import tool_loop
    from cloverleaf._types import ChatResponse, Message, Text, ToolCall, ToolResult, Usage

    def turn(cost, calls=()):
        return ChatResponse([*calls, Text("done")] if not calls else list(calls), "m", "p",
                            usage=Usage(input_tokens=100, output_tokens=10), cost=cost)

    loop = tool_loop([Message.user("weather?")], max_tool_turns=3)
    next(loop)
    calls = loop.send(turn(0.02, [ToolCall("c1", "get_weather", {"city": "Paris"})]))
    loop.send([ToolResult("c1", "sunny", name="get_weather")])
    with pytest.raises(StopIteration) as done:
        loop.send(turn(0.03))
    final = done.value.value
    assert calls[0].name == "get_weather"
    assert final.cost == pytest.approx(0.05) and final.usage.input_tokens == 200 and final.usage.output_tokens == 20
    unpriced = tool_loop([Message.user("x")], max_tool_turns=3)
    next(unpriced)
    unpriced.send(turn(None, [ToolCall("c1", "get_weather", {"city": "Paris"})]))
    unpriced.send([ToolResult("c1", "sunny", name="get_weather")])
    with pytest.raises(StopIteration) as done:
        unpriced.send(turn(0.03))
    assert done.value.value.cost is None          # one turn's price unknown: the total is not known
