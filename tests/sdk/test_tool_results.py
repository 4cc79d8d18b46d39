"""What tools return reaches the model whole, and async tools run as async code.

A tool that returned a screenshot used to have it flattened to its ``repr`` (the image never
left the process); an awaitable returned by something that only looks synchronous (a
decorated ``async def``, an object with an async ``__call__``) was rejected; and the model's
parallel calls to async tools ran one after another, as did plain tools on AsyncClient (on the
event loop itself).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime
import functools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cloverleaf import AsyncClient, Attachment, Client, ConfigError, Text
from cloverleaf._tools import run_tool, to_tool
from cloverleaf._types import ToolCall, ToolResult

PNG = str(Path(__file__).resolve().parents[1] / "fixtures" / "media" / "image.png")


def screenshot(page: str) -> Any:
    """Take a screenshot of a page."""
    return Attachment(source=PNG)


def captioned(page: str) -> Any:
    """A screenshot with a caption."""
    return ["the home page", Attachment(source=PNG)]


def annotated(page: str) -> Any:
    """A screenshot the tool wraps itself."""
    return ToolResult("ignored", [Text("flagged"), Attachment(source=PNG)], is_error=True)


def _result(fn: Any) -> ToolResult:
    tool = to_tool(fn)
    return run_tool(ToolCall("c1", tool.name, {"page": "home"}), {tool.name: tool})


def test_attachments_and_parts_a_tool_returns_become_the_results_parts() -> None:
    only = _result(screenshot)
    assert isinstance(only.content, list) and isinstance(only.content[0], Attachment)
    listed = _result(captioned)
    assert isinstance(listed.content, list) and listed.text == "the home page"
    assert isinstance(listed.content[1], Attachment)
    own = _result(annotated)
    assert (own.tool_call_id, own.name, own.is_error, own.text) == ("c1", "annotated", True, "flagged")
    plain = run_tool(ToolCall("c2", "names", {}), {"names": to_tool(_names)})
    assert plain.content == '["Paris", "Oslo"]', "a list of plain strings is data, sent as JSON"


def _names() -> list[str]:
    """City names."""
    return ["Paris", "Oslo"]


@pytest.mark.parametrize("tool", [screenshot, captioned])
def test_an_image_returned_by_a_tool_is_sent_to_the_model(tool: Any) -> None:
    with Client(env={}) as c:
        c.fake.script.reply(tool_calls=[{"name": tool.__name__, "arguments": {"page": "home"}}]).reply(text="done")
        assert c.chat("fake/echo", "Screenshot the home page", tools=[tool], run_tools=True).content == "done"
        messages = c.fake.requests[-1].json["messages"]
    images = [p for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/png;base64,")


async def _weather(city: str) -> str:
    return f"sunny in {city}"


def _decorated(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class _AsyncCallable:
    __name__ = "weather"
    __doc__ = "The weather."

    async def __call__(self, city: str) -> str:
        return f"sunny in {city}"


@pytest.mark.parametrize("tool", [_decorated(_weather), _AsyncCallable()], ids=["decorated", "async-call"])
async def test_an_awaitable_a_tool_returns_is_awaited(tool: Any) -> None:
    async with AsyncClient(env={}) as c:
        name = to_tool(tool).name
        c.fake.script.reply(tool_calls=[{"name": name, "arguments": {"city": "Oslo"}}]).reply(text="done")
        await c.chat("fake/echo", "Weather?", tools=[tool], run_tools=True)
        tool_message = [m for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"][-1]
    assert tool_message["content"] == "sunny in Oslo"


async def test_parallel_async_tool_calls_run_concurrently() -> None:
    running, most = 0, 0

    async def lookup(city: str) -> str:
        """Look a city up."""
        nonlocal running, most
        running += 1
        most = max(most, running)
        for _ in range(3):
            await asyncio.sleep(0)  # let the others start, if they run at the same time
        running -= 1
        return city

    async with AsyncClient(env={}) as c:
        c.fake.script.reply(tool_calls=[{"name": "lookup", "arguments": {"city": x}} for x in "ABC"]).reply(text="ok")
        await c.chat("fake/echo", "Look them up", tools=[lookup], run_tools=True)
        results = [m["content"] for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"]
    assert most == 3 and results == ["A", "B", "C"], "all three at once, results in the calls' order"


def _helper_without_key(city: str) -> str:
    """Look a city up with a helper model."""
    raise ConfigError("no API key for openai: set OPENAI_API_KEY")


def test_a_config_error_inside_a_tool_goes_to_the_model_on_both_clients() -> None:
    """The sync client aborted the conversation on a ConfigError raised inside a tool (a helper call
    with no key) where AsyncClient sent it to the model: both send it now, as any other exception."""
    def script(c: Any) -> None:
        c.fake.script.reply(tool_calls=[{"name": "_helper_without_key", "arguments": {"city": "Paris"}}]).reply("sorry")

    with Client(env={}) as c:
        script(c)
        assert c.chat("fake/chat", "hi", tools=[_helper_without_key], run_tools=True).content == "sorry"
        sync_sent = [m for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"][0]["content"]

    async def run() -> str:
        async with AsyncClient(env={}) as c:
            script(c)
            assert (await c.chat("fake/chat", "hi", tools=[_helper_without_key], run_tools=True)).content == "sorry"
            return str([m for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"][0]["content"])

    assert sync_sent == asyncio.run(run()) == "error: ConfigError: no API key for openai: set OPENAI_API_KEY"
    with Client(env={}) as c:  # what a sync client cannot do at all still stops it
        c.fake.script.reply(tool_calls=[{"name": "_weather", "arguments": {"city": "Oslo"}}]).reply("x")
        with pytest.raises(ConfigError, match="is async: use AsyncClient"):
            c.chat("fake/chat", "hi", tools=[_weather], run_tools=True)


async def test_plain_tools_on_async_client_run_in_threads_at_once_with_the_callers_context() -> None:
    """A def tool was called on the event loop: parallel calls of a blocking tool ran one after
    another and froze every other task. Each now runs in a worker thread, all at once (four calls
    meet at a barrier that one thread alone could never pass), seeing the caller's context vars."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    barrier = threading.Barrier(4, timeout=10)
    loop_thread = threading.get_ident()
    seen: list[tuple[int, str]] = []

    def fetch(n: int) -> str:
        """Fetch page n (blocking)."""
        barrier.wait()
        seen.append((threading.get_ident(), request_id.get()))
        return f"page {n}"

    request_id.set("req-7")
    async with AsyncClient(env={}) as c:
        c.fake.script.reply(tool_calls=[{"name": "fetch", "arguments": {"n": i}} for i in range(4)]).reply("ok")
        await c.chat("fake/chat", "hi", tools=[fetch], run_tools=True)
        results = [m["content"] for m in c.fake.requests[-1].json["messages"] if m["role"] == "tool"]
    assert results == [f"page {i}" for i in range(4)]
    assert len(seen) == 4 and all(ident != loop_thread and rid == "req-7" for ident, rid in seen)


@dataclasses.dataclass
class _Visit:
    when: datetime.date
    raw: bytes


class _Place(BaseModel):
    city: str
    temp: float


def test_nested_models_dataclasses_dates_and_bytes_in_a_result_are_sent_as_json() -> None:
    """A list or dict of pydantic models reached the model as Python reprs ("city='Rome' temp=20.5"),
    and bytes as "b'...'"; every value is JSON at any depth now, bytes as base64."""
    def places() -> Any:
        """Places."""
        return {"found": [_Place(city="Rome", temp=20.5)], "visits": [_Visit(datetime.date(2024, 5, 1), b"\x00hi")],
                "tags": {"a"}, "other": _Opaque()}

    sent = json.loads(run_tool(ToolCall("c1", "places", {}), {"places": to_tool(places)}).text)
    assert sent == {"found": [{"city": "Rome", "temp": 20.5}], "visits": [{"when": "2024-05-01", "raw": "AGhp"}],
                    "tags": ["a"], "other": "opaque thing"}


class _Opaque:
    def __str__(self) -> str:
        return "opaque thing"
