"""Encode a neutral ChatRequest as an OpenAI Responses API body (``POST /v1/responses``).

The Responses API takes a flat list of *items* instead of chat messages: user and system
turns are messages, but an assistant turn is split into the items the model produced -
``reasoning``, ``message`` (``output_text``), ``function_call`` - and each tool result is a
``function_call_output`` item. Tools and ``tool_choice`` are flat (no nested ``function``),
structured output lives in ``text.format``.

Choices, each backed by a recorded request the real API accepted (pydantic-ai cassettes):

- System messages become the top-level ``instructions`` (joined), as every recording does.
- An assistant message goes back as the items it came from. When it holds a reasoning item,
  its Text and ToolCall parts go back with their item ids (``extra["item_id"]``, set by this
  adapter's parser): a message item with ``output_text`` content (and ``refusal`` content for
  a Text marked as the refusal; the Texts of one item go back as that one item), a
  ``function_call`` with ``id``. OpenAI rejects a reasoning item not followed by the item it produced ("provided
  without its required following item", recorded 400) and a message id without its reasoning.
  Without reasoning, no ids are sent (as the recordings for non-reasoning models do): Text
  becomes ``{"role": "assistant", "content": ...}``.
- Reasoning parts from this API (``signature`` holds the ``rs_`` item id, ``redacted`` the
  ``encrypted_content``) are re-assembled into one ``reasoning`` item per id with its summary
  list; reasoning from other providers cannot be verified by OpenAI and is dropped.
- Reasoning models (o-series, gpt-5) get ``include: ["reasoning.encrypted_content"]`` so the
  reasoning survives ``store: false`` / zero-data-retention, and no ``temperature``/``top_p``
  (only the defaults are accepted there).
- With ``store: false`` (the provider option, or ``extra_body``) nothing is stored upstream, so
  no item goes back by id: reasoning items are sent with their ``encrypted_content`` and no
  ``id`` (one without encrypted content cannot be verified and is dropped), messages and calls
  without ids (OpenAI answers an id it did not keep with "Item with id ... not found"). Only a
  reasoning model is asked for the encrypted content: gpt-4o and gpt-4.1 refuse the ``include``
  with a 400 "Encrypted content is not supported with this model", and have no reasoning to keep.
- A custom (freeform) tool's call (``ToolCall.extra["type"] == "custom"``, its arguments
  ``{"input": ...}``) goes back as a ``custom_tool_call`` and its result as a
  ``custom_tool_call_output``: OpenAI pairs them by kind.
- The items of tools OpenAI ran (a ``web_search_call`` between reasoning and answer) go back in
  place with a turn sent by id, from a row of this kind (:mod:`.server_items`).
- Reasoning goes back only to a row of this kind (``_common.replayable_reasoning``) and only
  with an ``rs_`` id: another provider's signature is no item of OpenAI's.
- Reasoning summaries are requested only when asked for (``ReasoningConfig(summary=True)`` ->
  ``"auto"``, or ``extra={"reasoning_summary": "detailed"}`` on the provider): OpenAI answers
  a summary request from an unverified organisation with a 400, so it is never a default.
- Function tools always carry ``strict`` (the API requires it and treats a missing value as
  strict): ``Tool.strict=True`` closes the schema (and falls back to ``false`` when the
  schema has optional properties), anything else is sent as ``strict: false``.
- ``stop`` does not exist in the Responses API and raises; ``seed`` does not either and is
  dropped (it is best-effort on Chat Completions too). ``background: true`` (in ``extra_body``)
  raises too: the answer to it is an empty ``queued`` response to poll, which no caller of a
  chat call reads (an unpolled background response still runs, and bills).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..._errors import InvalidRequestError, UnsupportedCapability
from ..._types import (
    Attachment,
    ChatRequest,
    Message,
    Reasoning,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from .._common import WEB_IMAGES, checked_image, replayable_reasoning
from ..extra_tools import with_extra_tools
from ..registry import providers_supporting_operation
from .messages import (
    _effort_from_budget,
    encode_response_format,
    encode_tool,
    is_reasoning_model,
)
from .model_rules import effort_for_model
from .server_items import placed

#: ``include`` value that makes reasoning items carry their encrypted content.
ENCRYPTED_REASONING = "reasoning.encrypted_content"
#: Key in ``Text.extra`` / ``ToolCall.extra`` holding the Responses output item id.
ITEM_ID = "item_id"


def encode_request(req: ChatRequest, options: dict[str, Any], *, provider: str) -> dict[str, Any]:
    """The complete JSON body for ``POST /responses``; ``options`` is ``ProviderConfig.extra``
    (``store``, ``reasoning_summary``). ``extra_body`` is merged last, an object into an
    object one level deep (``{"reasoning": {"effort": "xhigh"}}`` keeps the summary asked for)."""
    if req.stop:
        raise InvalidRequestError(
            "the OpenAI Responses API has no stop sequences; use the openai provider (Chat Completions) "
            "for stop=...", provider=provider, model=req.model)
    if (req.extra_body or {}).get("background"):
        raise InvalidRequestError(
            "the OpenAI Responses API's background mode answers before the response exists (status "
            "'queued') and cloverleaf does not poll for it; drop 'background' from extra_body",
            provider=provider, model=req.model)
    reasoning_model = is_reasoning_model(req.model)
    store = (req.extra_body or {}).get("store", options.get("store", True))
    stateless = store is not None and not bool(store)
    body: dict[str, Any] = {"model": req.model,
                            "input": encode_input(req.messages, provider=provider, stateless=stateless)}
    instructions = req.system_text
    if instructions:
        body["instructions"] = instructions
    if req.stream:
        body["stream"] = True
    if reasoning_model:   # never for others: OpenAI answers "Encrypted content is not supported with this model"
        body["include"] = [ENCRYPTED_REASONING]
    if "store" in options:
        body["store"] = bool(options["store"])
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None and not reasoning_model:
        body["temperature"] = req.temperature
    if req.top_p is not None and not reasoning_model:
        body["top_p"] = req.top_p
    if req.user is not None:
        body["user"] = req.user
    if req.tools:
        body["tools"] = [encode_function_tool(t) for t in req.tools]
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        body["tool_choice"] = encode_tool_choice(req.tool_choice)
    if req.response_format is not None and req.response_format.type != "text":
        fmt = encode_response_format(req.response_format)
        body["text"] = {"format": {"type": fmt["type"], **fmt.get("json_schema", {})}}
    reasoning = encode_reasoning(req, options, reasoning_model)
    if reasoning:
        body["reasoning"] = reasoning
    for key, value in with_extra_tools(body, req.extra_body or {}).items():   # its tools join the caller's
        current = body.get(key)
        body[key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    return body


def encode_reasoning(req: ChatRequest, options: dict[str, Any], reasoning_model: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cfg = req.reasoning
    if cfg is not None:
        effort = cfg.effort or _effort_from_budget(cfg.budget_tokens)
        if effort:
            out["effort"] = effort_for_model(req.model, effort)   # "minimal" is gpt-5's alone
    summary = options.get("reasoning_summary") if reasoning_model or cfg is not None else None
    if cfg is not None and cfg.summary:
        summary = summary or "auto"
    if summary:
        out["summary"] = summary
    return out


def encode_function_tool(tool: Tool) -> dict[str, Any]:
    """The Chat Completions tool, flattened: ``{"type": "function", "name", ..., "strict"}``."""
    fn = encode_tool(tool)["function"]
    fn.setdefault("strict", False)
    return {"type": "function", **fn}


def encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        if not choice.name:
            raise ValueError("ToolChoice(mode='tool') needs a tool name")
        return {"type": "function", "name": choice.name}
    return choice.mode


# --------------------------------------------------------------------------- input items


def encode_input(messages: list[Message], *, provider: str, stateless: bool = False) -> list[dict[str, Any]]:
    """``stateless``: the request has ``store: false``, so no item may go back by its id."""
    items: list[dict[str, Any]] = []
    # the results of custom tools' calls are custom_tool_call_output items
    custom = {p.id for m in messages if m.role is Role.ASSISTANT for p in m.parts
              if isinstance(p, ToolCall) and _is_custom(p)}
    for msg in messages:
        if msg.role is Role.SYSTEM:
            continue  # sent as ``instructions``
        if msg.role is Role.ASSISTANT:
            items.extend(_assistant_items(msg, provider, stateless))
            continue
        rest: list[Any] = []
        for part in msg.parts:
            if isinstance(part, ToolResult):
                output = _tool_output(part, provider)
                if part.tool_call_id in custom:
                    output["type"] = "custom_tool_call_output"
                items.append(output)
            else:
                rest.append(part)
        if rest:
            items.append({"role": "user", "content": _user_content(rest, provider)})
    return items


def _assistant_items(msg: Message, provider: str, stateless: bool) -> list[dict[str, Any]]:
    # Item ids only travel with the reasoning item they belong to: a message id without its
    # reasoning is rejected too, and without reasoning the ids add nothing. Under
    # ``store: false`` none travels: OpenAI kept no item to find by id.
    keep_ids = not stateless and any(isinstance(p, Reasoning) and _is_openai_reasoning(p, provider)
                                     for p in msg.parts)
    items: list[dict[str, Any]] = []
    reasoning: dict[str, Any] | None = None  # the reasoning item being re-assembled
    current: str | None = None  # the rs_ id of that item
    for part in msg.parts:
        if isinstance(part, Reasoning):
            if not _is_openai_reasoning(part, provider):
                continue
            if reasoning is None or current != part.signature:
                current = part.signature
                reasoning = {"type": "reasoning", "id": part.signature, "summary": []}
                if stateless:
                    del reasoning["id"]
                items.append(reasoning)
            if part.text:
                reasoning["summary"].append({"type": "summary_text", "text": part.text})
            if part.redacted:
                reasoning["encrypted_content"] = part.redacted
            continue
        reasoning = None
        if isinstance(part, Text):
            item = _assistant_text(part, keep_ids)
            last = items[-1] if items else None
            if last is not None and "id" in item and last.get("type") == "message" and last.get("id") == item["id"]:
                last["content"].extend(item["content"])  # answer text and refusal of one message item
            else:
                items.append(item)
        elif isinstance(part, ToolCall):
            call: dict[str, Any] = {"type": "function_call", "call_id": part.id, "name": part.name,
                                    "arguments": part.arguments_json}
            if _is_custom(part):   # a custom tool's call goes back as one, its input the text
                text = part.arguments.get("input")
                call = {"type": "custom_tool_call", "call_id": part.id, "name": part.name,
                        "input": text if isinstance(text, str) else part.arguments_json}
            item_id = (part.extra or {}).get(ITEM_ID)
            if item_id and keep_ids:
                call["id"] = item_id
            items.append(call)
    if stateless:  # only its encrypted content lets OpenAI verify a reasoning item it did not keep
        items = [i for i in items if i.get("type") != "reasoning" or i.get("encrypted_content")]
    elif keep_ids and replayable_reasoning(_Row(provider), (msg.extra or {}).get("provider")):
        items = placed(items, msg.extra)   # a search between reasoning and answer goes back too
    return items


def _is_custom(call: ToolCall) -> bool:
    return (call.extra or {}).get("type") == "custom"


class _Row(NamedTuple):
    """This encoder as :func:`replayable_reasoning` reads an adapter: the Responses kind."""

    name: str
    kind: str = "openai_responses"


def _is_openai_reasoning(part: Reasoning, provider: str) -> bool:
    """Only reasoning items this API produced can go back (their ids and encryption are OpenAI's)."""
    return (str(part.signature or "").startswith("rs_")
            and replayable_reasoning(_Row(provider), part.provider))


def _assistant_text(part: Text, keep_ids: bool) -> dict[str, Any]:
    extra = part.extra or {}
    item_id = extra.get(ITEM_ID)
    if not item_id or not keep_ids:
        return {"role": "assistant", "content": part.text}
    content = ({"type": "refusal", "refusal": part.text} if extra.get("refusal") is True
               else {"type": "output_text", "text": part.text, "annotations": []})
    item: dict[str, Any] = {
        "type": "message", "role": "assistant", "id": item_id, "status": "completed", "content": [content],
    }
    if extra.get("phase"):
        item["phase"] = extra["phase"]
    return item


def _tool_output(result: ToolResult, provider: str) -> dict[str, Any]:
    output: str | list[dict[str, Any]]
    if isinstance(result.content, list) and any(isinstance(p, Attachment) for p in result.content):
        output = [_input_part(p, provider) for p in result.content]
    else:
        output = result.text
        if result.is_error and output and not output.lower().startswith("error"):
            output = f"Error: {output}"
    return {"type": "function_call_output", "call_id": result.tool_call_id, "output": output}


def _user_content(parts: list[Any], provider: str) -> str | list[dict[str, Any]]:
    """A plain string for text-only turns (what the recordings send), else input parts."""
    if all(isinstance(p, Text) for p in parts):
        return "".join(p.text for p in parts)
    return [_input_part(p, provider) for p in parts if not isinstance(p, Reasoning | ToolCall)]


def _input_part(part: Any, provider: str) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, Attachment):
        return encode_attachment(part, provider)
    raise InvalidRequestError(f"cannot send a {type(part).__name__} in a user turn", provider=provider)


def encode_attachment(att: Attachment, provider: str) -> dict[str, Any]:
    """``input_image`` (data URL or URL) or ``input_file`` (PDF as ``file_data`` data URL, or ``file_url``)."""
    if att.kind == "image":
        url = att.data_url() if att.data is not None else att.url
        if url is None:
            raise InvalidRequestError("image attachment has neither data nor url", provider=provider)
        checked_image(att.media_type, WEB_IMAGES, provider=provider)
        return {"type": "input_image", "image_url": url, "detail": att.detail or "auto"}   # required here
    if att.kind == "pdf":
        if att.data is not None:
            return {"type": "input_file", "file_data": att.data_url(), "filename": att.filename or "document.pdf"}
        if att.url:
            return {"type": "input_file", "file_url": att.url}
        raise InvalidRequestError("PDF attachment has neither data nor url", provider=provider)
    raise UnsupportedCapability(provider, f"{att.kind} input", providers_supporting_operation(f"{att.kind} input"))
