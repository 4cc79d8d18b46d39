"""Requests Bedrock's Converse refuses with a ValidationException although other providers take
them: Converse's own constraints for every model (Nova, Llama, Mistral...), and the Messages
API's rules Claude relays there. Each goes through the real client to a mock upstream that checks
them in AWS's words (:func:`tests.providers.api_rules.converse_field_problem`), and is answered
after the fix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, Role, Text, Tool, ToolCall
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from cloverleaf.streams.eventstream import encode_frame
from tests.providers.api_rules import CONVERSE_ANSWER, RuleCheckingUpstream, serving

CLAUDE = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "bedrock/us.amazon.nova-micro-v1:0"
LLAMA = "bedrock/meta.llama3-1-70b-instruct-v1:0"


@pytest.fixture
def upstream() -> Iterator[RuleCheckingUpstream]:
    yield from serving()


def _client(upstream: RuleCheckingUpstream) -> Client:
    providers = {"bedrock": ProviderSettings("bedrock", base_url=upstream.url, api_key="bedrock-mock-key",
                                             extra={"region": "us-east-1"})}
    return Client(Settings.load(env={}, providers=providers))


# --------------------------------------------------------------------------- stop sequences


def test_claudes_whitespace_only_stop_sequences_are_left_out(upstream: RuleCheckingUpstream) -> None:
    """``stop=["\\n"]`` (common from OpenAI clients) reached Claude on Bedrock as is and was refused
    ("stop_sequences: each stop sequence must contain non-whitespace"); such sequences are left out,
    and Claude is asked which sequence matched only when one is sent."""
    with _client(upstream) as client:
        assert client.chat(CLAUDE, "One line, please.", stop=["\n", " \t", "END"]).text == "Done."
        assert client.chat(CLAUDE, "One line, please.", stop=["\n\n"]).text == "Done."
    assert upstream.refused == []
    first, second = upstream.bodies
    assert first["inferenceConfig"]["stopSequences"] == ["END"]
    assert "stopSequences" not in second.get("inferenceConfig", {})
    assert "additionalModelResponseFieldPaths" not in second


@pytest.mark.parametrize("model", [NOVA, LLAMA])
def test_other_models_keep_a_newline_stop_and_lose_only_an_empty_one(upstream: RuleCheckingUpstream,
                                                                      model: str) -> None:
    """Converse refuses an empty stop sequence for every model (``NonEmptyString``); a newline is
    a stop other models take, and keep."""
    with _client(upstream) as client:
        assert client.chat(model, "One line, please.", stop=["", "\n"]).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["inferenceConfig"]["stopSequences"] == ["\n"]


# --------------------------------------------------------------------------- text


def test_claudes_prefill_ending_in_whitespace_is_trimmed(upstream: RuleCheckingUpstream) -> None:
    """A final assistant turn (a prefill) ending with a space was refused by Claude on Bedrock
    ("The model returned the following errors: messages: final assistant content cannot end with
    trailing whitespace"); its end is trimmed, earlier assistant turns keep theirs."""
    history = [Message.user("Code?"), Message.assistant("    indented\n"), Message.user("Name a colour."),
               Message.assistant("The colour is ")]
    with _client(upstream) as client:
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []
    sent = upstream.bodies[-1]["messages"]
    assert sent[1]["content"] == [{"text": "    indented\n"}]
    assert sent[-1] == {"role": "assistant", "content": [{"text": "The colour is"}]}


def test_a_marked_prefill_is_trimmed_before_its_cache_point(upstream: RuleCheckingUpstream) -> None:
    mark = {"type": "ephemeral"}
    history = [Message.user("Name a colour."),
               Message(Role.ASSISTANT, [Text("The colour is "), Text(" \n", cache_control=mark)])]
    with _client(upstream) as client:
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []
    assert upstream.bodies[-1]["messages"][-1]["content"] == [{"text": "The colour is"}]


def test_whitespace_only_system_parts_are_left_out(upstream: RuleCheckingUpstream) -> None:
    """A system part of only whitespace (a template's empty slot) was sent as a system block,
    which Claude refuses ("system: text content blocks must contain non-whitespace text"); it
    says nothing and is left out, for every model, a marked part's cache point kept after the text
    before it."""
    mark = {"type": "ephemeral"}
    system = Message(Role.SYSTEM, [Text("You are terse."), Text("\n", cache_control=mark)])
    with _client(upstream) as client:
        assert client.chat(CLAUDE, [system, Message.user("Hi")]).text == "Done."
        assert client.chat(CLAUDE, [Message.system(" \n"), Message.user("Hi")]).text == "Done."
        assert client.chat(NOVA, [Message.system("\t"), Message.user("Hi")]).text == "Done."
    assert upstream.refused == []
    marked, blank, nova = upstream.bodies
    assert marked["system"] == [{"text": "You are terse."}, {"cachePoint": {"type": "default"}}]
    assert "system" not in blank and "system" not in nova


def test_whitespace_only_text_in_the_history_is_left_out_for_every_model(upstream: RuleCheckingUpstream) -> None:
    """Converse itself refuses a blank text block ("The text field in the ContentBlock object at
    messages.1.content.0 is blank"), for Titan or Nova as for Claude."""
    history = [Message.user([Text(" "), Text("Search the news.")]), Message.assistant("\n\n"),
               Message.user("And now?")]
    with _client(upstream) as client:
        assert client.chat(NOVA, history).text == "Done."
        assert client.chat(CLAUDE, history).text == "Done."
    assert upstream.refused == []


# --------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("model", [NOVA, LLAMA, CLAUDE])
def test_a_temperature_above_converses_range_is_its_top(upstream: RuleCheckingUpstream, model: str) -> None:
    """Converse takes ``temperature`` 0 to 1 for every model (OpenAI's goes to 2): 1.5 (a
    client's "creative" preset, a route falling back from GPT) was refused ("Value '1.5' at
    'inferenceConfig.temperature' failed to satisfy constraint") for Nova and Llama; it is sent
    as 1, as it already was for Claude. A temperature in range goes as given."""
    with _client(upstream) as client:
        assert client.chat(model, "Hi", temperature=1.5).text == "Done."
        assert client.chat(model, "Hi", temperature=0.7).text == "Done."
    assert upstream.refused == []
    assert [b["inferenceConfig"]["temperature"] for b in upstream.bodies] == [1.0, 0.7]


# --------------------------------------------------------------------------- tool names


MCP_TOOLS = [Tool("github.create_issue", "Open an issue.", {"type": "object", "properties": {"title": {"type": "string"}}}),
             Tool("github_create_issue", "The same, another server's.", {"type": "object"}),
             Tool("mcp__" + "knowledge_base_" * 5 + "search", "Search.", {"type": "object"})]
HASHED = "github_create_issue_" + hashlib.sha256(b"github.create_issue").hexdigest()[:8]


def _answer_calling(name: str) -> dict[str, Any]:
    return {**CONVERSE_ANSWER, "stopReason": "tool_use", "output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": {"title": "Bug"}}}]}}}


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
def test_tool_names_converse_refuses_are_sent_in_its_form_and_read_back(upstream: RuleCheckingUpstream,
                                                                        model: str) -> None:
    """An MCP host's ``github.create_issue`` (Gemini and OpenAI take dots) or a name past 64
    characters failed Converse's ``ToolName`` constraint for every model; each is sent under a
    valid name no other tool of the request has (as on Anthropic's API), the history's calls and
    a forced choice alike, and the answer's call carries the caller's name."""
    history = [Message.user("File a bug."),
               Message.assistant([ToolCall("tooluse_0", "github.create_issue", {"title": "Old"})]),
               Message.tool("tooluse_0", "opened #1"), Message.user("And another.")]
    upstream.converse_answer = _answer_calling(HASHED)
    with _client(upstream) as client:
        resp = client.chat(model, history, tools=MCP_TOOLS, tool_choice="github.create_issue")
    assert upstream.refused == []
    sent = upstream.bodies[-1]
    names = [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"] if "toolSpec" in t]
    assert names[:2] == [HASHED, "github_create_issue"]
    assert len(names[2]) == 64 and names[2].startswith("mcp__knowledge_base_")
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": HASHED}}
    assert sent["messages"][1]["content"][0]["toolUse"]["name"] == HASHED
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("github.create_issue", {"title": "Bug"})]


