"""Encode a neutral ChatRequest as an OpenAI Chat Completions request body.

This is the dialect a dozen services speak, so the encoder takes a small
:class:`Dialect` saying where they differ (which field caps output tokens, whether
``stream_options`` is accepted, how reasoning is requested and echoed back) instead of
growing one ``if provider == ...`` per service.

Choices worth knowing, each backed by a recorded request the real API accepted:

- ``max_tokens`` becomes ``max_completion_tokens`` for OpenAI reasoning models (o1, o3,
  o4, gpt-5 - ``max_tokens`` is rejected there) and stays ``max_tokens`` elsewhere, which
  every compatible server understands. ``temperature``/``top_p`` are dropped for those
  reasoning models, which only accept the default (the recordings for o3-mini and gpt-5
  send none); the web-search models refuse them too, the o-series refuse
  ``parallel_tool_calls``, and ``minimal`` effort is ``low`` where the model has no such level
  (:mod:`.model_rules`). The other way round, on the ``openai`` row a model that does not reason
  (gpt-4.1, gpt-4o) gets no ``reasoning_effort``: OpenAI answers it with a 400 "Unsupported parameter", and
  a client that always asks for thinking (Claude Code) would fail on every call. Compatible rows
  keep it: which of their models reason is theirs to say (OpenRouter, DeepSeek, vLLM...).
- ``system`` messages stay ``system`` (OpenAI maps them to ``developer`` on o-series;
  the o3-mini recording sends ``system``), except o1-mini/o1-preview, which reject both
  ``system`` and ``developer`` (recorded 400s) and get a ``user`` turn instead.
- ``tool_choice`` is checked by :func:`~._common.checked_tool_choice` (``required``/``tool``
  without tools is an InvalidRequestError; ``auto``/``none`` without tools are not sent: the
  API answers ``tool_choice`` without ``tools`` with a 400). A reasoning token budget becomes
  the nearest ``reasoning_effort`` by the shared table in ``_common``.
- Tool-call arguments in the history always go back as valid JSON (``""`` becomes ``{}``).
- Reasoning goes back as the row's dialect says: OpenRouter's ``reasoning_details``, or DeepSeek's
  ``reasoning_content`` on each assistant turn that calls tools (its thinking mode refuses a tool
  loop without it: api-docs.deepseek.com/guides/thinking_mode); other rows drop it.
- Tool-call ids go back as they came, except to Mistral, which takes only nine letters and
  digits: there every other id is mapped, alike for a call and its result (:mod:`.tool_ids`).
- Tool results that carry attachments: a ``tool`` message only holds text, so the
  attachments follow in a ``user`` message, as the recorded image-tool exchange does; after the
  last result of the run, since the API refuses anything between an assistant turn's calls and
  their results ("must be followed by tool messages responding to each 'tool_call_id'"), which
  parallel calls returning screenshots (a Claude client's history) ran into.
- ``strict`` JSON schemas: OpenAI's strict mode needs every object closed
  (``additionalProperties: false``), every property required and every ``$ref`` alone
  (:mod:`.strict` makes a copy so); a schema with optional properties is sent with
  ``strict: false`` rather than rejected (the client still validates the answer against the
  original schema).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..._errors import InvalidRequestError
from ..._types import (
    Attachment,
    ChatRequest,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from .._common import WEB_IMAGES, checked_image, checked_tool_choice, effort_for_budget, replayable_reasoning
from ..extra_tools import with_extra_tools
from . import reasoning_details
from .call_shapes import history_call
from .model_rules import effort_for_model, takes_parallel_tool_calls, takes_sampling
from .strict import strict_schema
from .tool_ids import mistral_tool_ids


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where an OpenAI-compatible service departs from api.openai.com."""

    #: Ask for usage in the final stream chunk (``stream_options.include_usage``).
    stream_usage: bool = True
    #: "effort" -> ``reasoning_effort``; "object" -> OpenRouter's ``reasoning: {...}``.
    reasoning_param: str = "effort"
    #: How assistant reasoning goes back in history: None (dropped), "reasoning_details"
    #: (OpenRouter) or "reasoning_content" (DeepSeek: the text, on each turn that calls tools).
    reasoning_echo: str | None = None
    #: PDFs by URL are accepted as ``file.file_data`` (OpenRouter). Set from the row's
    #: ``url_pdf_input`` capability so the matrix and the encoder cannot disagree.
    pdf_url: bool = False
    #: Request embeddings as base64 float32 (what the OpenAI SDK does; 4x smaller).
    embedding_base64: bool = False
    #: Embeddings take token-id arrays as ``input`` (OpenAI, Azure; vLLM rows can say so).
    embedding_token_ids: bool = False
    #: Force the output-token field ("max_tokens" / "max_completion_tokens"); None: by model.
    max_tokens_field: str | None = None
    #: Force the role system prompts are sent with ("system" / "developer" / "user"); None: by model.
    system_role: str | None = None
    #: Ask for the call's cost in ``usage`` (OpenRouter's ``usage: {include: true}``).
    usage_cost: bool = False
    #: Images in any format are passed on (the fake); else only :data:`~._common.WEB_IMAGES`,
    #: what OpenAI and the services speaking its API take.
    any_image: bool = False
    #: Tool-call ids in the history go out as nine letters and digits, the only form Mistral
    #: takes (others are mapped: :mod:`.tool_ids`).
    mistral_tool_ids: bool = False

    def with_extra(self, extra: dict[str, Any]) -> Dialect:
        """Per-config overrides: any field named in ``ProviderConfig.extra`` wins."""
        changes = {k: extra[k] for k in _DIALECT_FIELDS if k in extra}
        if not changes:
            return self
        from dataclasses import replace

        return replace(self, **changes)


