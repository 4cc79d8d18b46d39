"""What Claude Code 2.x sends on every call reaches the upstream: ``context_management`` (a
``clear_thinking_*`` edit, beta ``context-management-2025-06-27``) and ``system`` messages inside
``messages`` (beta ``mid-conversation-system-2026-04-07``). Both were a 400, so Claude Code could
make no call through the gateway. Driven by the official Anthropic SDK against a mock upstream
that records the body it received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live
from .two_upstreams import answer, sent

HI: Any = [{"role": "user", "content": "hi"}]
CONTEXT_BETA = "context-management-2025-06-27"
SYSTEM_BETA = "mid-conversation-system-2026-04-07"
CLEAR_THINKING: Any = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
CLEAR_TOOL_USES: Any = {"edits": [{"type": "clear_tool_uses_20250919", "keep": {"type": "tool_uses", "value": 3}}]}
APPLIED = {"applied_edits": [{"type": "clear_thinking_20251015", "cleared_thinking_turns": 2,
                              "cleared_input_tokens": 1200}]}
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}
#: Claude Code's shape: a system message after the first user turn
MID_SYSTEM: Any = [{"role": "user", "content": "hi"},
                   {"role": "system", "content": "Available agent types for the Agent tool: ..."},
                   {"role": "user", "content": [{"type": "text", "text": "go on"}]}]


@pytest.fixture(scope="module")
def live(two_upstreams_live: Live) -> Live:
    return two_upstreams_live



def sent_header(upstream: Upstream, name: str) -> str | None:
    return next((v for k, v in upstream.seen[-1].headers.items() if k.lower() == name), None)



def streamed(*events: dict[str, Any]) -> Reply:
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


# --------------------------------------------------------------------------- context_management


def test_context_management_reaches_an_anthropic_upstream_and_the_applied_edits_come_back(
        live: Live, upstream: Upstream) -> None:
    client = live.anthropic()
    upstream.queue(answer({**MESSAGE, "context_management": APPLIED}))
    message = client.beta.messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                          betas=[CONTEXT_BETA], context_management=CLEAR_THINKING)
    assert sent(upstream)["context_management"] == CLEAR_THINKING
    assert CONTEXT_BETA in (sent_header(upstream, "anthropic-beta") or "")
    assert message.context_management is not None
    assert message.context_management.model_dump(exclude_none=True) == APPLIED

    upstream.queue(streamed(
        {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 1}, "context_management": APPLIED},
        {"type": "message_stop"}))
    with client.beta.messages.stream(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                     betas=[CONTEXT_BETA], context_management=CLEAR_THINKING) as stream:
        final = stream.get_final_message()
    assert sent(upstream)["context_management"] == CLEAR_THINKING
    assert final.context_management is not None
    assert final.context_management.model_dump(exclude_none=True) == APPLIED


def test_an_answer_without_applied_edits_has_no_context_management(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(MESSAGE))
    with live.http() as http:
        got = http.post("/v1/messages", json={"model": "anth/claude-sonnet-4-5", "max_tokens": 20, "messages": HI,
                                              "context_management": CLEAR_THINKING})
    assert got.status_code == 200 and "context_management" not in got.json()


def test_thinking_edits_are_dropped_for_a_provider_that_keeps_no_thinking(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(COMPLETION))
    message = live.anthropic().beta.messages.create(model="oai/gpt-4o", max_tokens=20, messages=HI,
                                                    betas=[CONTEXT_BETA], context_management=CLEAR_THINKING)
    assert message.content[0].type == "text"
    assert "context_management" not in json.dumps(sent(upstream))


def test_other_edits_are_refused_for_a_provider_that_cannot_apply_them(live: Live, upstream: Upstream) -> None:
    seen = len(upstream.seen)
    with pytest.raises(anthropic.BadRequestError) as refused:
        live.anthropic().beta.messages.create(model="oai/gpt-4o", max_tokens=20, messages=HI,
                                              betas=[CONTEXT_BETA], context_management=CLEAR_TOOL_USES)
    message = str(refused.value)
    assert "clear_tool_uses_20250919" in message and "anthropic" in message and "bedrock" in message
    assert len(upstream.seen) == seen   # refused before anything was sent


@pytest.mark.parametrize("value", ["clear", {"edits": "all"}, {"edits": [{"keep": "all"}]}, {"edits": [3]}])
def test_context_management_of_the_wrong_shape_is_a_400(live: Live, value: Any) -> None:
    with live.http() as http:
        got = http.post("/v1/messages", json={"model": "anth/claude-sonnet-4-5", "max_tokens": 20, "messages": HI,
                                              "context_management": value})
    assert got.status_code == 400
    assert "context_management" in got.json()["error"]["message"]


# --------------------------------------------------------------------------- mid-conversation system


def test_a_mid_conversation_system_message_stays_in_place_under_its_beta(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(MESSAGE))
    live.anthropic().beta.messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, system="be brief",
                                          messages=MID_SYSTEM, betas=[SYSTEM_BETA])
    body = sent(upstream)
    assert body["system"] == "be brief"
    assert [t["role"] for t in body["messages"]] == ["user", "system", "user"]
    assert body["messages"][1] == MID_SYSTEM[1]
    assert SYSTEM_BETA in (sent_header(upstream, "anthropic-beta") or "")


def test_without_the_beta_a_mid_conversation_system_message_joins_the_system_prompt(
        live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, system="be brief",
                                     messages=MID_SYSTEM)
    body = sent(upstream)
    assert body["system"] == f"be brief\n\n{MID_SYSTEM[1]['content']}"
    assert [t["role"] for t in body["messages"]] == ["user"]   # the two user turns, merged


def test_a_mid_conversation_system_message_reaches_an_openai_upstream_in_place(
        live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(COMPLETION))
    blocks: Any = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    live.anthropic().beta.messages.create(model="oai/gpt-4o", max_tokens=20, betas=[SYSTEM_BETA], messages=[
        *MID_SYSTEM[:2], {"role": "system", "content": blocks}, MID_SYSTEM[2]])
    roles = [m["role"] for m in sent(upstream)["messages"]]
    assert roles == ["user", "system", "system", "user"]


def test_count_tokens_takes_a_mid_conversation_system_message(live: Live) -> None:
    count = live.anthropic().beta.messages.count_tokens(model="anth/claude-sonnet-4-5", messages=MID_SYSTEM,
                                                        betas=[SYSTEM_BETA])
    assert count.input_tokens > 0


@pytest.mark.parametrize("content", [None, 3, [{"type": "image", "source": {}}], [{"type": "text"}]])
def test_a_system_message_with_other_content_is_a_400_naming_it(live: Live, content: Any) -> None:
    with live.http() as http:
        got = http.post("/v1/messages", json={"model": "anth/claude-sonnet-4-5", "max_tokens": 20, "messages": [
            {"role": "user", "content": "hi"}, {"role": "system", "content": content}]})
    assert got.status_code == 400
    assert got.json()["error"]["message"].startswith("messages[1].content")


# --------------------------------------------------------------------------- thinking on OpenAI


@pytest.fixture(scope="module")
def openai_row(upstream: Upstream) -> Iterator[Live]:
    """A server whose ``openai`` row (OpenAI itself, by name) answers from the mock upstream."""
    server = start_live(settings(providers={"openai": ProviderSettings("openai", base_url=f"{upstream.url}/v1",
                                                                       api_key="sk-mock")}))
    yield server
    stop_live(server)


@pytest.mark.parametrize(("model", "effort"), [("gpt-4.1", None), ("gpt-4o", None), ("gpt-5", "medium"),
                                               ("o3", "medium")])
def test_thinking_reaches_openai_as_an_effort_only_for_a_model_that_reasons(
        openai_row: Live, upstream: Upstream, model: str, effort: str | None) -> None:
    """Claude Code asks for thinking on every call; OpenAI answers ``reasoning_effort`` for a
    model that does not reason (gpt-4.1, gpt-4o) with a 400 "Unsupported parameter", so such a
    route failed every call. The effort now goes only to a reasoning model."""
    upstream.queue(answer({**COMPLETION, "model": model}))
    message = openai_row.anthropic().messages.create(
        model=f"openai/{model}", max_tokens=5000, messages=HI, thinking={"type": "enabled", "budget_tokens": 4000})
    assert message.content[0].type == "text"
    assert sent(upstream).get("reasoning_effort") == effort


def test_a_compatible_row_keeps_its_own_rule_for_the_effort(live: Live, upstream: Upstream) -> None:
    """Another row of the same kind (a compatible server) decides which of its models reason."""
    upstream.queue(answer(COMPLETION))
    live.anthropic().messages.create(model="oai/gpt-4.1", max_tokens=5000, messages=HI,
                                     thinking={"type": "enabled", "budget_tokens": 4000})
    assert sent(upstream)["reasoning_effort"] == "medium"
