"""Anthropic Messages JSON <-> cloverleaf types, for any backend provider.

Pure functions, like :mod:`.openai_wire`. Anthropic's shape differs from the neutral one
in three places this module takes care of:

- ``system`` is a top-level field, not a message;
- tool results live *inside a user message* as ``tool_result`` blocks; they become
  ``Role.TOOL`` messages (one per result, in order) followed by the user's other blocks;
- usage counts ``input_tokens`` *excluding* cache reads and writes, while
  :class:`~cloverleaf.Usage` includes them.

Documents: a ``document`` block becomes a :class:`~cloverleaf.Document` (its text, PDF or
``content`` list, with ``title``, ``context``, ``citations`` and ``cache_control``), which a
Claude upstream receives as sent and any other provider reads as text (title and context as
lines before the content). Inside a ``tool_result``, which holds no Document, a document is
that text. An answer's text blocks carry their ``citations`` back in Anthropic's shape
(:mod:`cloverleaf.providers.anthropic.citations`); citations on an assistant turn of the
history are accepted and not sent on (they are the model's own output, and cost nothing).

Streams are rendered by :class:`~.anthropic_stream.MessageStreamEncoder`.

Thinking and effort: ``thinking: {"type": "adaptive"}`` and ``output_config.effort`` (``xhigh``
and ``max`` included) reach a Claude upstream as sent, effort with or without thinking
(:class:`~cloverleaf.ReasoningConfig` ``adaptive`` and ``native_effort``); other providers get
the nearest neutral effort (``xhigh`` and ``max`` as ``high``), adaptive thinking as that effort
or ``medium``.

Refused with a 400: server tools (web search, code execution...) and their blocks, file
ids, thinking modes other than enabled/disabled/adaptive, ``mcp_servers``,
``fallbacks`` (the gateway's routes do that), and any top-level
field not listed here. Ignored (type-checked, then dropped): ``top_k``, ``service_tier``,
``container``, ``inference_geo``, ``speed``. Prompt-cache marks are carried: ``cache_control``
on a tool (``Tool.cache_control``: the usual way to cache a long tool list) and at the top
level (``ChatRequest.cache_control``: automatic prompt caching), for an Anthropic upstream, as
are those on text, image, document, ``tool_use`` and ``tool_result`` blocks (and the blocks
inside a ``tool_result``).

``context_management`` (server-side context edits; Claude Code sends a ``clear_thinking_*`` edit
on every call) is checked for shape and carried as ``ChatRequest.context_management``: an
Anthropic upstream (and Claude on Bedrock) applies it, and the ``context_management`` object of
its answer (the edits applied) is relayed, whole and in the stream's ``message_delta``; for other
providers :mod:`cloverleaf._context_edits` drops thinking edits and refuses the rest with a 400.

A ``system`` message inside ``messages`` (Claude Code's ``mid-conversation-system-*`` beta) is a
``Role.SYSTEM`` message at that place: an Anthropic upstream gets it there when the caller sent
that beta, and every provider otherwise reads it where it reads system prompts.

``thread`` (the SDK's message threads: the server keeps the conversation and a request
sends only the new turn) is refused with the error the SDK understands, ``400`` with
``error.details.error_code = "thread_unsupported_request"``: the SDK then sends the whole
conversation without ``thread``, which every provider behind the gateway can serve. Serving
threads would mean storing every conversation server-side per key and rebuilding it for
providers that have no such thing; the SDK's own fallback gives the same answers without
that state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._documents import plain_parts
from .._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Document,
    Message,
    Part,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from ..providers.anthropic.citations import citation_json
from . import signed_call_ids
from .errors import BadRequest
from .fields import (
    MAX_TOKENS,
    as_dict,
    bad,
    base64_attachment,
    check_fields,
    check_tool_choice,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_model,
    get_name,
    get_number,
    get_stop,
    get_str,
    json_schema_object,
    query_int,
    remote_or_inline,
    tool_objects,
)

MESSAGES_FIELDS = frozenset({
    "model", "max_tokens", "messages", "system", "metadata", "tools", "tool_choice", "temperature", "top_p",
    "stop_sequences", "stream", "thinking", "output_config", "output_format", "cache_control",
    "context_management"})
MESSAGES_IGNORED = {"top_k": "integer", "service_tier": "string", "container": "any", "inference_geo": "string",
                    "speed": "string"}
MESSAGES_REFUSED = {
    "mcp_servers": "MCP servers are a provider-side feature the gateway does not offer; drop 'mcp_servers'",
    "fallbacks": "fallback models are configured on the gateway (routes), not per request; drop 'fallbacks'",
}
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


# =========================================================================== requests


def parse_messages_request(body: dict[str, Any]) -> ChatRequest:
    """Translate a ``/v1/messages`` body into a ChatRequest (400 naming the field on error)."""
    if body.get("thread") is not None:
        raise BadRequest("message threads are not supported through the gateway; send the whole conversation "
                         "without 'thread'", param="thread", code="thread_unsupported_request",
                         details={"unsupported": []})
    model = get_model(body)
    check_fields(body, MESSAGES_FIELDS, MESSAGES_IGNORED, {**MESSAGES_REFUSED, "thread": ""})
    max_tokens = get_int(body, "max_tokens", "", minimum=1, maximum=MAX_TOKENS)
    if max_tokens is None:
        raise bad("max_tokens", "required integer is missing")
    raw_messages = get_list(body, "messages", "", required=True, non_empty=True)
    assert raw_messages is not None

    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        messages.append(Message(Role.SYSTEM, parts=_system_parts(system)))
    for i, raw in enumerate(raw_messages):
        messages.extend(_message(raw, f"messages[{i}]"))

    metadata = get_dict(body, "metadata", "")
    tools, parallel = _tools(body), None
    choice = body.get("tool_choice")
    tool_choice = None
    if choice is not None:
        tool_choice, disable_parallel = _tool_choice(choice)
        parallel = False if disable_parallel else None
        check_tool_choice(tools, tool_choice.mode, tool_choice.name, "tool_choice")
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        response_format=_output_format(body),
        temperature=get_number(body, "temperature", "", minimum=0, maximum=1),
        top_p=get_number(body, "top_p", "", minimum=0, maximum=1),
        max_tokens=max_tokens,
        stop=get_stop(body, "stop_sequences", ""),
        reasoning=_reasoning(body),
        user=get_str(metadata, "user_id", "metadata") if metadata else None,
        stream=bool(get_bool(body, "stream", "")),
        parallel_tool_calls=parallel,
        cache_control=get_dict(body, "cache_control", ""),
        context_management=_context_management(body),
    )


def _context_management(body: dict[str, Any]) -> dict[str, Any] | None:
    """``{"edits": [{"type": ...}, ...]}``, checked for shape and kept as sent: the upstream reads
    the rest of each edit (``keep``, ``trigger``...), and a provider that cannot apply one refuses it."""
    config = get_dict(body, "context_management", "")
    if config is None:
        return None
    for i, raw in enumerate(get_list(config, "edits", "context_management") or []):
        get_str(as_dict(raw, f"context_management.edits[{i}]"), "type", f"context_management.edits[{i}]",
                required=True)
    return config


def _system_parts(system: Any, where: str = "system") -> list[Part]:
    """The top-level ``system``, or the content of a system message at ``where`` in ``messages``."""
    if isinstance(system, str):
        return [Text(system)]
    if not isinstance(system, list):
        raise bad(where, "expected a string or an array of text blocks")
    parts: list[Part] = []
    for i, raw in enumerate(system):
        at = f"{where}[{i}]"
        block = as_dict(raw, at)
        if block.get("type") != "text":
            raise bad(f"{at}.type", "only text blocks are allowed in a system prompt")
        parts.append(Text(get_str(block, "text", at, required=True),
                          cache_control=get_dict(block, "cache_control", at)))
    return parts


def _message(raw: Any, where: str) -> list[Message]:
    msg = as_dict(raw, where)
    role = get_str(msg, "role", where, required=True)
    if role not in ("user", "assistant", "system"):
        raise bad(f"{where}.role", f"expected 'user', 'assistant' or 'system', got {role!r}")
    content = msg.get("content")
    if role == "system":   # a mid-conversation system message: a string or text blocks, as ``system``
        return [Message(Role.SYSTEM, parts=_system_parts(content, f"{where}.content"))]
    if isinstance(content, str):
        return [Message(Role(role), content)]
    if not isinstance(content, list):
        raise bad(f"{where}.content", "expected a string or an array of content blocks")
    if role == "assistant":
        return [Message(Role.ASSISTANT, parts=[_assistant_block(b, f"{where}.content[{i}]")
                                               for i, b in enumerate(content)])]
    out: list[Message] = []
    parts: list[Part] = []
    for i, raw_block in enumerate(content):
        at = f"{where}.content[{i}]"
        block = as_dict(raw_block, at)
        if block.get("type") == "tool_result":
            out.append(Message(Role.TOOL, parts=[_tool_result(block, at)]))
        else:
            parts.append(_user_block(block, at))
    if parts or not out:
        out.append(Message(Role.USER, parts=parts))
    return out


def _user_block(block: dict[str, Any], where: str) -> Part:
    kind = get_str(block, "type", where, required=True)
    cache = get_dict(block, "cache_control", where)
    if kind == "text":
        return Text(get_str(block, "text", where, required=True), cache_control=cache)
    if kind == "image":
        att = _source(block, where, "image")
        if isinstance(att, Attachment):
            att.cache_control = cache
        return att
    if kind == "document":
        return _document(block, where, cache)
    raise bad(f"{where}.type", f"unsupported content block {kind!r} in a user message; expected text, image, "
                               "document or tool_result")


def _document(block: dict[str, Any], where: str, cache: dict[str, Any] | None) -> Document:
    """A ``document`` block as a Document: its source (text, a PDF by base64 or URL, or a
    ``content`` list of text and image blocks), title, context and citations switch."""
    source = get_dict(block, "source", where, required=True)
    assert source is not None
    at = f"{where}.source"
    content: str | Attachment | list[Text | Attachment]
    if get_str(source, "type", at, required=True) == "content":
        raw = source.get("content")
        if isinstance(raw, str):
            content = raw
        elif isinstance(raw, list):
            content = [_content_block(b, f"{at}.content[{i}]") for i, b in enumerate(raw)]
        else:
            raise bad(f"{at}.content", "expected a string or an array of text and image blocks")
    else:
        found = _source(block, where, "pdf")
        content = found.text if isinstance(found, Text) else found
    citations = get_dict(block, "citations", where)
    return Document(content, title=get_str(block, "title", where), context=get_str(block, "context", where),
                    citations=bool(citations and get_bool(citations, "enabled", f"{where}.citations")),
                    cache_control=cache)


def _content_block(raw: Any, where: str) -> Text | Attachment:
    """One block of a document's ``content`` source: text, or an image."""
    block = as_dict(raw, where)
    kind = get_str(block, "type", where, required=True)
    if kind == "text":
        return Text(get_str(block, "text", where, required=True))
    if kind == "image":
        image = _source(block, where, "image")
        if isinstance(image, Attachment):
            return image
    raise bad(f"{where}.type", f"a document's content holds text and image blocks, not {kind!r}")


