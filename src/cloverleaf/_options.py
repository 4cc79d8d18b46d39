"""Turn what users pass to ``chat()`` into a :class:`ChatRequest`, once, with clear errors.

Accepted message shapes: a prompt string; a list of :class:`Message`; OpenAI-style dicts
(``{"role": "user", "content": "..." | [parts]}``, assistant ``tool_calls``, ``tool``
messages). Unknown keyword options are an error that lists the known ones, not a silent
no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from ._errors import ConfigError
from ._litellm_names import option_advice
from ._structured import to_response_format
from ._tools import to_tool, to_tool_choice
from ._types import (
    Attachment,
    ChatRequest,
    Message,
    Part,
    ReasoningConfig,
    Role,
    Text,
    ToolCall,
    ToolResult,
)


class RequestOptions(TypedDict, total=False):
    """Options that shape the request a chat call sends."""

    system: str
    #: Python functions (their signature and docstring become the schema), Tool objects or dicts.
    tools: Sequence[Any]
    #: "auto", "none", "required", a tool name, or a ToolChoice.
    tool_choice: Any
    #: A pydantic model, a dataclass, a JSON schema dict, "json", or a ResponseFormat.
    response_format: Any
    temperature: float
    top_p: float
    max_tokens: int
    stop: str | list[str]
    seed: int
    #: "minimal" | "low" | "medium" | "high", a token budget, True, a dict or a ReasoningConfig.
    reasoning: bool | int | Literal["minimal", "low", "medium", "high"] | Mapping[str, Any] | ReasoningConfig | None
    user: str
    parallel_tool_calls: bool
    #: Provider-specific body fields, merged into the request body as given.
    extra_body: dict[str, Any]
    #: Automatic prompt caching for the whole request (Anthropic's top-level ``cache_control``,
    #: ``{"type": "ephemeral"}``); providers without explicit caching ignore it.
    cache_control: dict[str, Any]
    #: Paths, URLs, bytes or Attachment objects, added to the last user message.
    attachments: Sequence[Any]


class CallOptions(TypedDict, total=False):
    """Options about how a call is made, for every kind of call (chat, embed, image).

    ``timeout`` lifts every wait of this call (first byte, idle, deadline) to that many seconds;
    the defaults are ``connect_timeout`` 5 s, ``first_byte_timeout`` 30 s, ``idle_timeout`` 30 s and a
    600 s deadline (``[defaults]`` in cloverleaf.toml), chosen so a gateway fails over from a
    hanging upstream in well under a minute."""

    api_key: str
    base_url: str
    max_retries: int
    timeout: float
    trace_id: str
    project: str
    metadata: dict[str, Any]
    #: Run the Python functions in ``tools`` and send their results back, up to max_tool_turns.
    run_tools: bool
    max_tool_turns: int
    #: The gateway's response cache for this call: False (neither read nor write) or "refresh".
    cache: bool | Literal["refresh"]
    #: Where this call's data may go: "local-only" keeps it off cloud targets ([privacy] in the config).
    privacy: str
    #: A data label the operator's [privacy.classes] maps to a rule ("confidential", ...).
    data_class: str


class ChatOptions(RequestOptions, CallOptions, total=False):
    """Every keyword ``chat``/``stream`` accept: ``**options: Unpack[ChatOptions]``. The same
    TypedDict drives the runtime check (:func:`check_options`), so a type checker and a plain
    run refuse the same misspelt option."""


class EmbedOptions(CallOptions, total=False):
    """The keywords of the module-level ``embed`` and ``Provider.embed``."""

    dimensions: int
    input_type: str


class ImageOptions(CallOptions, total=False):
    """The keywords of the module-level ``generate_image`` and ``Provider.generate_image``."""

    n: int
    size: str
    quality: str
    response_format: Literal["b64_json", "url"]


#: Options that shape the request (everything else is a call option: api_key, trace_id...).
REQUEST_OPTIONS = frozenset(RequestOptions.__optional_keys__)
CALL_OPTIONS = frozenset(CallOptions.__optional_keys__)


def check_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - REQUEST_OPTIONS - CALL_OPTIONS
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}{option_advice(unknown)}; "
                        f"known: {sorted(REQUEST_OPTIONS | CALL_OPTIONS)}. "
                        "Provider-specific body fields go in extra_body={...}")


def to_messages(value: str | Message | Iterable[Any]) -> list[Message]:
    if isinstance(value, str):
        return [Message(Role.USER, value)]
    if isinstance(value, Message):
        return [value]
    out = []
    for item in value:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, dict):
            out.append(message_from_dict(item))
        else:
            raise ConfigError(f"messages must be Message objects or dicts with 'role' and 'content', got {type(item).__name__}")
    if not out:
        raise ConfigError("messages is empty: pass a prompt string or at least one message")
    return out


def message_from_dict(d: dict[str, Any]) -> Message:
    role = d.get("role")
    if role == "developer":
        role = "system"
    try:
        r = Role(role)
    except ValueError:
        raise ConfigError(f"message role {role!r} is not one of system, user, assistant, tool") from None
    content = d.get("content")
    parts: list[Part] = []
    if isinstance(content, str):
        parts.append(Text(content))
    elif isinstance(content, list):
        for p in content:
            parts.append(_part_from_dict(p))
    elif content is not None:
        raise ConfigError("message content must be a string or a list of parts")
    if r is Role.TOOL:
        call_id = d.get("tool_call_id")
        if not call_id:
            raise ConfigError("a tool message needs tool_call_id")
        text = "".join(p.text for p in parts if isinstance(p, Text))
        return Message(Role.TOOL, parts=[ToolResult(call_id, text, name=d.get("name"))])
    for tc in d.get("tool_calls") or ():
        fn = tc.get("function", tc)
        raw = fn.get("arguments", "{}")
        args = raw if isinstance(raw, dict) else _loads(raw)
        parts.append(ToolCall(tc.get("id", ""), fn.get("name", ""), args,
                              raw_arguments=raw if isinstance(raw, str) else None))
    return Message(r, parts=parts, name=d.get("name"))


def _loads(raw: str) -> dict[str, Any]:
    try:
        v = json.loads(raw or "{}")
    except ValueError:
        return {"_raw": raw}
    return v if isinstance(v, dict) else {"_value": v}


def _part_from_dict(p: Any) -> Part:
    if isinstance(p, str):
        return Text(p)
    if isinstance(p, (Text, Attachment, ToolCall, ToolResult)):
        return p
    if not isinstance(p, dict):
        raise ConfigError(f"unsupported content part {type(p).__name__}")
    t = p.get("type")
    if t == "text":
        return Text(p.get("text", ""))
    if t == "image_url":
        url = p["image_url"]["url"] if isinstance(p.get("image_url"), dict) else p.get("image_url")
        return Attachment(source=url, type="image")
    raise ConfigError(f"unsupported content part type {t!r}; use text or image_url, or pass Attachment objects")


def _budget(tokens: Any) -> int:
    """A reasoning token budget: a whole number of at least 0 (0: as little thinking as the
    model allows, none where it can be turned off: Anthropic, Gemini)."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ConfigError(f"reasoning budget must be a whole number of tokens of at least 0 (0 turns thinking off "
                          f"where the model allows), got {tokens!r}")
    return tokens


