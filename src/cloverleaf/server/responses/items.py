"""Responses API *items* <-> cloverleaf's neutral messages and parts.

The Responses API speaks in a flat list of items where Chat Completions speaks in
messages: a user or system turn is a ``message`` item, but an assistant turn is the items
the model produced — ``reasoning``, ``message`` (``output_text``), ``function_call`` — and a
tool result is a ``function_call_output`` item. This module is the one translation both
ways, used for a request's ``input``, for the history rebuilt from the store
(``previous_response_id``), and for a response's ``output``:

- :func:`normalise_input` checks a request's ``input`` (a string or a list of items) field by
  field (a 400 names the exact item) and returns it in its canonical form, every item with
  an ``id`` — what ``GET /v1/responses/{id}/input_items`` lists and what the store keeps;
- :func:`items_to_messages` turns canonical items into neutral messages, joining a run of
  assistant items into one assistant turn (Anthropic needs its thinking and ``tool_use``
  blocks in the same message);
- custom (freeform) tool calls and namespaced function calls go both ways through the
  request's :class:`.client_tools.ToolNames` (the upstream knows them as flat function tools);
- a client-run ``tool_search_call`` is a call of the ``tool_search`` function, its
  ``tool_search_output`` that call's result (:mod:`.tool_search`);
- :func:`output_items` turns a neutral answer's parts into output items; a text part marked
  ``extra["refusal"]`` (OpenAI's ``message.refusal``) is a ``refusal`` content part, as OpenAI
  sends it, never ``output_text`` a client would parse as the answer.

Reasoning round-trips through ``encrypted_content``: a provider's opaque reasoning data
(Anthropic's thinking signature, an OpenAI ``rs_`` id and its encrypted content, Gemini's
thought signature) has no field of its own in the Responses API, so the gateway packs
it as ``clv1:`` + base64(JSON) and unpacks it when the item comes back — from the store or
from a client that manages its own history (the Agents SDK sends the items back whole).
A function call's provider data (Gemini's thought signature, which Gemini requires back with
the call) rides the same way in the call item's ``id``, after a ``~``: the Responses API has no
other field a client is sure to send back unchanged.
Which provider made it is not in the client's copy (a stream cannot know it when the item
closes, and both renderings must agree); the store adds it when it rebuilds a history. Every
reasoning item the gateway renders is packed, even one with nothing opaque to carry (a Chat
Completions upstream's ``reasoning_content``): an unpacked item is OpenAI's own (relayed from
``openai-responses/...``, or one the client got from OpenAI), whose ``rs_`` id and encrypted
content are kept for OpenAI's Responses API and dropped for every other provider — as a packed
``rs_`` signature is when the client's copy does not say which provider made it.
A run of consecutive reasoning parts is one reasoning item, one summary part each, both
streamed and not, so a stream folds to the same items as the non-streamed answer.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from typing import Any

from ... import _jsoncodec as jsoncodec
from ..._types import Attachment, ChatResponse, Message, Part, Reasoning, Role, Text, ToolCall, ToolResult
from ...providers.openai.responses_messages import ITEM_ID
from ...streams.accumulate import parse_arguments
from ..errors import BadRequest
from ..fields import (
    as_dict,
    bad,
    base64_attachment,
    get_list,
    get_name,
    get_str,
    image_detail,
    remote_or_inline,
    too_deep,
)
from .client_tools import ToolNames, input_arguments
from .tool_search import (
    SEARCH_ITEMS,
    TOOL_SEARCH,
    call_arguments,
    check_output_tools,
    is_client_search_item,
    result_text,
)

#: Prefix of the gateway's own ``encrypted_content`` (versioned: the format may change).
PACKED = "clv1:"
#: Item types that belong to built-in tools the gateway does not run for other providers.
BUILTIN_ITEMS = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
    "image_generation_call", "local_shell_call", "local_shell_call_output", "mcp_call", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response",
    "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output",
})
#: Item types of OpenAI's Responses API that are no tool's and have no neutral form (an encrypted
#: ``compaction`` of the conversation so far, programmatic tool calling's ``program`` and its
#: output, tools or settings changed mid-conversation): relayed as sent to OpenAI's Responses API,
#: refused for any other provider, like a built-in tool's (openai-python 3.60's ResponseInputItemParam).
OPENAI_ONLY_ITEMS = frozenset({
    "compaction", "compaction_trigger", "program", "program_output", "additional_tools", "configuration_update",
})
_ROLES = {"user", "system", "developer", "assistant"}
_PREFIX = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_",
           "custom_tool_call": "ctc_", "custom_tool_call_output": "ctco_", "tool_search_call": "tsc_",
           "tool_search_output": "tso_"}
#: A custom (freeform) tool's call and its result: client-run, so every provider serves them
#: (:mod:`.client_tools`); OpenAI's Responses API gets them verbatim on a relay.
CUSTOM_ITEMS = frozenset({"custom_tool_call", "custom_tool_call_output"})


#: An id the gateway gave a built-in tool item that came without one (never sent upstream).
GATEWAY_ITEM_ID = re.compile(r"item_[0-9a-f]{24}")
#: The id the gateway gives a reasoning item it renders (OpenAI's own are longer).
GATEWAY_REASONING_ID = re.compile(r"rs_[0-9a-f]{24}")
#: The row whose kind made a reasoning item in OpenAI's own format (an ``rs_`` id, its encryption).
OPENAI_RESPONSES = "openai-responses"


def new_item_id(kind: str) -> str:
    return _PREFIX.get(kind, "item_") + os.urandom(12).hex()


# =========================================================================== input


def normalise_input(raw: Any, where: str = "input") -> list[dict[str, Any]]:
    """The request's ``input`` as canonical items (each with ``type`` and ``id``).

    A built-in tool's item (``web_search_call``, ``computer_call_output``...) is kept as sent
    (given an ``id`` if it has none, for ``input_items`` paging): only OpenAI's Responses API
    knows its shape, and only a route to it accepts one (:func:`builtin_item_refused`)."""
    if isinstance(raw, str):
        return [_message_item("user", [{"type": "input_text", "text": raw}])]
    if not isinstance(raw, list):
        raise bad(where, "expected a string or an array of input items")
    return [_item(as_dict(item, f"{where}[{i}]"), f"{where}[{i}]") for i, item in enumerate(raw)]


def relayed_verbatim(item: dict[str, Any]) -> bool:
    """Does OpenAI's Responses API need this item as the client sent it, not re-encoded from the
    neutral messages? A built-in tool's item, a custom tool's, and a namespaced function call
    (the neutral form keeps neither the freeform shape nor the namespace)."""
    kind = item["type"]
    return (_builtin(item) or kind in CUSTOM_ITEMS or kind in SEARCH_ITEMS
            or (kind == "function_call" and "namespace" in item))


def _builtin(item: dict[str, Any]) -> bool:
    """An item only OpenAI's Responses API takes: a tool's only it runs (its hosted tool search's
    included), one of :data:`OPENAI_ONLY_ITEMS`, or a kind the gateway does not know (a stored
    answer of OpenAI's, of a kind newer than this list)."""
    kind = item["type"]
    return (kind in BUILTIN_ITEMS or kind in OPENAI_ONLY_ITEMS or kind not in _PREFIX
            or (kind in SEARCH_ITEMS and not is_client_search_item(item)))


def builtin_item_refused(items: list[dict[str, Any]], model: str,
                         references: dict[int, str] | None = None) -> BadRequest | None:
    """The 400 for the first item in ``items`` only OpenAI's Responses API takes, for a model
    another provider serves; ``references``: the inputs an ``item_reference`` put there, by index."""
    for i, item in enumerate(items):
        kind = item["type"]
        if not _builtin(item):
            continue
        what = ("belong to built-in tools, which only OpenAI's Responses API runs" if kind in BUILTIN_ITEMS
                or kind in SEARCH_ITEMS else "are OpenAI's Responses API's own, which no other provider can take")
        ref = (references or {}).get(i)
        if ref is not None:
            return bad(f"input[{i}].id", f"the item_reference {ref!r} names a stored {kind!r} item; such items "
                                         f"{what}, and model {model!r} is served by another provider (left out, the "
                                         "conversation would lose it). Send what it said as a message instead, or "
                                         "use an openai-responses/... model")
        return bad(f"input[{i}].type", f"{kind!r} items {what}; model {model!r} is served by another provider. "
                                       "Drop the item, or use an openai-responses/... model")
    return None


def _message_item(role: str, content: list[dict[str, Any]], item_id: str | None = None,
                  status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id or new_item_id("message"), "role": role, "content": content,
            "status": status}


def _item(item: dict[str, Any], where: str) -> dict[str, Any]:
    kind = get_str(item, "type", where, default="message")
    item_id = get_str(item, "id", where)
    if kind == "message":
        role = get_str(item, "role", where, required=True)
        if role not in _ROLES:
            raise bad(f"{where}.role", f"unknown role {role!r}; expected user, system, developer or assistant")
        content = _content(item.get("content"), f"{where}.content", assistant=role == "assistant")
        return _message_item(role, content, item_id)
    if kind == "function_call":
        arguments = get_str(item, "arguments", where, default="") or ""
        if jsoncodec.nesting_exceeds(arguments):
            raise too_deep(f"{where}.arguments", jsoncodec.MAX_DEPTH)
        call = {"type": "function_call", "id": item_id or new_item_id(kind), "call_id": get_name(item, "call_id", where),
                "name": get_name(item, "name", where), "arguments": arguments, "status": "completed"}
        return _with_namespace(call, item, where)
    if kind == "custom_tool_call":
        custom = {"type": kind, "id": item_id or new_item_id(kind), "call_id": get_name(item, "call_id", where),
                  "name": get_name(item, "name", where), "input": get_str(item, "input", where, required=True)}
        return _with_namespace(custom, item, where)
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        if isinstance(output, list):
            output = [_input_part(as_dict(p, f"{where}.output[{i}]"), f"{where}.output[{i}]")
                      for i, p in enumerate(output)]
        elif not isinstance(output, str):
            raise bad(f"{where}.output", "expected a string or an array of input_text/input_image/input_file parts")
        result = {"type": kind, "id": item_id or new_item_id(kind), "call_id": get_name(item, "call_id", where),
                  "output": output}
        return result if kind == "custom_tool_call_output" else {**result, "status": "completed"}
    if kind == "reasoning":
        summary = []
        for i, s in enumerate(get_list(item, "summary", where) or []):
            s = as_dict(s, f"{where}.summary[{i}]")
            summary.append({"type": "summary_text", "text": get_str(s, "text", f"{where}.summary[{i}]", default="")})
        out: dict[str, Any] = {"type": "reasoning", "id": item_id or new_item_id(kind), "summary": summary}
        reasoning_content = get_list(item, "content", where)
        if reasoning_content:
            out["content"] = [{"type": "reasoning_text", "text": get_str(as_dict(c, f"{where}.content[{i}]"), "text",
                                                                          f"{where}.content[{i}]", default="")}
                              for i, c in enumerate(reasoning_content)]
        encrypted = get_str(item, "encrypted_content", where)
        if encrypted:
            out["encrypted_content"] = encrypted
        return out
    if kind in SEARCH_ITEMS:
        return _search_item(kind, item, item_id, where)
    if kind == "item_reference":  # a stored item by its id: the route puts the item in its place (.item_refs)
        ref_id = get_name(item, "id", where)
        if "\x00" in ref_id:   # no id holds one (PostgreSQL would refuse to look)
            raise bad(f"{where}.id", "must not contain NUL characters (\\u0000): send the id an item was given")
        return {"type": "item_reference", "id": ref_id}
    if kind in BUILTIN_ITEMS or kind in OPENAI_ONLY_ITEMS:  # relayed verbatim on a passthrough route; refused elsewhere
        return {**item, "id": item_id or new_item_id(kind)}
    raise bad(f"{where}.type", f"unknown input item type {kind!r}; expected message, function_call, "
                               "function_call_output, custom_tool_call, custom_tool_call_output, "
                               "tool_search_call, tool_search_output, reasoning or item_reference")


def _search_item(kind: str, item: dict[str, Any], item_id: str | None, where: str) -> dict[str, Any]:
    """A tool search's call or output. The hosted search's (``execution: "server"``) is kept as
    sent, as a built-in tool's item; the client's is checked."""
    execution = get_str(item, "execution", where) or "client"
    if execution not in ("client", "server"):
        raise bad(f"{where}.execution", f"expected 'client' or 'server', got {execution!r}")
    if execution == "server":
        return {**item, "id": item_id or new_item_id(kind)}
    out: dict[str, Any] = {"type": kind, "id": item_id or new_item_id(kind),
                           "call_id": get_name(item, "call_id", where), "execution": "client"}
    if kind == "tool_search_call":
        if "arguments" not in item:
            raise bad(f"{where}.arguments", "a tool_search_call needs its arguments (an object)")
        if jsoncodec.nesting_exceeds(call_arguments(item)):
            raise too_deep(f"{where}.arguments", jsoncodec.MAX_DEPTH)
        out["arguments"] = item["arguments"]
    else:
        out["tools"] = check_output_tools(item, where)
    return {**out, "status": "completed"}


def _with_namespace(call: dict[str, Any], item: dict[str, Any], where: str) -> dict[str, Any]:
    """A call item with the ``namespace`` of its tool kept (a namespace tool's member)."""
    namespace = get_str(item, "namespace", where)
    return {**call, "namespace": namespace} if namespace else call


def _content(raw: Any, where: str, *, assistant: bool) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"type": "output_text", "text": raw, "annotations": []} if assistant
                else {"type": "input_text", "text": raw}]
    if not isinstance(raw, list):
        raise bad(where, "expected a string or an array of content parts")
    out = []
    for i, part in enumerate(raw):
        at = f"{where}[{i}]"
        part = as_dict(part, at)
        kind = get_str(part, "type", at, required=True)
        if assistant and kind == "output_text":
            out.append({"type": "output_text", "text": get_str(part, "text", at, required=True), "annotations": []})
        elif assistant and kind == "refusal":
            out.append({"type": "refusal", "refusal": get_str(part, "refusal", at, required=True)})
        elif assistant and kind == "input_text":  # lenient: some clients echo assistant text this way
            out.append({"type": "output_text", "text": get_str(part, "text", at, required=True), "annotations": []})
        elif not assistant:
            out.append(_input_part(part, at))
        else:
            raise bad(f"{at}.type", f"an assistant message holds output_text or refusal parts, not {kind!r}")
    return out


