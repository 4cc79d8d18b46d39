"""Every cache hit equals what the upstream said, whatever earlier callers did with their own copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf._config import Settings
from cloverleaf._types import Text

from .openai_mock import OpenAIMock

MODEL = "mock/gpt-test"
TOOL = {"name": "get_w", "description": "the weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    yield m
    m.close()


def make_client(tmp_path: Path, mock: OpenAIMock, cache: dict[str, Any]) -> cloverleaf.Client:
    s = Settings(providers={"mock": mock.provider()}, cache=cache, env={"MOCK_KEY": "k"}, gateway=True,
                 store={"url": f"sqlite:///{tmp_path / 'calls.db'}"}, max_retries=0)
    return cloverleaf.Client(s)


# --------------------------------------------------------------------------- callers' edits


def test_a_callers_edits_to_its_answer_never_reach_the_memory_cache(tmp_path: Path, mock: OpenAIMock) -> None:
    """An SDK caller owns the response it got: editing it in place (a tool call's arguments, a
    part's text, metadata, usage; a streamed event's usage) changed what the memory cache
    served every later caller."""
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        first = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        upstream_said = (first.tool_calls[0].arguments == {}, first.tool_calls[0].id)
        first.tool_calls[0].arguments["x"] = 999
        first.parts.append(Text("added"))
        first.metadata.headers["x-mine"] = "1"
        second = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        assert second.metadata.extra["cache"] == "hit"
        assert (second.tool_calls[0].arguments == {}, second.tool_calls[0].id) == upstream_said
        assert len(second.parts) == 1 and "x-mine" not in second.metadata.headers
        second.tool_calls[0].arguments["y"] = [1]
        second.tool_calls[0].name = "other"
        second.usage.input_tokens = 12345
        third = client.chat(MODEL, "weather?", temperature=0, tools=[TOOL])
        assert third.tool_calls[0].arguments == {} and third.tool_calls[0].name == "get_w"
        assert third.usage.input_tokens == first.usage.input_tokens == 10

        text = "".join(e.text or "" for e in client.stream(MODEL, "stream me", temperature=0))
        for event in client.stream(MODEL, "stream me", temperature=0):   # a hit: edit what it gave
            if event.usage is not None:
                event.usage.output_tokens = 999
            if event.type == "text" and event.text:
                event.text = "changed"
        again = list(client.stream(MODEL, "stream me", temperature=0))
        assert "".join(e.text or "" for e in again) == text
        assert all(e.usage is None or e.usage.output_tokens != 999 for e in again)
        assert mock.chats == 2
