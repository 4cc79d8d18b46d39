"""``item_reference`` to a stored item of a kind only OpenAI's Responses API takes.

OpenAI's Responses API defines more input items than a message, a function call and its output, a
reasoning item or a custom tool's (openai-python 3.60's ``ResponseInputItemParam``): built-in tools'
calls (``web_search_call``, the hosted ``tool_search_output``...), and items that are no tool's
(``compaction``, ``program``/``program_output``, ``additional_tools``, ``configuration_update``,
``compaction_trigger``). An ``openai-responses/...`` turn stores them as it answered them. Named by
an ``item_reference`` in a request for a model another provider serves, a built-in tool's item was a
400 naming its type (not the reference the client sent), and the others were left out without a
word: a compacted conversation lost. Each is now a 400 naming the reference. Sent as input to
OpenAI's Responses API, the latter were a 400 ("unknown input item type"): they are relayed as sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from cloverleaf.server.responses.api import responses_of
from cloverleaf.server.responses.state import StoredResponse

from .conftest import Live
from .verifying_upstream import VerifyingUpstream, gateway_on

#: What an ``openai-responses/...`` turn may have answered (shapes from openai-python 3.60).
OPENAI_ANSWERED: list[dict[str, Any]] = [
    {"type": "compaction", "id": "cmp_7f1", "encrypted_content": "gAAAAB-compacted"},
    {"type": "program", "id": "prg_7f1", "call_id": "call_p", "code": "return 1 + 1", "fingerprint": "fp"},
    {"type": "program_output", "id": "prgo_7f1", "call_id": "call_p", "result": "2", "status": "completed"},
    {"type": "additional_tools", "id": "at_7f1", "role": "developer",
     "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]},
    {"type": "web_search_call", "id": "ws_7f1", "status": "completed", "action": {"type": "search", "query": "x"}},
    {"type": "tool_search_output", "id": "tso_7f1", "execution": "server", "call_id": None, "tools": [],
     "status": "completed"},
]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Live, VerifyingUpstream]]:
    upstream = VerifyingUpstream()
    try:
        with gateway_on(upstream) as live:
            row = StoredResponse(id="resp_openai_turn", owner="open", created_at=time.time(), expires_at=None,
                                 model="openai-responses/gpt-5", provider="openai-responses",
                                 previous_response_id=None, input_items=[],
                                 response={"id": "resp_openai_turn", "output": OPENAI_ANSWERED})
            asyncio.run(responses_of(live.state).save(row))
            yield live, upstream
    finally:
        upstream.close()


@pytest.mark.parametrize("item", OPENAI_ANSWERED, ids=[i["type"] for i in OPENAI_ANSWERED])
def test_a_reference_to_an_openai_only_item_for_another_provider_is_a_400_naming_it(
        served: tuple[Live, VerifyingUpstream], item: dict[str, Any]) -> None:
    live, upstream = served
    before = len(upstream.bodies["anthropic"])
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().responses.create(model="anthropic/claude-sonnet-4-5", input=[
            {"role": "user", "content": "Go on."}, {"type": "item_reference", "id": item["id"]}])
    assert caught.value.param == "input[1].id"
    assert f"the item_reference {item['id']!r} names a stored {item['type']!r} item" in caught.value.message
    assert len(upstream.bodies["anthropic"]) == before   # nothing sent, nothing dropped


def test_a_compaction_item_is_relayed_to_openai_as_sent(served: tuple[Live, VerifyingUpstream]) -> None:
    live, upstream = served
    compaction: Any = {"type": "compaction", "encrypted_content": "gAAAAB-compacted"}
    reply = live.openai().responses.create(model="openai-responses/gpt-4.1", store=False,
                                           input=[compaction, {"role": "user", "content": "Go on."}])
    assert reply.output_text == "echo: Go on."
    assert upstream.bodies["openai"][-1]["input"][0] == compaction


def test_a_compaction_item_for_another_provider_is_a_400(served: tuple[Live, VerifyingUpstream]) -> None:
    live, _ = served
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().responses.create(model="anthropic/claude-sonnet-4-5", input=[
            {"type": "compaction", "encrypted_content": "gAAAAB-compacted"}, {"role": "user", "content": "Go on."}])
    assert caught.value.param == "input[0].type" and "OpenAI's Responses API's own" in caught.value.message