def _input_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = get_str(part, "type", where, required=True)
    if kind == "input_text":
        return {"type": "input_text", "text": get_str(part, "text", where, required=True)}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise bad(f"{where}.file_id", "file ids are not supported (there is no Files API); send image_url")
        url = get_str(part, "image_url", where, required=True)
        remote_or_inline(url, "image", f"{where}.image_url")  # refuses file:// and local paths now
        return {"type": "input_image", "image_url": url, "detail": image_detail(part, where) or "auto"}
    if kind == "input_file":
        if part.get("file_id") is not None:
            raise bad(f"{where}.file_id", "file ids are not supported (there is no Files API); send file_data or "
                                          "file_url")
        out: dict[str, Any] = {"type": "input_file"}
        data, url = get_str(part, "file_data", where), get_str(part, "file_url", where)
        if data is None and url is None:
            raise bad(where, "an input_file needs file_data (base64 or a data: URL) or file_url")
        if url is not None:
            remote_or_inline(url, None, f"{where}.file_url")
            out["file_url"] = url
        else:
            out["file_data"] = data
        filename = get_str(part, "filename", where)
        if filename:
            out["filename"] = filename
        return out
    raise bad(f"{where}.type", f"unknown content part type {kind!r}; expected input_text, input_image or input_file")


