"""Responses items <-> neutral parts: the round trips that carry provider data a client
cannot see (reasoning signatures, Gemini thought signatures) and the request checks."""

from __future__ import annotations

import pytest

from cloverleaf._types import Attachment, ChatResponse, Reasoning, Role, Text, ToolCall, ToolResult
from cloverleaf.providers._common import replayable_reasoning
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.server.errors import BadRequest
from cloverleaf.server.responses.items import (
    builtin_item_refused,
    items_to_messages,
    normalise_input,
    output_items,
    reasoning_item,
    reasoning_provider,
    stamp_provider,
)
from cloverleaf.server.responses.wire import parse_request


def test_output_items_round_trip_through_a_client() -> None:
    parts = [Reasoning("first", signature="sig-1", provider="anthropic"), Reasoning("", redacted="opaque"),
             Text("Calling."), ToolCall("call_1", "lookup", {"q": "x"}, raw_arguments='{"q": "x"}',
                                        extra={"thoughtSignature": "ts=="})]
    items = output_items(parts)
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    assert [s["text"] for s in items[0]["summary"]] == ["first", ""]
    assert "sig-1" not in items[0]["encrypted_content"]  # opaque to the client
    # the client (say the Agents SDK) sends the items back as its next input
    back = items_to_messages(normalise_input([*items, {"type": "function_call_output", "call_id": "call_1",
                                                       "output": "found"}]))
    assert [m.role for m in back] == [Role.ASSISTANT, Role.TOOL]
    r1, r2, text, call = back[0].parts
    assert (r1.text, r1.signature, r1.redacted) == ("first", "sig-1", None)  # type: ignore[union-attr]
    assert (r2.redacted, r1.provider) == ("opaque", None)  # type: ignore[union-attr]
    assert isinstance(text, Text) and text.text == "Calling."
    assert isinstance(call, ToolCall) and call.extra is not None and call.extra["thoughtSignature"] == "ts=="
    assert call.arguments == {"q": "x"}
    assert isinstance(back[1].parts[0], ToolResult) and back[1].parts[0].content == "found"


def test_the_store_stamps_the_provider_so_another_provider_drops_it() -> None:
    item = output_items([Reasoning("t", signature="s", provider="anthropic")])[0]
    parts = items_to_messages([stamp_provider(item, "anthropic")])[0].parts
    assert isinstance(parts[0], Reasoning) and parts[0].provider == "anthropic"


def test_openai_reasoning_items_keep_their_id_and_encryption() -> None:
    item = {"type": "reasoning", "id": "rs_abc", "summary": [{"type": "summary_text", "text": "s"}],
            "encrypted_content": "gAAAA"}
    (part,) = items_to_messages(normalise_input([item]))[0].parts
    assert isinstance(part, Reasoning) and (part.signature, part.redacted) == ("rs_abc", "gAAAA")


def test_attachments_and_roles() -> None:
    msgs = items_to_messages(normalise_input([
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "see"},
                                     {"type": "input_image", "image_url": "https://example.com/a.png"},
                                     {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=",
                                      "filename": "a.pdf"}]},
        {"role": "assistant", "content": "ok"}]))
    assert [m.role for m in msgs] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    image, pdf = msgs[1].parts[1], msgs[1].parts[2]
    assert isinstance(image, Attachment) and image.source == "https://example.com/a.png"
    assert isinstance(pdf, Attachment) and pdf.filename == "a.pdf"


@pytest.mark.parametrize("raw, param", [
    ([{"type": "reasoning", "summary": [], "encrypted_content": "clv1:bm90LWpzb24"}], "encrypted_content"),
    ([{"type": "function_call", "id": "fc_1~%%%", "call_id": "c", "name": "f", "arguments": "{}"}],
     "function_call.id"),
    ([{"role": "robot", "content": "x"}], "input[0].role"),
    ([{"type": ["message"], "role": "user", "content": "x"}], "input[0].type"),
    ([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}], "input[0].content[0].file_id"),
])
def test_bad_items_name_the_field(raw: list, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        items_to_messages(normalise_input(raw))
    assert info.value.param == param


def test_builtin_items_are_kept_as_sent_and_refused_only_by_the_route() -> None:
    """Parsing cannot know the provider: a built-in tool item is kept whole (given an id) and
    left out of the neutral history; the route refuses it for a provider other than OpenAI's
    Responses API, naming the item."""
    items = normalise_input([{"type": "computer_call_output", "call_id": "c", "output": {"k": [1]}}])
    assert items == [{"type": "computer_call_output", "call_id": "c", "output": {"k": [1]}, "id": items[0]["id"]}]
    assert items_to_messages(items) == []
    error = builtin_item_refused(normalise_input([{"role": "user", "content": "x"}, *items]), "fake/echo")
    assert error is not None and error.param == "input[1].type" and "'fake/echo'" in str(error)
    assert builtin_item_refused(normalise_input("x"), "fake/echo") is None
    with pytest.raises(BadRequest) as info:
        normalise_input([{"type": "web_search_call", "id": 7}])
    assert info.value.param == "input[0].id"


def test_instructions_come_first_and_history_before_input() -> None:
    req = parse_request({"model": "m", "input": "now", "instructions": "be kind", "max_output_tokens": 99,
                         "reasoning": {"effort": "high", "summary": "auto"},
                         "text": {"format": {"type": "json_object"}},
                         "tool_choice": {"type": "allowed_tools", "mode": "required",
                                         "tools": [{"type": "function", "name": "b"}]},
                         "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]})
    history = normalise_input([{"role": "user", "content": "before"}, {"role": "assistant", "content": "reply"}])
    chat = req.chat_request(history)
    assert [m.content for m in chat.messages] == ["be kind", "before", "reply", "now"]
    assert chat.max_tokens == 99 and chat.reasoning is not None and chat.reasoning.effort == "high"
    assert chat.reasoning.summary and chat.response_format is not None
    assert [t.name for t in chat.tools or ()] == ["b"] and chat.tool_choice is not None
    assert chat.tool_choice.mode == "required"


def test_a_stored_answer_of_claude_on_vertex_stamps_its_reasoning_as_claudes() -> None:
    """The stored history's reasoning items carry what the reasoning parts say (Claude on Vertex
    AI marks its thinking as Claude's), so a conversation continued on ``anthropic/`` after
    ``vertex/claude-...`` keeps the thinking; an answer without reasoning names its row."""
    thought = Reasoning("Paris is in France.", signature="EqQBsig", provider="vertex#claude")
    answer = ChatResponse(parts=[thought, Text("Paris.")], model="claude-sonnet-4-5@20250929", provider="vertex")
    assert reasoning_provider(answer) == "vertex#claude"
    assert reasoning_provider(ChatResponse(parts=[Text("hi")], model="m", provider="vertex")) == "vertex"
    stored = stamp_provider(reasoning_item("rs_1", [thought]), reasoning_provider(answer))
    [back] = [m for m in items_to_messages([stored]) if m.role is Role.ASSISTANT]
    [part] = back.parts
    assert isinstance(part, Reasoning) and part.provider == "vertex#claude" and part.signature == "EqQBsig"
    assert replayable_reasoning(AnthropicAdapter(get_spec("anthropic")), part.provider, claude=True)
