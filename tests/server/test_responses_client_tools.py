"""Codex's client-run tools that only the Responses API defines — the freeform ``custom`` tool
(its ``apply_patch``) and the ``namespace`` tool (its sub-agent tools) — on providers other than
OpenAI's Responses API. Both were refused as built-in tools, so Codex could make no call through
the gateway to a Chat Completions or Anthropic model. Now they go upstream as function tools,
the model's calls come back as OpenAI renders them (``custom_tool_call`` with the raw ``input``,
streamed as ``custom_tool_call_input`` events; ``function_call`` with its ``namespace``), and
the client's history items go back upstream. On the relay to OpenAI's Responses API they pass
unchanged. Driven by the official ``openai`` SDK against mock upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.translation.harness import validate_responses_event

from ..sdk.upstream import Reply, Upstream
from .conftest import Live
from .openai_schema import validate
from .two_upstreams import answer, sent
from .verifying_upstream import VerifyingUpstream, gateway_on

PATCH = '*** Begin Patch\n*** Update File: a.txt\n@@\n-alpha "quoted" \\ back\n+gamma é\n*** End Patch\n'
GRAMMAR = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
APPLY_PATCH: Any = {"type": "custom", "name": "apply_patch", "description": "Edit files. This is a FREEFORM tool.",
                    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}}
EXEC: Any = {"type": "function", "name": "exec_command", "strict": False, "description": "Run a command",
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
CLOSE: Any = {"type": "function", "name": "close_agent", "description": "Close an agent.", "strict": False,
              "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"],
                             "additionalProperties": False}}
AGENTS: Any = {"type": "namespace", "name": "multi_agent_v1", "description": "Tools for sub-agents.",
               "tools": [CLOSE, {**EXEC, "description": "Run a command in an agent"}]}
USER: Any = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Change alpha to gamma"}]}


@pytest.fixture(scope="module")
def live(two_upstreams_live: Live) -> Live:
    return two_upstreams_live


def completion_calling(name: str, arguments: dict[str, Any]) -> Reply:
    """A Chat Completions answer that calls one tool."""
    return answer({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4.1", "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def anthropic_stream_calling(name: str, arguments: dict[str, Any], pieces: int = 7) -> Reply:
    """An Anthropic stream whose ``tool_use`` input arrives in ``pieces`` JSON fragments (cut
    anywhere, escapes included)."""
    raw = json.dumps(arguments)
    step = max(1, len(raw) // pieces)
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 10, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}},
        *[{"type": "content_block_delta", "index": 0,
           "delta": {"type": "input_json_delta", "partial_json": raw[i:i + step]}} for i in range(0, len(raw), step)],
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 20}},
        {"type": "message_stop"}]
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


def anthropic_text(text: str) -> Reply:
    return answer({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 10, "output_tokens": 5}})


def upstream_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tools an upstream got, by name, in one shape: name -> (description, schema)."""
    out = {}
    for tool in body["tools"]:
        fn = tool.get("function", tool)
        out[fn["name"]] = {"description": fn.get("description") or "",
                           "schema": fn.get("parameters", fn.get("input_schema"))}
    return out


# --------------------------------------------------------------------------- custom tools