# =========================================================================== items -> messages


def items_to_messages(items: list[dict[str, Any]], names: ToolNames | None = None) -> list[Message]:
    """Canonical items (already checked) as neutral messages, assistant runs joined. ``names``:
    the request's custom and namespaced tools, whose calls the upstream knows by flat names."""
    messages: list[Message] = []
    assistant: list[Part] | None = None
    names = names or ToolNames()
    for item in items:
        kind = item["type"]
        if _builtin(item) or kind not in _PREFIX:
            continue  # a relayed built-in tool call: its result is in the message that follows
        if kind in ("reasoning", "function_call", "custom_tool_call", "tool_search_call") or (
                kind == "message" and item["role"] == "assistant"):
            if assistant is None:
                assistant = []
                messages.append(Message(Role.ASSISTANT, parts=assistant))
            assistant.extend(_assistant_parts(item, names))
            continue
        assistant = None
        if kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(Message(Role.TOOL, parts=[ToolResult(item["call_id"], _tool_output(item["output"]))]))
        elif kind == "tool_search_output":
            messages.append(Message(Role.TOOL, parts=[ToolResult(item["call_id"], result_text(item))]))
        elif item["role"] in ("system", "developer") and all(p["type"] == "input_text" for p in item["content"]):
            messages.append(Message(Role.SYSTEM, "".join(p.get("text", "") for p in item["content"])))
        elif item["role"] in ("system", "developer"):   # an image there: the engine judges who can take it
            messages.append(Message(Role.SYSTEM, parts=[_part(p) for p in item["content"]]))
        else:
            messages.append(Message(Role.USER, parts=[_part(p) for p in item["content"]]))
    return messages