_DIALECT_FIELDS = ("stream_usage", "reasoning_param", "reasoning_echo", "pdf_url", "embedding_base64",
                   "embedding_token_ids", "max_tokens_field", "system_role", "usage_cost", "mistral_tool_ids")
#: The ``additional_config`` keys an OpenAI-compatible row accepts: the dialect's fields.
DIALECT_FIELDS = frozenset(_DIALECT_FIELDS)

#: Models whose family takes ``max_completion_tokens`` and only default sampling.
_REASONING_MODEL = re.compile(r"(^|/)(o1|o3|o4|gpt-[5-9](?!\d))(?![\w.]*-chat)")   # gpt-5 and later
_NO_SYSTEM_MODEL = re.compile(r"(^|/)o1-(mini|preview)")

log = logging.getLogger("cloverleaf.providers.openai")


def is_reasoning_model(model: str) -> bool:
    return _REASONING_MODEL.search(model) is not None


def encode_request(req: ChatRequest, dialect: Dialect, *, provider: str, rules_model: str | None = None,
                   reasoning_model: bool | None = None) -> dict[str, Any]:
    """The complete JSON body for ``POST /chat/completions`` (``extra_body`` merged last).
    ``rules_model`` is the model whose family's rules apply (reasoning models' parameters) when
    ``req.model`` does not say (an Azure deployment name); the body still names ``req.model``.
    ``reasoning_model``: whether those rules apply, when known otherwise than by the name (the
    model refused ``max_tokens``: :mod:`.reasoning_refusals`); None: by the name."""
    family = rules_model or req.model
    system_role = dialect.system_role or ("user" if _NO_SYSTEM_MODEL.search(family) else "system")
    body: dict[str, Any] = {
        "model": req.model,
        "messages": encode_messages(req.messages, dialect, system_role=system_role, provider=provider),
    }
    if req.stream:
        body["stream"] = True
        if dialect.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if dialect.usage_cost:
        body["usage"] = {"include": True}
    if reasoning_model is None:
        reasoning_model = is_reasoning_model(family)
    sampling = not reasoning_model and takes_sampling(family)
    if req.temperature is not None and sampling:
        body["temperature"] = req.temperature
    if req.top_p is not None and sampling:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        field = dialect.max_tokens_field or ("max_completion_tokens" if reasoning_model else "max_tokens")
        body[field] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    if req.seed is not None:
        body["seed"] = req.seed
    if req.user is not None:
        body["user"] = req.user
    if req.tools:
        body["tools"] = [encode_tool(t) for t in req.tools]
        if req.parallel_tool_calls is not None and takes_parallel_tool_calls(family):
            body["parallel_tool_calls"] = req.parallel_tool_calls
    choice = checked_tool_choice(req, provider)
    if choice is not None:
        body["tool_choice"] = encode_tool_choice(choice)
    if req.response_format is not None and req.response_format.type != "text":
        body["response_format"] = encode_response_format(req.response_format)
    if req.reasoning is not None and provider == "openai" and not reasoning_model:
        log.debug("reasoning not sent to %s: OpenAI refuses reasoning_effort for a model that does not reason",
                  req.model)
    elif req.reasoning is not None:
        _encode_reasoning(body, req, dialect, family)
    if req.extra_body:   # its tools join the caller's
        body.update(with_extra_tools(body, req.extra_body))
    return body


