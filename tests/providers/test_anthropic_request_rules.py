"""Requests Anthropic's Messages API refuses with a 400 although every other provider takes them:
what an OpenAI-style client (or a history begun elsewhere) sends as a matter of course. Each
goes through the real client to a mock upstream that checks the API's rules in its own words
(:func:`tests.providers.api_rules.anthropic_field_problem`), and is answered after the fix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import ChatRequest, Role, Text, Tool, ToolCall
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.registry import get_spec
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


MCP_TOOLS = [Tool("github.create_issue", "Open an issue.", {"type": "object", "properties": {"title": {"type": "string"}}}),
             Tool("github_create_issue", "The same, another server's.", {"type": "object"}),
             Tool("mcp__" + "knowledge_base_" * 5 + "search", "Search.", {"type": "object"})]


def _answer_calling(name: str) -> dict[str, Any]:
    return {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": name, "input": {"title": "Bug"}}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 9}}


def test_tool_names_the_api_refuses_are_sent_in_its_form_and_read_back(upstream: RuleCheckingUpstream) -> None:
    """An MCP host's ``github.create_issue`` (Gemini takes dots) or a name past 64 characters was
    refused ("tools.0.custom.name: String should match pattern"); each is sent under a valid name
    that no other tool of the request has, and the answer's call carries the caller's name."""
    history = [Message.user("File a bug."),
               Message.assistant([ToolCall("toolu_00", "github.create_issue", {"title": "Old"})]),
               Message.tool("toolu_00", "opened #1"), Message.user("And another.")]
    with _client(upstream) as client:
        sent_name = "github_create_issue_" + hashlib.sha256(b"github.create_issue").hexdigest()[:8]
        upstream.anthropic_answer = _answer_calling(sent_name)
        resp = client.chat(CLAUDE, history, tools=MCP_TOOLS, tool_choice="github.create_issue")
    assert upstream.refused == []
    sent = upstream.bodies[-1]
    names = [t["name"] for t in sent["tools"]]
    assert names[:2] == [sent_name, "github_create_issue"]
    assert len(names[2]) == 64 and names[2].startswith("mcp__knowledge_base_")
    assert sent["tool_choice"] == {"type": "tool", "name": sent_name}
    assert sent["messages"][1]["content"][0]["name"] == sent_name
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("github.create_issue", {"title": "Bug"})]


def test_a_refused_name_without_a_clash_is_only_cleaned(upstream: RuleCheckingUpstream) -> None:
    with _client(upstream) as client:
        upstream.anthropic_answer = _answer_calling("files_read")
        resp = client.chat(CLAUDE, "Read it.", tools=[Tool("files.read", "Read a file.", {"type": "object"})])
    assert [t["name"] for t in upstream.bodies[-1]["tools"]] == ["files_read"]
    assert resp.tool_calls[0].name == "files.read"


def test_a_name_cleaned_to_the_structured_output_tools_is_not_sent_twice(upstream: RuleCheckingUpstream) -> None:
    """A caller's ``json.response`` cleaned to ``json_response``, the name of the tool JSON output
    is asked through: two tools of one name went up (a 400), and a call of the caller's tool would
    have been read as the JSON answer. It is sent under another name, and read back as the caller's."""
    tool = Tool("json.response", "Send the response.", {"type": "object", "properties": {"title": {"type": "string"}}})
    sent_name = "json_response_" + hashlib.sha256(b"json.response").hexdigest()[:8]
    with _client(upstream) as client:
        upstream.anthropic_answer = _answer_calling(sent_name)
        resp = client.chat(CLAUDE, "Send it.", tools=[tool], response_format={"type": "json_object"})
    assert upstream.refused == []
    assert [t["name"] for t in upstream.bodies[-1]["tools"]] == [sent_name, "json_response"]
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("json.response", {"title": "Bug"})]


def test_a_streamed_call_is_read_back_to_the_callers_name() -> None:
    req = ChatRequest("claude-sonnet-4-5", [Message.user("Read it.")], stream=True,
                      tools=[Tool("files.read", "Read a file.", {"type": "object"})])
    events = [
        {"type": "message_start", "message": {"id": "msg_3", "type": "message", "role": "assistant", "content": [],
                                              "model": "claude-sonnet-4-5", "stop_reason": None,
                                              "usage": {"input_tokens": 20, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_02", "name": "files_read", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 5}},
        {"type": "message_stop"}]
    decoder = AnthropicAdapter(get_spec("anthropic")).stream_decoder(req)
    out = decoder.feed("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode())
    assert [e.name for e in out + decoder.close() if e.type == "tool_call_delta" and e.name] == ["files.read"]