def _assistant_parts(item: dict[str, Any], names: ToolNames) -> list[Part]:
    kind = item["type"]
    if kind == "reasoning":
        parts: list[Part] = [*reasoning_parts(item)]
        return parts
    if kind == "tool_search_call":
        raw = call_arguments(item)
        return [ToolCall(id=item["call_id"], name=TOOL_SEARCH, arguments=parse_arguments(raw), raw_arguments=raw)]
    if kind in ("function_call", "custom_tool_call"):
        custom = kind == "custom_tool_call"
        raw = input_arguments(item["input"]) if custom else item.get("arguments") or ""
        base, extra = split_call_item_id(item.get("id"))
        name = names.flat(item["name"], item.get("namespace"), "custom" if custom else "function")
        return [ToolCall(id=item["call_id"], name=name, arguments=parse_arguments(raw), raw_arguments=raw,
                         extra={ITEM_ID: base, **extra} if base else (extra or None))]
    text = "".join(p.get("text") or p.get("refusal") or "" for p in item["content"])
    return [Text(text, extra={ITEM_ID: item["id"]} if item.get("id") else None)] if text else []


def _tool_output(output: str | list[dict[str, Any]]) -> str | list[Text | Attachment]:
    if isinstance(output, str):
        return output
    return [_part(p) for p in output]