def _encode_reasoning(body: dict[str, Any], req: ChatRequest, dialect: Dialect, family: str) -> None:
    cfg = req.reasoning
    assert cfg is not None
    effort = cfg.effort or _effort_from_budget(cfg.budget_tokens)
    if dialect.reasoning_param == "object":
        obj: dict[str, Any] = {"enabled": True}
        if cfg.effort:
            obj["effort"] = cfg.effort
        elif cfg.budget_tokens:
            obj["max_tokens"] = cfg.budget_tokens
        body["reasoning"] = obj
    elif effort:
        body["reasoning_effort"] = effort_for_model(family, effort)


def _effort_from_budget(budget: int | None) -> str | None:
    """A token budget expressed as the nearest effort level (OpenAI takes no budget)."""
    return effort_for_budget(budget) if budget else None


# --------------------------------------------------------------------------- messages


def encode_messages(messages: list[Message], dialect: Dialect, *, system_role: str = "system",
                    provider: str = "openai") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    # the user turns holding tool results' attachments, sent once the run of tool messages ends:
    # the API wants every result of an assistant turn's calls right after it, nothing between
    held: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role is Role.SYSTEM:
            out.extend(held)
            held.clear()
            out.append(_named({"role": system_role, "content": _content(msg.parts, provider, dialect)}, msg))
        elif msg.role is Role.ASSISTANT:
            out.extend(held)
            held.clear()
            out.append(_assistant(msg, dialect, provider))
        else:  # user and tool turns: tool results first (they answer the previous assistant turn)
            rest: list[Any] = []
            for part in msg.parts:
                if isinstance(part, ToolResult):
                    tool, attachments = _tool_result(part, provider, dialect)
                    out.append(tool)
                    if attachments is not None:
                        held.append(attachments)
                else:
                    rest.append(part)
            if rest:
                out.extend(held)
                held.clear()
                out.append(_named({"role": "user", "content": _content(rest, provider, dialect)}, msg))
    out.extend(held)
    if dialect.mistral_tool_ids:
        mistral_tool_ids(out)
    return out


def _named(entry: dict[str, Any], msg: Message) -> dict[str, Any]:
    if msg.name:
        entry["name"] = msg.name
    return entry


class _Row(NamedTuple):
    """This encoder as :func:`replayable_reasoning` reads an adapter: the Chat Completions kind."""

    name: str
    kind: str = "openai"


def _assistant(msg: Message, dialect: Dialect, provider: str) -> dict[str, Any]:
    texts = [p.text for p in msg.parts if isinstance(p, Text)]
    calls = [p for p in msg.parts if isinstance(p, ToolCall)]
    # content may be null only beside tool_calls: an empty answer (a reasoning model cut off by
    # max_tokens) sent back as null is a 400 on the next turn
    entry: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        entry["tool_calls"] = [history_call(c, _arguments_text(c)) for c in calls]   # custom calls as custom
    if dialect.reasoning_echo == "reasoning_details":
        # another vendor's signature (a Gemini thoughtSignature after a fallback) would be forwarded
        # upstream by OpenRouter and refused there
        row = _Row(provider)
        reasoning = [p for p in msg.parts if isinstance(p, Reasoning) and replayable_reasoning(row, p.provider)]
        # the details as received when we have them (their encrypted block, format, index, id);
        # else what our parts hold (reasoning from a client, another row)
        details = reasoning_details.of_parts(reasoning) or [d for p in reasoning for d in _reasoning_details(p)]
        if details:
            entry["reasoning_details"] = details
    elif dialect.reasoning_echo == "reasoning_content" and calls:
        # DeepSeek's thinking mode answers 400 to a tool loop whose tool-calling turns lack their
        # reasoning_content; on other turns it ignores it (its first reasoner refused it there).
        # Plain text, so any provider's reasoning serves (a Chat Completions client's included)
        text = "".join(p.text for p in msg.parts if isinstance(p, Reasoning))
        if text:
            entry["reasoning_content"] = text
    return _named(entry, msg)


def _arguments_text(call: ToolCall) -> str:
    """The call's arguments as the JSON text the API validates. A no-argument call streamed as
    ``""`` (Anthropic, Bedrock) is ``{}``, and invalid JSON the model wrote (kept as
    ``{"_raw": ...}``) goes back as that object: replaying either verbatim makes every later
    turn of the conversation fail with "arguments must be valid JSON"."""
    raw = call.raw_arguments
    if raw is None or call.arguments == {"_raw": raw}:
        return json.dumps(call.arguments, ensure_ascii=False)
    return raw if raw.strip() else "{}"