def to_reasoning(value: Any) -> ReasoningConfig | None:
    if value is None or value is False or isinstance(value, ReasoningConfig):
        return value or None
    if value is True:
        return ReasoningConfig(effort="medium")
    if isinstance(value, str):
        if value not in ("minimal", "low", "medium", "high"):
            raise ConfigError("reasoning must be 'minimal', 'low', 'medium', 'high', a token budget (int) or True")
        return ReasoningConfig(effort=value)  # type: ignore[arg-type]
    if isinstance(value, int):
        return ReasoningConfig(budget_tokens=_budget(value))
    if isinstance(value, dict):
        budget = value.get("budget_tokens")
        return ReasoningConfig(effort=value.get("effort"), budget_tokens=None if budget is None else _budget(budget),
                               summary=bool(value.get("summary", False)))
    raise ConfigError("reasoning must be 'low'/'medium'/'high', a token budget (int), True or a dict")


def build_request(model: str, messages: Any, options: Mapping[str, Any]) -> ChatRequest:
    msgs = to_messages(messages)
    system = options.get("system")
    if system:
        msgs = [Message(Role.SYSTEM, system), *msgs]
    attachments = options.get("attachments")
    if attachments:
        msgs = _attach(msgs, attachments)
    stop = options.get("stop")
    tools = options.get("tools")
    return ChatRequest(
        model=model,
        messages=msgs,
        tools=[to_tool(t) for t in tools] if tools else None,
        tool_choice=to_tool_choice(options.get("tool_choice")),
        response_format=to_response_format(options.get("response_format")),
        temperature=options.get("temperature"),
        top_p=options.get("top_p"),
        max_tokens=options.get("max_tokens"),
        stop=[stop] if isinstance(stop, str) else stop,
        seed=options.get("seed"),
        reasoning=to_reasoning(options.get("reasoning")),
        user=options.get("user"),
        parallel_tool_calls=options.get("parallel_tool_calls"),
        extra_body=options.get("extra_body"),
        cache_control=_cache_control(options.get("cache_control")),
    )


def _cache_control(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise ConfigError(f"cache_control must be a dict such as {{'type': 'ephemeral'}}, got {type(value).__name__}")


def _attach(msgs: list[Message], attachments: Iterable[Any]) -> list[Message]:
    """Attachments join the last user message (a new one if the last turn is not the user's)."""
    items = [a if isinstance(a, Attachment) else Attachment(source=a) for a in attachments]
    last = msgs[-1]
    if last.role is Role.USER:
        return [*msgs[:-1], Message(Role.USER, parts=[*last.parts, *items], name=last.name)]
    return [*msgs, Message(Role.USER, parts=list(items))]