def _part(part: dict[str, Any]) -> Text | Attachment:
    kind = part["type"]
    if kind == "input_text":
        return Text(part["text"])
    if kind == "input_image":
        image = remote_or_inline(part["image_url"], "image", "input_image.image_url")
        # "auto" is what an image with no detail means on both OpenAI APIs: carried as not given
        image.detail = part.get("detail") if part.get("detail") in ("low", "high") else None
        return image
    if "file_url" in part:
        att = remote_or_inline(part["file_url"], None, "input_file.file_url")
    else:
        data = part["file_data"]
        att = Attachment(source=data) if data[:5].lower() == "data:" else base64_attachment(data, None, None)
    att.filename = part.get("filename")
    return att


def reasoning_parts(item: dict[str, Any]) -> list[Reasoning]:
    texts = [s.get("text") or "" for s in item.get("summary") or ()]
    if not texts:
        texts = ["".join(c.get("text") or "" for c in item.get("content") or ())]
    packed = unpack(item.get("encrypted_content"))
    if packed is not None:
        parts = [Reasoning(texts[i] if i < len(texts) else "", signature=p.get("s"), redacted=p.get("r"),
                           provider=p.get("p") or _maker(p.get("s"))) for i, p in enumerate(packed)]
        return parts or [Reasoning(t) for t in texts]
    encrypted = item.get("encrypted_content") or None
    item_id = item.get("id")
    if encrypted is None and GATEWAY_REASONING_ID.fullmatch(str(item_id or "")):
        # the gateway's own rendering from before every one was packed: its id is no signature
        return [Reasoning(t) for t in texts]
    # an item from OpenAI's own Responses API (relayed, or the client's): its id and encrypted
    # content verify there, and only there
    parts = [Reasoning(t, signature=item_id, provider=OPENAI_RESPONSES) for t in texts]
    parts[-1].redacted = encrypted
    return parts