def _source(block: dict[str, Any], where: str, kind: str) -> Attachment | Text:
    source = get_dict(block, "source", where, required=True)
    assert source is not None
    at = f"{where}.source"
    stype = get_str(source, "type", at, required=True)
    if stype == "base64":
        media_type = get_str(source, "media_type", at, required=True)
        return base64_attachment(get_str(source, "data", at, required=True), media_type, kind)  # type: ignore[arg-type]
    if stype == "url":
        return remote_or_inline(get_str(source, "url", at, required=True), kind, f"{at}.url")  # type: ignore[arg-type]
    if stype == "text" and kind == "pdf":
        return Text(get_str(source, "data", at, required=True))
    if stype == "file":
        raise bad(f"{at}.type", "file ids are not supported (there is no Files API); send base64 or a URL")
    raise bad(f"{at}.type", f"unsupported source type {stype!r}")


def _tool_result(block: dict[str, Any], where: str) -> ToolResult:
    """A ``tool_result`` block, with its ``cache_control`` and its content blocks' own (an agent
    loop's rolling prompt-cache breakpoint sits on the last one, which is usually this)."""
    call_id = signed_call_ids.unsigned(get_name(block, "tool_use_id", where))[0]
    content = block.get("content")
    is_error = bool(get_bool(block, "is_error", where))
    cache = get_dict(block, "cache_control", where)
    if content is None or isinstance(content, str):
        return ToolResult(call_id, content or "", is_error=is_error, cache_control=cache)
    if not isinstance(content, list):
        raise bad(f"{where}.content", "expected a string or an array of text/image blocks")
    parts: list[Text | Attachment] = []
    for i, raw in enumerate(content):
        at = f"{where}.content[{i}]"
        item = as_dict(raw, at)
        kind = item.get("type")
        item_cache = get_dict(item, "cache_control", at)
        if kind == "text":
            parts.append(Text(get_str(item, "text", at, required=True), cache_control=item_cache))
        elif kind == "image":
            image = _source(item, at, "image")
            if isinstance(image, Attachment):
                image.cache_control = item_cache
            parts.append(image)
        elif kind == "document":   # a tool result holds no Document: what it reads as (title, context, content)
            parts.extend(p for p in plain_parts(_document(item, at, item_cache)) if isinstance(p, Text | Attachment))
        else:
            raise bad(f"{at}.type", f"unsupported block {kind!r} in a tool_result; expected text or image")
    return ToolResult(call_id, parts, is_error=is_error, cache_control=cache)