def test_a_history_calling_a_refused_name_without_tools_declares_it_in_converses_form(
        upstream: RuleCheckingUpstream) -> None:
    """A history with tool calls and no tools offered gets its tools declared (Converse wants a
    toolConfig there): under the names the calls are sent under."""
    history = [Message.user("Read it."), Message.assistant([ToolCall("tooluse_0", "files.read", {})]),
               Message.tool("tooluse_0", "the file"), Message.user("Thanks.")]
    with _client(upstream) as client:
        assert client.chat(NOVA, history).text == "Done."
    assert upstream.refused == []
    assert [t["toolSpec"]["name"] for t in upstream.bodies[-1]["toolConfig"]["tools"]] == ["files_read"]


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(payload).encode())


def test_a_streamed_call_is_read_back_to_the_callers_name() -> None:
    req = ChatRequest(NOVA.removeprefix("bedrock/"), [Message.user("Read it.")], stream=True,
                      tools=[Tool("files.read", "Read a file.", {"type": "object"})])
    raw = b"".join([
        _frame("messageStart", {"role": "assistant"}),
        _frame("contentBlockStart", {"contentBlockIndex": 0,
                                     "start": {"toolUse": {"toolUseId": "tooluse_2", "name": "files_read"}}}),
        _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
        _frame("contentBlockStop", {"contentBlockIndex": 0}),
        _frame("messageStop", {"stopReason": "tool_use"}),
        _frame("metadata", {"usage": {"inputTokens": 20, "outputTokens": 5}}),
    ])
    decoder = BedrockAdapter(get_spec("bedrock")).stream_decoder(req)
    events = decoder.feed(raw) + decoder.close()
    assert [e.name for e in events if e.type == "tool_call_delta" and e.name] == ["files.read"]
    acc = StreamAccumulator(req.model, "bedrock")
    for event in events:
        acc.add(event)
    assert [c.name for c in acc.response().tool_calls] == ["files.read"]