def _maker(signature: str | None) -> str | None:
    """The provider a packed signature came from, when the client's copy does not say (only the
    store knows the row): an ``rs_`` id is an OpenAI Responses item; other signatures are opaque."""
    return OPENAI_RESPONSES if signature is not None and signature.startswith("rs_") else None


# =========================================================================== parts -> output


def pack(parts: list[Reasoning]) -> str:
    """The opaque reasoning data of a run of parts, packed even when there is none: an item the
    gateway rendered must never come back looking like OpenAI's own, whose id is its signature."""
    data = [{k: v for k, v in (("s", p.signature), ("r", p.redacted)) if v} for p in parts]
    return PACKED + base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")


def reasoning_provider(resp: ChatResponse) -> str:
    """What a stored response's reasoning items are stamped with (:func:`stamp_provider`): the
    provider its reasoning parts carry, which is the row's name except for Claude on Vertex AI
    (marked as Claude's, so it goes back to Claude on Anthropic's API or Bedrock too)."""
    return next((p.provider for p in resp.parts if isinstance(p, Reasoning) and p.provider), resp.provider)


def stamp_provider(item: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """A stored reasoning item with the provider that made it packed in (the store knows it;
    a client never sees it): a conversation that moves to another provider then drops
    reasoning that provider cannot verify, as the SDK does for its own history."""
    packed = unpack(item.get("encrypted_content")) if provider else None
    if not packed:
        return item
    data = [{**p, "p": provider} for p in packed]
    return {**item, "encrypted_content": PACKED + base64.urlsafe_b64encode(
        json.dumps(data, separators=(",", ":")).encode()).decode("ascii")}


def unpack(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, str) or not value.startswith(PACKED):
        return None
    try:
        data = jsoncodec.loads_bounded(base64.urlsafe_b64decode(value[len(PACKED):].encode("ascii")))
    except (ValueError, RecursionError):
        raise bad("encrypted_content", "this reasoning item's encrypted_content is damaged; send it back "
                                       "exactly as it was received") from None
    if not isinstance(data, list) or not all(
            isinstance(d, dict) and all(k in "srp" and isinstance(v, str) for k, v in d.items()) for d in data):
        raise bad("encrypted_content", "this reasoning item's encrypted_content is damaged")
    return data


def call_item_id(base: str, extra: dict[str, Any] | None) -> str:
    """A function call item's id: ``base``, plus the call's provider data when it has any."""
    data = {k: v for k, v in (extra or {}).items() if k != ITEM_ID}
    if not data:
        return base
    return base + "~" + base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")


def split_call_item_id(item_id: str | None) -> tuple[str | None, dict[str, Any]]:
    if not item_id or "~" not in item_id:
        return item_id, {}
    base, _, packed = item_id.partition("~")
    try:
        data = jsoncodec.loads_bounded(base64.urlsafe_b64decode(packed.encode("ascii")))
    except (ValueError, RecursionError):
        raise bad("function_call.id", "this function call's id is damaged; send it back exactly as it was "
                                      "received") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise bad("function_call.id", "this function call's id is damaged")
    return base, data


def reasoning_item(item_id: str, parts: list[Reasoning], status: str = "completed") -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": p.text} for p in parts],
            "encrypted_content": pack(parts), "status": status}


def is_refusal(extra: dict[str, Any] | None) -> bool:
    """Is a text part (or a text event) with these provider extras the model's refusal (OpenAI's
    ``message.refusal``, marked so by the adapter), not its answer?"""
    return extra is not None and extra.get("refusal") is True


