"""The OpenAI Agents SDK's default model class (``OpenAIResponsesModel``) running an agent
with a function tool through a real ``cloverleaf serve`` process: on the offline fake
provider, and on Anthropic and Gemini answering from recorded traffic (a replay server on
127.0.0.1 stands in for each provider). The agent calls the tool, sends its result back,
and gets the recorded final answer; the provider sees the tool call, its result and the
reasoning data it requires back (Anthropic's thinking signature, Gemini's thought
signature), which travelled through the Agents SDK as Responses items."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.wire import cassette

from .replay import Replay

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # never reach for OpenAI's trace endpoint

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.ports import unused_port

MASTER = "agents-test-master-key-0123456789"
ANTHROPIC = "pydantic-ai/tests/models/cassettes/test_anthropic/test_anthropic_tool_with_thinking.yaml"
GEMINI = "pydantic-ai/tests/models/google/cassettes/test_structured_output/test_native_output_with_function_tools.yaml"



@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Replay]]:
    tmp = tmp_path_factory.mktemp("agents")
    replay = Replay()
    port = unused_port()
    config = tmp / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp}/serve.db"\n\n'
                      f'[providers.anthropic]\nbase_url = "{replay.url}/anthropic"\n\n'
                      f'[providers.gemini]\nbase_url = "{replay.url}/gemini"\n')
    env = {**os.environ, "CLOVERLEAF_MASTER_KEY": MASTER, "XDG_DATA_HOME": str(tmp),
           "ANTHROPIC_API_KEY": "sk-ant-test", "GEMINI_API_KEY": "gemini-test"}
    env.pop("CLOVERLEAF_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(config), "serve", "--port",
                             str(port)], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1", replay
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        replay.close()


calls: list[str] = []


@function_tool
def get_user_country() -> str:
    """The user's country."""
    calls.append("get_user_country")
    return "Mexico"


def _run(base_url: str, model: str) -> Any:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=base_url, api_key=MASTER, max_retries=0)
    agent = Agent(name="geo", instructions="Answer briefly.", tools=[get_user_country],
                  model=OpenAIResponsesModel(model=model, openai_client=client))
    calls.clear()
    result = Runner.run_sync(agent, "What is the largest city in my country?")
    assert calls == ["get_user_country"], "the agent ran the tool the model asked for"
    return result


def test_agent_on_the_fake_provider(served: tuple[str, Replay]) -> None:
    result = _run(served[0], "fake/echo")
    assert result.final_output == "The get_user_country tool returned: Mexico"


def test_agent_on_replayed_anthropic(served: tuple[str, Replay]) -> None:
    base_url, replay = served
    replay.load("anthropic", ANTHROPIC)
    result = _run(base_url, "anthropic/claude-sonnet-4-5")
    assert "Mexico City" in result.final_output
    first, second = replay.received["anthropic"]
    assert first["system"][0]["text"] == "Answer briefly." if isinstance(first.get("system"), list) else (
        first["system"] == "Answer briefly.")
    assistant, tool_turn = second["messages"][1], second["messages"][2]
    recorded = cassette(ANTHROPIC)[0].response.json()["content"]
    thinking = next(b for b in recorded if b["type"] == "thinking")
    call = next(b for b in recorded if b["type"] == "tool_use")
    sent_thinking = next(b for b in assistant["content"] if b["type"] == "thinking")
    assert sent_thinking["signature"] == thinking["signature"], "the thinking signature came back intact"
    assert any(b["type"] == "tool_use" and b["id"] == call["id"] for b in assistant["content"])
    assert tool_turn["content"][0]["type"] == "tool_result" and tool_turn["content"][0]["tool_use_id"] == call["id"]
    assert "Mexico" in json.dumps(tool_turn["content"][0]["content"])


def test_agent_on_replayed_gemini(served: tuple[str, Replay]) -> None:
    base_url, replay = served
    replay.load("gemini", GEMINI)
    result = _run(base_url, "gemini/gemini-3-flash-preview")
    assert "Mexico City" in result.final_output
    first, second = replay.received["gemini"]
    recorded = cassette(GEMINI)[0].response.json()["candidates"][0]["content"]["parts"][0]
    model_turn = second["contents"][1]
    sent = next(p for p in model_turn["parts"] if "functionCall" in p)
    assert sent["functionCall"]["name"] == "get_user_country"
    assert sent["thoughtSignature"] == recorded["thoughtSignature"], "Gemini's thought signature came back intact"
    response = next(p for p in second["contents"][2]["parts"] if "functionResponse" in p)
    assert "Mexico" in json.dumps(response["functionResponse"])


def test_agent_streams_on_the_fake_provider(served: tuple[str, Replay]) -> None:
    import asyncio

    async def run() -> Any:
        set_tracing_disabled(True)
        client = AsyncOpenAI(base_url=served[0], api_key=MASTER, max_retries=0)
        agent = Agent(name="geo", instructions="Answer briefly.", tools=[get_user_country],
                      model=OpenAIResponsesModel(model="fake/echo", openai_client=client))
        calls.clear()
        result = Runner.run_streamed(agent, "Where am I?")
        kinds = [event.type async for event in result.stream_events()]
        return result, kinds

    result, kinds = asyncio.run(run())
    assert calls == ["get_user_country"] and "raw_response_event" in kinds
    assert result.final_output == "The get_user_country tool returned: Mexico"