def _reasoning_details(part: Reasoning) -> list[dict[str, Any]]:
    """A part's readable text (with its signature) and its encrypted block, each its own detail."""
    details: list[dict[str, Any]] = []
    if part.text or part.signature or not part.redacted:
        detail: dict[str, Any] = {"type": "reasoning.text", "text": part.text}
        if part.signature:
            detail["signature"] = part.signature
        details.append(detail)
    if part.redacted:
        details.append({"type": "reasoning.encrypted", "data": part.redacted})
    return details


def _tool_result(result: ToolResult, provider: str, dialect: Dialect) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``tool`` message, and the ``user`` turn carrying the result's attachments (None when
    it has none), which :func:`encode_messages` sends after the last tool message of the run."""
    text = result.text
    if result.is_error and text and not text.lower().startswith("error"):
        text = f"Error: {text}"
    tool = {"role": "tool", "tool_call_id": result.tool_call_id, "content": text}
    if isinstance(result.content, list):
        attachments = [p for p in result.content if isinstance(p, Attachment)]
        if attachments:
            note = Text(f"Attachments returned by tool call {result.tool_call_id}:")
            return tool, {"role": "user", "content": _content([note, *attachments], provider, dialect)}
    return tool, None


def _content(parts: list[Any], provider: str, dialect: Dialect) -> str | list[dict[str, Any]]:
    """A plain string when the turn is only uncached text, else a list of content parts."""
    if all(isinstance(p, Text) and not p.cache_control for p in parts):
        return "".join(p.text for p in parts)
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, Text):
            item: dict[str, Any] = {"type": "text", "text": p.text}
        elif isinstance(p, Attachment):
            item = _attachment(p, provider, dialect)
        elif isinstance(p, Reasoning | ToolCall):
            continue  # never valid in a user/system turn; dropped rather than sent malformed
        else:
            raise InvalidRequestError(f"cannot send a {type(p).__name__} in this turn", provider=provider)
        if p.cache_control:
            item["cache_control"] = p.cache_control
        out.append(item)
    return out


_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3",
                  "audio/mp3": "mp3"}


def _attachment(att: Attachment, provider: str, dialect: Dialect) -> dict[str, Any]:
    kind = att.kind
    if kind == "image":
        url = att.url if att.data is None else att.data_url()
        if url is None:
            raise InvalidRequestError("image attachment has neither data nor url", provider=provider)
        if not dialect.any_image:
            checked_image(att.media_type, WEB_IMAGES, provider=provider)
        image: dict[str, Any] = {"url": url}
        if att.detail is not None:   # OpenAI's low/high/auto; left out when the caller gave none
            image["detail"] = att.detail
        return {"type": "image_url", "image_url": image}
    if kind == "audio":
        if att.data is None:
            raise InvalidRequestError(
                "audio must be sent inline: resolve the attachment with fetch='local'", provider=provider)
        fmt = _AUDIO_FORMATS.get((att.media_type or "").lower())
        if fmt is None:
            raise InvalidRequestError(
                f"audio input must be wav or mp3, got {att.media_type!r}", provider=provider)
        return {"type": "input_audio", "input_audio": {"data": att.base64(), "format": fmt}}
    if kind == "pdf":
        filename = att.filename or "document.pdf"
        if att.data is not None:
            return {"type": "file", "file": {"file_data": att.data_url(), "filename": filename}}
        if att.url and dialect.pdf_url:
            return {"type": "file", "file": {"file_data": att.url, "filename": filename}}
        raise InvalidRequestError(
            "this API takes PDFs inline only: resolve the attachment with fetch='local'", provider=provider)
    raise InvalidRequestError(f"unsupported attachment type {kind!r}", provider=provider)


# --------------------------------------------------------------------------- tools & formats


def encode_tool(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    params = tool.parameters or {"type": "object", "properties": {}}
    if tool.strict:
        params, strict_ok = strict_schema(params)
        fn["strict"] = strict_ok
    elif tool.strict is False:
        fn["strict"] = False
    fn["parameters"] = params
    return {"type": "function", "function": fn}


def encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    """A choice already checked by :func:`~._common.checked_tool_choice`."""
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def encode_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type == "json_object" or fmt.schema is None:
        return {"type": "json_object"}
    schema, strict_ok = strict_schema(fmt.schema) if fmt.strict else (fmt.schema, False)
    return {"type": "json_schema",
            "json_schema": {"name": _schema_name(fmt.name), "schema": schema, "strict": strict_ok}}


def _schema_name(name: str) -> str:
    """OpenAI wants ``^[a-zA-Z0-9_-]{1,64}$``."""
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name or "response")[:64]
    return cleaned or "response"
