"""Codex's client-executed tool search (``{"type": "tool_search", "execution": "client"}``) and the
function tools it defers (``defer_loading: true``), on providers other than OpenAI's Responses
API. The search was refused as a built-in tool, so default Codex failed its first request on a
gpt-5.x name routed elsewhere. Now the search goes upstream as a function tool, the model's call
comes back as a ``tool_search_call`` item, a ``tool_search_output`` in the conversation is its
result and loads the tools it lists (in that request and later ones, ``previous_response_id``
included), and deferred tools stay away from the upstream until loaded. On the relay to OpenAI's
Responses API all of it passes unchanged. Driven by the official ``openai`` SDK against mock
upstreams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.translation.harness import validate_responses_event

from ..sdk.upstream import Upstream
from .conftest import Live
from .openai_schema import validate
from .test_responses_client_tools import (
    EXEC,
    USER,
    anthropic_stream_calling,
    anthropic_text,
    completion_calling,
    relay,
    upstream_tools,
)
from .two_upstreams import sent
from .verifying_upstream import VerifyingUpstream

__all__ = ["relay"]   # the relay fixture, shared

SEARCH_SCHEMA: Any = {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                      "required": ["query"], "additionalProperties": False}
SEARCH: Any = {"type": "tool_search", "execution": "client", "description": "Search the MCP tools by keyword.",
               "parameters": SEARCH_SCHEMA}
EVENTS: Any = {"type": "function", "name": "list_events", "description": "List calendar events.", "strict": False,
               "defer_loading": True,
               "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}}
MAIL_SEND: Any = {"type": "function", "name": "send_mail", "description": "Send an e-mail.", "defer_loading": True,
                  "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}
MAIL: Any = {"type": "namespace", "name": "mcp__mail", "description": "The mail server's tools.",
             "tools": [MAIL_SEND]}


@pytest.fixture(scope="module")
def live(two_upstreams_live: Live) -> Live:
    return two_upstreams_live


def search_call(call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_search_call", "call_id": call_id, "arguments": {"query": "calendar"},
            "execution": "client", "status": "completed"}


def search_output(tools: list[Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_search_output", "call_id": call_id, "execution": "client", "status": "completed",
            "tools": tools}


def test_the_search_is_a_function_upstream_and_its_call_a_tool_search_call(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(completion_calling("tool_search", {"query": "calendar", "limit": 3}))
    raw = client.responses.with_raw_response.create(model="oai/gpt-5.5", input=[USER], store=False,
                                                    tools=[EXEC, SEARCH, EVENTS, MAIL])
    assert raw.http_response.status_code == 200, raw.http_response.text
    validate("Response", raw.http_response.json())
    r = raw.parse()
    tools = upstream_tools(sent(upstream))
    assert list(tools) == ["exec_command", "tool_search"]   # the deferred ones are not sent
    assert tools["tool_search"] == {"description": "Search the MCP tools by keyword.", "schema": SEARCH_SCHEMA}
    (call,) = r.output
    assert call.type == "tool_search_call"
    assert (call.call_id, call.arguments, call.execution, call.status) == (
        "call_1", {"query": "calendar", "limit": 3}, "client", "completed")
    assert [t.type for t in r.tools] == ["function", "tool_search", "function", "namespace"]


def test_a_search_output_answers_the_call_and_loads_its_tools_for_later_turns(live: Live,
                                                                             upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(completion_calling("list_events", {"day": "today"}))
    history: Any = [USER, search_call(), search_output([EVENTS, MAIL])]
    r = client.responses.create(model="oai/gpt-5.5", input=history, tools=[EXEC, SEARCH, EVENTS, MAIL])
    body = sent(upstream)
    assert list(upstream_tools(body)) == ["exec_command", "tool_search", "list_events", "send_mail"]
    assistant, result = body["messages"][1], body["messages"][2]
    assert assistant["tool_calls"][0]["function"] == {"name": "tool_search", "arguments": '{"query": "calendar"}'}
    assert result["role"] == "tool" and result["tool_call_id"] == "call_1"
    assert "list_events" in result["content"] and "send_mail" in result["content"]
    (call,) = r.output
    assert (call.type, call.name) == ("function_call", "list_events")  # type: ignore[union-attr]

    # the next turn by previous_response_id: the stored search output still loads them
    upstream.queue(completion_calling("send_mail", {"to": "a@example.com"}))
    again = client.responses.create(model="oai/gpt-5.5", previous_response_id=r.id, tools=[EXEC, SEARCH, EVENTS, MAIL],
                                    input=[{"type": "function_call_output", "call_id": "call_1", "output": "none"}])
    assert list(upstream_tools(sent(upstream))) == ["exec_command", "tool_search", "list_events", "send_mail"]
    (mail,) = again.output
    assert (mail.name, mail.namespace) == ("send_mail", "mcp__mail")  # type: ignore[union-attr]


def test_a_search_output_loads_a_tool_the_request_does_not_list(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(anthropic_text("Found it."))
    found: Any = {k: v for k, v in EVENTS.items() if k != "defer_loading"}
    r = client.responses.create(model="anth/claude-sonnet-4-5", input=[USER, search_call(), search_output([found])],
                                tools=[SEARCH], store=False)
    assert r.output_text == "Found it."
    tools = upstream_tools(sent(upstream))
    assert list(tools) == ["tool_search", "list_events"]
    assert tools["list_events"]["schema"] == EVENTS["parameters"]


def test_a_streamed_search_call_is_its_added_and_done_items(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(anthropic_stream_calling("tool_search", {"query": "mail \"drafts\""}, pieces=4))
    types, added = [], None
    with client.responses.stream(model="anth/claude-sonnet-4-5", input=[USER], tools=[SEARCH, MAIL]) as stream:
        for event in stream:
            types.append(event.type)
            validate_responses_event(event.model_dump(mode="json", exclude_unset=True, warnings=False))
            if event.type == "response.output_item.added":
                added = event.item
        final = stream.get_final_response()
    assert added is not None and added.type == "tool_search_call" and added.status == "in_progress"
    assert not any("arguments" in t for t in types)
    (call,) = final.output
    assert call.type == "tool_search_call"
    assert (call.call_id, call.arguments, call.status) == ("toolu_1", {"query": 'mail "drafts"'}, "completed")
    assert list(upstream_tools(sent(upstream))) == ["tool_search"]


def test_a_deferred_tool_called_before_it_is_loaded_comes_back_as_a_call(live: Live, upstream: Upstream) -> None:
    client = live.openai()
    upstream.queue(completion_calling("list_events", {"day": "today"}))
    r = client.responses.create(model="oai/gpt-5.5", input=[USER], tools=[SEARCH, EVENTS], store=False)
    (call,) = r.output
    assert (call.type, call.name, json.loads(call.arguments)) == (  # type: ignore[union-attr]
        "function_call", "list_events", {"day": "today"})


def test_bad_search_items_name_the_field(live: Live) -> None:
    with live.http() as http:
        for item, param in ((search_output(None), "input[1].tools"),  # type: ignore[arg-type]
                            ({**search_output([]), "call_id": None}, "input[1].call_id"),
                            ({**search_call(), "execution": "elsewhere"}, "input[1].execution"),
                            ({k: v for k, v in search_call().items() if k != "arguments"}, "input[1].arguments")):
            r = http.post("/v1/responses", json={"model": "oai/gpt-5.5", "input": [USER, item], "tools": [SEARCH]})
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
        r = http.post("/v1/responses", json={"model": "oai/gpt-5.5", "input": "hi", "tools": [{"type": "tool_search"}]})
        assert r.status_code == 400 and "openai-responses" in r.json()["error"]["message"], r.text


def test_the_search_and_deferred_tools_pass_unchanged_to_openai(relay: tuple[Live, VerifyingUpstream]) -> None:
    live, upstream = relay
    history: Any = [USER, search_call(), search_output([EVENTS])]
    live.openai().responses.create(model="openai-responses/gpt-5.5", input=history, tools=[SEARCH, EVENTS, MAIL],
                                   store=False)
    body = upstream.bodies["openai"][-1]
    assert body["tools"] == [SEARCH, EVENTS, MAIL]
    assert body["input"][1] == history[1] and body["input"][2] == history[2]


# --------------------------------------------------------------------------- tool_choice


def test_a_choice_forcing_the_client_search_forces_its_function(live: Live, upstream: Upstream) -> None:
    """``tool_choice: {"type": "tool_search"}`` was a 400 ("expected 'function' or
    'allowed_tools'"); it forces the function the search goes upstream as, and is echoed as sent."""
    upstream.queue(completion_calling("tool_search", {"query": "calendar"}))
    choice: Any = {"type": "tool_search"}
    r = live.openai().responses.create(model="oai/gpt-5.5", input=[USER], tools=[EXEC, SEARCH, EVENTS],
                                       tool_choice=choice, store=False)
    body = sent(upstream)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "tool_search"}}
    assert list(upstream_tools(body)) == ["exec_command", "tool_search"]
    (call,) = r.output
    assert call.type == "tool_search_call" and r.model_dump(warnings=False)["tool_choice"] == choice
    allowed: Any = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "tool_search"}]}
    upstream.queue(completion_calling("tool_search", {"query": "mail"}))
    live.openai().responses.create(model="oai/gpt-5.5", input=[USER], tools=[EXEC, SEARCH], tool_choice=allowed,
                                   store=False)
    assert list(upstream_tools(sent(upstream))) == ["tool_search"] and sent(upstream)["tool_choice"] == "required"