def _assistant_block(raw: Any, where: str) -> Part:
    block = as_dict(raw, where)
    kind = get_str(block, "type", where, required=True)
    cache = get_dict(block, "cache_control", where)   # a prompt-cache breakpoint in the history
    if kind == "text":
        return Text(get_str(block, "text", where, required=True), cache_control=cache)
    if kind == "tool_use":
        args = block.get("input", {})
        if not isinstance(args, dict):
            raise bad(f"{where}.input", "expected an object")
        # a Gemini call's thought signature rides in the id (signed_call_ids)
        call_id, extra = signed_call_ids.call_extra(get_name(block, "id", where))
        return ToolCall(id=call_id, name=get_name(block, "name", where), arguments=args, extra=extra,
                        cache_control=cache)
    if kind == "thinking":
        return Reasoning(get_str(block, "thinking", where, default=""), signature=get_str(block, "signature", where),
                         provider="anthropic")
    if kind == "redacted_thinking":
        return Reasoning("", redacted=get_str(block, "data", where, required=True), provider="anthropic")
    raise bad(f"{where}.type", f"unsupported content block {kind!r} in an assistant message (server tools are not "
                               "supported through the gateway)")


def _tools(body: dict[str, Any]) -> list[Tool] | None:
    tools = []
    for at, tool in tool_objects(body):
        if tool.get("type") not in (None, "custom"):
            raise bad(f"{at}.type", f"server tool {tool.get('type')!r} is not supported through the gateway; "
                                    "define a custom tool with input_schema")
        tools.append(Tool(
            name=get_name(tool, "name", at),
            description=get_str(tool, "description", at),
            parameters=json_schema_object(tool.get("input_schema"), f"{at}.input_schema"),
            strict=get_bool(tool, "strict", at),
            cache_control=get_dict(tool, "cache_control", at),   # caching a long tool list: carried on
        ))
    return tools or None