def item_extra(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The extras that say which upstream item a text belongs to: all but the refusal mark (a
    refusal is a content part of the same message, not another item)."""
    if not extra or "refusal" not in extra:
        return extra
    return {k: v for k, v in extra.items() if k != "refusal"} or None


def content_part(text: str, *, refusal: bool = False) -> dict[str, Any]:
    """A message's content part: ``output_text``, or a ``refusal`` as OpenAI sends one (the SDK's
    ``responses.parse`` then leaves ``output_parsed`` None instead of parsing the refusal)."""
    if refusal:
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_output(item_id: str, content: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": content}


def _message_content(texts: list[Text]) -> list[dict[str, Any]]:
    """Content parts for a message's texts: a run of answer text is one ``output_text``, a run
    of refusal text one ``refusal``."""
    runs: list[tuple[bool, list[str]]] = []
    for t in texts:
        refusal = is_refusal(t.extra)
        if runs and runs[-1][0] == refusal:
            runs[-1][1].append(t.text)
        else:
            runs.append((refusal, [t.text]))
    return [content_part("".join(pieces), refusal=refusal) for refusal, pieces in runs]


def with_refusal_marked(resp: ChatResponse) -> list[Part]:
    """``resp``'s parts, its text marked as the refusal when the adapter said so only in
    ``ChatResponse.refusal`` (Claude's ``stop_reason: "refusal"`` comes after its text, so the
    Anthropic adapter cannot mark the parts themselves); a refusal with no text gets its words."""
    parts = list(resp.parts)
    refusal = resp.refusal
    if refusal is None or holds_refusal(parts):
        return parts
    if not any(isinstance(p, Text) and p.text for p in parts):
        return [*parts, Text(refusal, extra={"refusal": True})]
    return [dataclasses.replace(p, extra={**(p.extra or {}), "refusal": True}) if isinstance(p, Text) else p
            for p in parts]


def holds_refusal(parts: list[Part]) -> bool:
    """Does the answer hold a refusal (rendered as a ``refusal`` content part)?"""
    return any(isinstance(p, Text) and is_refusal(p.extra) for p in parts)


def function_call_output_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name,
            "arguments": call.arguments_json, "status": status}


def output_items(parts: list[Part], *, cut: bool = False, names: ToolNames | None = None) -> list[dict[str, Any]]:
    """A neutral answer's parts as output items, in order (see the module docstring). ``cut``:
    the answer stopped early (``max_output_tokens``, a content filter), and its last item is
    ``incomplete``, as OpenAI marks the item a cut answer was writing. ``names``: the request's
    custom and namespaced tools, whose calls are rendered as OpenAI renders them."""
    items: list[dict[str, Any]] = []
    run: list[Reasoning] = []
    texts: list[Text] = []

    def flush_reasoning() -> None:
        if run:
            items.append(reasoning_item(new_item_id("reasoning"), list(run)))
            run.clear()

    def flush_text() -> None:
        if texts:
            item_id = (texts[0].extra or {}).get(ITEM_ID) or new_item_id("message")
            items.append(message_output(item_id, _message_content(texts)))
            texts.clear()

    for part in parts:
        if isinstance(part, Reasoning):
            flush_text()
            run.append(part)
        elif isinstance(part, Text):
            flush_reasoning()
            this, last = item_extra(part.extra), item_extra(texts[-1].extra) if texts else None
            if this and last and this != last:
                flush_text()  # another output item upstream (as the stream accumulator decides)
            texts.append(part)
        elif isinstance(part, ToolCall):
            flush_reasoning()
            flush_text()
            kind = names.item_type(part.name) if names else "function_call"
            base = (part.extra or {}).get(ITEM_ID) or new_item_id(kind)
            item_id = call_item_id(base, part.extra)
            items.append(names.call_item(item_id, part) if names else function_call_output_item(item_id, part))
    flush_reasoning()
    flush_text()
    if cut and items and "status" in items[-1]:   # a custom_tool_call has no status (as OpenAI's)
        items[-1]["status"] = "incomplete"
    return items