def test_a_choice_forcing_a_deferred_tool_loads_it_for_that_turn(live: Live, upstream: Upstream) -> None:
    """Naming a deferred tool no search has loaded was a 400 saying the request does not have it;
    the forced call needs its definition, so it goes upstream for this turn only."""
    client = live.openai()
    upstream.queue(completion_calling("list_events", {"day": "today"}))
    r = client.responses.create(model="oai/gpt-5.5", input=[USER], tools=[SEARCH, EVENTS, MAIL], store=False,
                                tool_choice={"type": "function", "name": "list_events"})
    body = sent(upstream)
    assert list(upstream_tools(body)) == ["tool_search", "list_events"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "list_events"}}
    (call,) = r.output
    assert (call.type, call.name) == ("function_call", "list_events")  # type: ignore[union-attr]
    upstream.queue(anthropic_text("Sent."))
    client.responses.create(model="anth/claude-sonnet-4-5", input=[USER], tools=[SEARCH, EVENTS, MAIL], store=False,
                            tool_choice={"type": "function", "name": "send_mail"})   # a namespace's member
    body = sent(upstream)
    assert list(upstream_tools(body)) == ["tool_search", "send_mail"]
    assert body["tool_choice"] == {"type": "tool", "name": "send_mail"}
    upstream.queue(anthropic_text("Later."))   # the next turn without the choice: deferred again
    client.responses.create(model="anth/claude-sonnet-4-5", input=[USER], tools=[SEARCH, EVENTS, MAIL], store=False)
    assert list(upstream_tools(sent(upstream))) == ["tool_search"]


def test_a_choice_forcing_a_search_the_request_lacks_is_a_clear_400(live: Live) -> None:
    with live.http() as http:
        r = http.post("/v1/responses", json={"model": "oai/gpt-5.5", "input": "hi", "tools": [EXEC],
                                             "tool_choice": {"type": "tool_search"}})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "tool_choice" and "no client-executed tool search" in error["message"]


def test_a_choice_forcing_the_search_passes_unchanged_to_openai(relay: tuple[Live, VerifyingUpstream]) -> None:
    live, upstream = relay
    choice: Any = {"type": "tool_search"}
    live.openai().responses.create(model="openai-responses/gpt-5.5", input=[USER], tools=[SEARCH, EVENTS],
                                   tool_choice=choice, store=False)
    body = upstream.bodies["openai"][-1]
    assert body["tool_choice"] == choice and body["tools"] == [SEARCH, EVENTS]