def _tool_choice(raw: Any) -> tuple[ToolChoice, bool]:
    choice = as_dict(raw, "tool_choice")
    kind = get_str(choice, "type", "tool_choice", required=True)
    if choice.get("name") is not None:
        get_name(choice, "name", "tool_choice")  # only 'tool' uses it, but a name must still be one
    disable = bool(get_bool(choice, "disable_parallel_tool_use", "tool_choice"))
    if kind == "auto":
        return ToolChoice("auto"), disable
    if kind == "any":
        return ToolChoice("required"), disable
    if kind == "none":
        return ToolChoice("none"), disable
    if kind == "tool":
        return ToolChoice("tool", get_name(choice, "name", "tool_choice")), disable
    raise bad("tool_choice.type", f"expected auto, any, tool or none, got {kind!r}")


def _output_format(body: dict[str, Any]) -> ResponseFormat | None:
    config = get_dict(body, "output_config", "")
    fmt = get_dict(config, "format", "output_config") if config else None
    if fmt is None:
        fmt = get_dict(body, "output_format", "")  # the beta spelling
        where = "output_format"
    else:
        where = "output_config.format"
    if fmt is None:
        return None
    if fmt.get("type") != "json_schema":
        raise bad(f"{where}.type", "expected 'json_schema'")
    return ResponseFormat(type="json_schema", schema=json_schema_object(fmt.get("schema"), f"{where}.schema"))


def _reasoning(body: dict[str, Any]) -> ReasoningConfig | None:
    """``thinking`` and ``output_config.effort`` as sent (adaptive thinking and the effort word
    kept for a Claude upstream), with the nearest neutral effort for every other provider."""
    thinking = get_dict(body, "thinking", "")
    config = get_dict(body, "output_config", "")
    effort = get_str(config, "effort", "output_config") if config else None
    if effort is not None and effort not in _EFFORT:
        raise bad("output_config.effort", f"expected one of {', '.join(_EFFORT)}, got {effort!r}")
    mapped = _EFFORT.get(effort) if effort else None
    if thinking is None:
        return ReasoningConfig(effort=mapped, native_effort=effort) if mapped else None  # type: ignore[arg-type]
    kind = get_str(thinking, "type", "thinking", required=True)
    if kind == "enabled":
        budget = get_int(thinking, "budget_tokens", "thinking", minimum=1, maximum=MAX_TOKENS)
        if budget is None:
            raise bad("thinking.budget_tokens", "required integer is missing")
        return ReasoningConfig(effort=mapped, budget_tokens=budget, native_effort=effort)  # type: ignore[arg-type]
    if kind == "adaptive":
        return ReasoningConfig(effort=mapped or "medium", adaptive=True,  # type: ignore[arg-type]
                               native_effort=effort)
    if kind == "disabled":   # an effort sent beside it still applies (to the answer, with no thinking)
        return ReasoningConfig(effort=mapped, native_effort=effort) if mapped else None  # type: ignore[arg-type]
    raise bad("thinking.type", f"expected enabled, adaptive or disabled, got {kind!r}")


