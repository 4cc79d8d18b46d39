"""``item_reference`` input items, put back as the stored items they name.

The Vercel AI SDK's OpenAI provider (``openai(...)``, the Responses API, ``store`` left on as
OpenAI's default) sends every assistant message and reasoning item of an earlier step of a tool
loop as ``{"type": "item_reference", "id": "msg_..."}`` rather than the item itself: OpenAI keeps
what it answered, so the id is enough. The gateway keeps its stored Responses too (:mod:`.state`),
so a reference is looked up among the caller's own stored responses and replaced by the item,
before anything else reads the input: a model that wrote a sentence before calling a tool (Claude
nearly always does) would otherwise end the loop with a 400 on its second step. A reference to an
item that is not stored for this key (never made, deleted, expired, ``store: false``, another key's)
is a 400 naming it, as OpenAI answers. An item of a response that ran local-only keeps the
request that replays it local-only, as ``previous_response_id`` does for a whole conversation
(:func:`resolve_item_references` names such a reference; the route tightens the policy): it was
sent to whatever model the request named, a cloud one included. A stored item of a kind only
OpenAI's Responses API takes (a built-in tool's call, a ``compaction``, a ``program``: what an
``openai-responses/...`` turn answered) put back for a model another provider serves is the route's
400, naming the reference (``items.builtin_item_refused``): left out, the conversation would lose it
without a word.
"""

from __future__ import annotations

from ..fields import bad
from .state import ResponseStore
from .wire import ResponsesRequest


async def resolve_item_references(req: ResponsesRequest, store: ResponseStore, owner: str) -> str | None:
    """Replace each ``item_reference`` in ``req``'s input (and in the input as sent, which a relay
    to OpenAI's Responses API may forward verbatim) with the stored item it names; returns the id
    of the first one whose response ran local-only (None: none did)."""
    local_only: str | None = None
    for i, item in enumerate(req.input_items):
        if item["type"] != "item_reference":
            continue
        found = await store.find_item(item["id"], owner)
        if found is None:
            raise bad(f"input[{i}].id", f"no stored item {item['id']!r} (it does not exist, its response was deleted, "
                                        "expired, made with another API key or not stored: store=false); send the "
                                        "item itself instead of a reference")
        if found.local_only and local_only is None:
            local_only = item["id"]
        req.input_items[i] = found.item
        req.references[i] = item["id"]
        if i < len(req.sent_input):
            req.sent_input[i] = found.item
    return local_only
