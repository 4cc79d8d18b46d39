"""Requests Anthropic's Messages API refuses with a 400 although every other provider takes them:
what an OpenAI-style client (or a history begun elsewhere) sends as a matter of course. Each
goes through the real client to a mock upstream that checks the API's rules in its own words
(:func:`tests.providers.api_rules.anthropic_field_problem`), and is answered after the fix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import Role, Text, ToolCall
from tests.providers.api_rules import RuleCheckingUpstream, serving

CLAUDE = "anthropic/claude-sonnet-4-5"


@pytest.fixture
def upstream() -> Iterator[RuleCheckingUpstream]:
    yield from serving()


def _client(upstream: RuleCheckingUpstream) -> Client:
    providers = {"anthropic": ProviderSettings("anthropic", base_url=upstream.url, api_key="sk-ant-mock")}
    return Client(Settings.load(env={}, providers=providers))


def test_whitespace_only_stop_sequences_are_left_out(upstream: RuleCheckingUpstream) -> None:
    """``stop=["\\n"]`` (a one-line completion, common from OpenAI clients) was sent as is and
    refused ("each stop sequence must contain non-whitespace"); such sequences are left out."""
    with _client(upstream) as client:
        assert client.chat(CLAUDE, "One line, please.", stop=["\n", " \t", "END"]).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["stop_sequences"] == ["END"]


def test_only_whitespace_stop_sequences_send_none(upstream: RuleCheckingUpstream) -> None:
    with _client(upstream) as client:
        assert client.chat(CLAUDE, "One line, please.", stop=["\n\n"]).text == "Done."
    assert "stop_sequences" not in upstream.bodies[-1]


def test_a_whitespace_only_assistant_turn_in_the_history_is_left_out(upstream: RuleCheckingUpstream) -> None:
    """An assistant turn whose text is only whitespace (Claude's answer after a web search can be
    "\\n"; a client stores it) was replayed and refused on every later turn of the conversation."""
    history = [Message.user("Search the news."), Message.assistant("\n"), Message.user("And now?")]
    with _client(upstream) as client:
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []
    sent = upstream.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["user"]
    assert [b["text"] for b in sent[0]["content"]] == ["Search the news.", "And now?"]


def test_whitespace_text_beside_a_tool_call_is_left_out(upstream: RuleCheckingUpstream) -> None:
    history = [Message.user("Weather?"),
               Message.assistant([Text("\n\n"), ToolCall("toolu_01", "weather", {"city": "Oslo"})]),
               Message.tool("toolu_01", "sunny")]
    with _client(upstream) as client:
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []
    assert [b["type"] for b in upstream.bodies[-1]["messages"][1]["content"]] == ["tool_use"]


def test_whitespace_text_beside_other_user_content_is_left_out(upstream: RuleCheckingUpstream) -> None:
    with _client(upstream) as client:
        assert client.chat(CLAUDE, [Message.user([Text(" "), Text("Hello")])]).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["messages"][0]["content"] == [{"type": "text", "text": "Hello"}]


def test_a_prefill_ending_in_whitespace_is_trimmed(upstream: RuleCheckingUpstream) -> None:
    """A final assistant turn (a prefill) that ends with a space or a newline was refused ("final
    assistant content cannot end with trailing whitespace"); its end is trimmed, the rest kept."""
    history = [Message.user("Name a colour."), Message.assistant("The colour is ")]
    with _client(upstream) as client:
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["messages"][-1]["content"] == [{"type": "text", "text": "The colour is"}]


def test_earlier_assistant_turns_keep_their_whitespace(upstream: RuleCheckingUpstream) -> None:
    history = [Message.user("Code?"), Message.assistant("    indented\n"), Message.user("Thanks.")]
    with _client(upstream) as client:
        client.chat(CLAUDE, history)
    assert upstream.bodies[-1]["messages"][1]["content"] == [{"type": "text", "text": "    indented\n"}]


@pytest.mark.parametrize(("given", "sent"), [(1.5, 1.0), (2.0, 1.0), (0.7, 0.7), (0.0, 0.0)])
def test_a_temperature_above_claudes_range_is_its_top(upstream: RuleCheckingUpstream, given: float,
                                                      sent: float) -> None:
    """OpenAI's range is 0..2 and Claude's 0..1: a temperature of 1.5 (a client's "creative"
    preset, or a route falling back from GPT) was refused ("temperature: range: 0..1"); it is
    sent as 1, the most Claude takes."""
    with _client(upstream) as client:
        assert client.chat(CLAUDE, "Hi", temperature=given).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["temperature"] == sent


def test_a_long_user_id_is_sent_as_its_hash(upstream: RuleCheckingUpstream) -> None:
    """``user`` has no length limit on OpenAI; ``metadata.user_id`` takes 256 characters. A longer
    one was refused; it is sent as its SHA-256, still one opaque id per user."""
    user = "tenant-42/" + "u" * 300
    with _client(upstream) as client:
        assert client.chat(CLAUDE, "Hi", user=user).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["metadata"] == {"user_id": hashlib.sha256(user.encode()).hexdigest()}


def test_a_short_user_id_is_sent_as_given(upstream: RuleCheckingUpstream) -> None:
    with _client(upstream) as client:
        client.chat(CLAUDE, "Hi", user="user-123")
    assert upstream.bodies[-1]["metadata"] == {"user_id": "user-123"}


def test_whitespace_only_system_parts_are_left_out(upstream: RuleCheckingUpstream) -> None:
    """A system prompt sent as blocks (a part carries ``cache_control``) kept a part of only
    whitespace as a block, which the API refuses; it is left out, the breakpoint kept."""
    mark = {"type": "ephemeral"}
    system = Message(Role.SYSTEM, [Text("You are terse.", cache_control=mark), Text("\n")])
    with _client(upstream) as client:
        assert client.chat(CLAUDE, [system, Message.user("Hi")]).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["system"] == [{"type": "text", "text": "You are terse.", "cache_control": mark}]


def test_a_blank_system_prompt_is_not_sent(upstream: RuleCheckingUpstream) -> None:
    with _client(upstream) as client:
        client.chat(CLAUDE, [Message.system(" \n"), Message.user("Hi")])
    assert "system" not in upstream.bodies[-1]


def test_an_interleaved_thinking_budget_may_exceed_max_tokens(upstream: RuleCheckingUpstream) -> None:
    """With the interleaved-thinking beta the budget is the whole turn's (thinking between tool
    calls) and may exceed ``max_tokens``, as Anthropic's guide says; such a request (Claude Code
    sends the beta) was refused here with a 400 before it was sent. Without the beta it still is."""
    beta = ProviderSettings("anthropic", base_url=upstream.url, api_key="sk-ant-mock",
                            extra={"beta": ["interleaved-thinking-2025-05-14"]})
    with Client(Settings.load(env={}, providers={"anthropic": beta})) as client:
        assert client.chat(CLAUDE, "Plan the trip.", reasoning=20000, max_tokens=8000).text == "Done."
    sent = upstream.bodies[-1]
    assert (sent["thinking"], sent["max_tokens"]) == ({"type": "enabled", "budget_tokens": 20000}, 8000)
    with _client(upstream) as client, pytest.raises(InvalidRequestError, match="greater than the reasoning budget"):
        client.chat(CLAUDE, "Plan the trip.", reasoning=20000, max_tokens=8000)