def test_a_custom_tool_is_a_function_upstream_and_its_call_comes_back_freeform(live: Live,
                                                                             upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(completion_calling("apply_patch", {"input": PATCH}))
    raw = client.responses.with_raw_response.create(model="oai/gpt-4.1", input=[USER], tools=[EXEC, APPLY_PATCH],
                                                    store=False)
    validate("Response", raw.http_response.json())
    r = raw.parse()
    tools = upstream_tools(sent(upstream))
    assert list(tools) == ["exec_command", "apply_patch"]
    assert tools["apply_patch"]["schema"]["properties"] == {"input": {"type": "string",
                                                                      "description": "The tool's freeform input text."}}
    assert "Edit files." in tools["apply_patch"]["description"] and GRAMMAR in tools["apply_patch"]["description"]
    (call,) = r.output
    assert call.type == "custom_tool_call"
    assert (call.name, call.call_id, call.input) == ("apply_patch", "call_1", PATCH) and call.id.startswith("ctc_")
    assert [t.type for t in r.tools] == ["function", "custom"]

    # the next turn, on another provider: the call and its output go back as a tool_use and its result
    upstream.queue(anthropic_text("Done."))
    history: Any = [USER, call.model_dump(exclude_none=True),
                    {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Success. Updated a.txt"}]
    follow = client.responses.create(model="anth/claude-sonnet-4-5", input=history, tools=[EXEC, APPLY_PATCH],
                                     store=False)
    assert follow.output_text == "Done."
    messages = sent(upstream)["messages"]
    assert messages[1]["content"] == [{"type": "tool_use", "id": "call_1", "name": "apply_patch",
                                       "input": {"input": PATCH}}]
    assert messages[2]["content"][0]["type"] == "tool_result"
    assert messages[2]["content"][0]["tool_use_id"] == "call_1"


def test_a_streamed_custom_call_is_its_raw_input_in_deltas(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(anthropic_stream_calling("apply_patch", {"input": PATCH}))
    deltas, done, types = [], None, []
    with client.responses.stream(model="anth/claude-sonnet-4-5", input=[USER], tools=[EXEC, APPLY_PATCH],
                                 tool_choice={"type": "custom", "name": "apply_patch"}) as stream:
        for event in stream:
            types.append(event.type)
            validate_responses_event(event.model_dump(mode="json", exclude_unset=True, warnings=False))
            if event.type == "response.custom_tool_call_input.delta":
                deltas.append(event.delta)
            elif event.type == "response.custom_tool_call_input.done":
                done = event.input
        final = stream.get_final_response()
    assert sent(upstream)["tool_choice"] == {"type": "tool", "name": "apply_patch"}
    assert len(deltas) > 1 and "".join(deltas) == PATCH and done == PATCH
    assert "response.function_call_arguments.delta" not in types
    (call,) = final.output
    assert call.type == "custom_tool_call" and call.input == PATCH and call.name == "apply_patch"
    # stored: the next turn by previous_response_id sends the call back upstream
    upstream.queue(anthropic_text("Done."))
    client.responses.create(model="anth/claude-sonnet-4-5", previous_response_id=final.id, tools=[APPLY_PATCH],
                            input=[{"type": "custom_tool_call_output", "call_id": call.call_id, "output": "ok"}])
    assert sent(upstream)["messages"][1]["content"][0]["input"] == {"input": PATCH}


# --------------------------------------------------------------------------- namespace tools


def test_namespace_tools_are_flattened_and_calls_name_their_namespace(live: Live, upstream: Upstream) -> None:
    """A member whose name another tool has (``exec_command``) goes upstream prefixed; the others
    under their own names. A call comes back as OpenAI renders it: its name and its namespace."""
    client = live.openai()
    upstream.queue(completion_calling("multi_agent_v1__exec_command", {"cmd": "ls"}))
    raw = client.responses.with_raw_response.create(model="oai/gpt-4.1", input="hi", tools=[EXEC, AGENTS],
                                                    store=False)
    validate("Response", raw.http_response.json())
    r = raw.parse()
    tools = upstream_tools(sent(upstream))
    assert list(tools) == ["exec_command", "close_agent", "multi_agent_v1__exec_command"]
    assert tools["close_agent"]["description"].startswith("(multi_agent_v1: Tools for sub-agents.)")
    (call,) = r.output
    assert call.type == "function_call"
    assert (call.name, call.namespace, call.arguments) == ("exec_command", "multi_agent_v1", '{"cmd": "ls"}')
    assert r.tools[1].type == "namespace"

    upstream.queue(completion_calling("close_agent", {"id": "a1"}))
    history: Any = ["hi", call.model_dump(exclude_none=True),
                    {"type": "function_call_output", "call_id": call.call_id, "output": "listing"}]
    history[0] = {"role": "user", "content": "hi"}
    again = client.responses.create(model="oai/gpt-4.1", input=history, tools=[EXEC, AGENTS], store=False)
    assert sent(upstream)["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__exec_command"
    assert (again.output[0].name, again.output[0].namespace) == ("close_agent", "multi_agent_v1")  # type: ignore[union-attr]


def test_a_streamed_namespaced_call(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(anthropic_stream_calling("close_agent", {"id": "a1"}, pieces=3))
    with client.responses.stream(model="anth/claude-sonnet-4-5", input="close it", tools=[AGENTS]) as stream:
        for event in stream:
            validate_responses_event(event.model_dump(mode="json", exclude_unset=True, warnings=False))
            if event.type == "response.output_item.added":
                assert event.item.namespace == "multi_agent_v1"  # type: ignore[union-attr]
        final = stream.get_final_response()
    assert list(upstream_tools(sent(upstream))) == ["close_agent", "exec_command"]
    (call,) = final.output
    assert (call.type, call.name, call.namespace, json.loads(call.arguments)) == (  # type: ignore[union-attr]
        "function_call", "close_agent", "multi_agent_v1", {"id": "a1"})


def test_bad_custom_and_namespace_tools_name_the_field(live: Live) -> None:
    with live.http() as http:
        for tools, param in (([{**APPLY_PATCH, "format": {"type": "regex"}}], "tools[0].format.type"),
                             ([{**AGENTS, "tools": [{"type": "web_search"}]}], "tools[0].tools[0].type"),
                             ([{**AGENTS, "tools": None}], "tools[0].tools")):
            r = http.post("/v1/responses", json={"model": "oai/gpt-4.1", "input": "hi", "tools": tools})
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


# --------------------------------------------------------------------------- the relay


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[Live, VerifyingUpstream]]:
    upstream = VerifyingUpstream()
    try:
        with gateway_on(upstream) as served:
            yield served, upstream
    finally:
        upstream.close()


def test_custom_and_namespace_tools_and_items_pass_unchanged_to_openai(
        relay: tuple[Live, VerifyingUpstream]) -> None:
    live, upstream = relay
    history: Any = [USER, {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": PATCH},
                    {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
                    {"type": "function_call", "call_id": "c2", "name": "close_agent", "namespace": "multi_agent_v1",
                     "arguments": '{"id": "a1"}'},
                    {"type": "function_call_output", "call_id": "c2", "output": "closed"},
                    {"role": "user", "content": "thanks"}]
    live.openai().responses.create(model="openai-responses/gpt-4.1", input=history, tools=[EXEC, APPLY_PATCH, AGENTS],
                                   tool_choice={"type": "custom", "name": "apply_patch"}, store=False)
    body = upstream.bodies["openai"][-1]
    assert body["tools"] == [EXEC, APPLY_PATCH, AGENTS]
    assert body["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    assert [i.get("type", "message") for i in body["input"]] == [
        "message", "custom_tool_call", "custom_tool_call_output", "function_call", "function_call_output", "message"]
    assert body["input"][1] == history[1] and body["input"][3] == history[3]