# =========================================================================== responses


def stop_reason(finish: str | None, raw: str | None, has_tools: bool) -> str:
    """The ``stop_reason`` of an answer: the upstream's own when it is one of Anthropic's, else
    ours mapped. ``tool_use`` only when the answer has a tool_use block: a Claude model answering
    structured output through the forced ``json_response`` tool stops with ``tool_use``, but that
    call became the answer's text, and a client that sees ``tool_use`` looks for a tool to run."""
    if raw in ("end_turn", "max_tokens", "stop_sequence", "pause_turn", "refusal") or raw == "tool_use" and has_tools:
        return raw
    if finish == "length":
        return "max_tokens"
    if has_tools and finish in (None, "stop", "tool_calls"):
        return "tool_use"
    if finish == "content_filter":
        return "refusal"
    return "end_turn"


def matched_stop_sequence(reason: str, extra: Mapping[str, Any] | None) -> str | None:
    """``stop_sequence``: which of the request's sequences ended the answer, when the upstream
    said (Anthropic does, on ``metadata.extra``); unknown (null) for upstreams that do not say,
    such as OpenAI-style ones."""
    value = extra.get("stop_sequence") if extra else None
    return value if reason == "stop_sequence" and isinstance(value, str) else None


def usage_json(u: Usage) -> dict[str, Any]:
    uncached = max(0, u.input_tokens - u.cached_tokens - u.cache_write_tokens)
    out: dict[str, Any] = {"input_tokens": uncached, "output_tokens": u.output_tokens,
                           "cache_creation_input_tokens": u.cache_write_tokens, "cache_read_input_tokens": u.cached_tokens}
    if u.web_search_requests:   # billed per search, as Anthropic reports it (web fetches, billed as tokens only,
        # are not counted: the field is required beside it)
        out["server_tool_use"] = {"web_search_requests": u.web_search_requests, "web_fetch_requests": 0}
    return out


def message_json(resp: ChatResponse, *, message_id: str, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, Text):
            content.append(_text_json(part))
        elif isinstance(part, ToolCall):
            content.append({"type": "tool_use", "id": signed_call_ids.signed_id(part.id, part.extra), "name": part.name,
                            "input": part.arguments})
        elif isinstance(part, Reasoning):
            # a part may hold readable text and opaque data (OpenAI's summary and encrypted
            # content): a thinking block, then a redacted_thinking block, as the stream sends them
            if part.text or part.signature or not part.redacted:
                content.append({"type": "thinking", "thinking": part.text, "signature": part.signature or ""})
            if part.redacted:
                content.append({"type": "redacted_thinking", "data": part.redacted})
    reason = stop_reason(resp.finish_reason, resp.metadata.raw_finish_reason, bool(resp.tool_calls))
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": matched_stop_sequence(reason, resp.metadata.extra),
        "usage": usage_json(resp.usage),
        **context_management_json(resp.metadata.extra),
    }


def context_management_json(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"context_management": ...}``: the context edits an Anthropic upstream applied, as it
    sent them; nothing when it sent none (no other provider does)."""
    value = extra.get("context_management") if extra else None
    return {"context_management": value} if isinstance(value, dict) else {}


def _text_json(part: Text) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.citations:
        block["citations"] = [citation_json(c) for c in part.citations]
    return block


# =========================================================================== models


def model_info(name: str, created: float) -> dict[str, Any]:
    """A ``ModelInfo`` as Anthropic's ``GET /v1/models`` has it (``created_at`` in RFC 3339)."""
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": name, "display_name": name, "created_at": stamp}


def models_page(names: list[str], created: float, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of Anthropic's model list: ``limit`` (1-1000, default 20), then the models after
    ``after_id`` or before ``before_id``; ``has_more``, ``first_id`` and ``last_id`` as Anthropic sends."""
    limit = query_int(query.get("limit"), "limit", 20, 1, 1000)
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise bad("before_id", "send either after_id or before_id, not both")
    start, end = 0, len(names)
    if after is not None:
        start = names.index(after) + 1 if after in names else end
    if before is not None:
        end = names.index(before) if before in names else 0
        start = max(0, end - limit)
    page = names[start:start + limit] if before is None else names[start:end]
    has_more = (start + len(page) < end) if before is None else start > 0
    data = [model_info(name, created) for name in page]
    return {"data": data, "has_more": has_more, "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None}
