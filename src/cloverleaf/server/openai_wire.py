"""OpenAI Chat Completions, Embeddings, Images and Models JSON <-> cloverleaf types.

Pure functions: request JSON in, a neutral request out (or a :class:`BadRequest` naming the
field); a neutral response in, the JSON the OpenAI SDK expects out. Streams are rendered
by :class:`~.openai_stream.ChatChunkEncoder`.

Accepted but ignored (no portable meaning across providers; type-checked, then dropped):
``frequency_penalty``, ``presence_penalty``, ``logit_bias``, ``metadata``, ``store``,
``service_tier``, ``modalities`` (without ``"audio"``), ``prediction``, ``safety_identifier``, ``prompt_cache_key``,
``prompt_cache_retention``, ``prompt_cache_options``, ``verbosity``, ``moderation``, ``logprobs: false``;
on images ``partial_images``, and ``style``, ``background``, ``moderation``, ``output_compression`` and
``output_format`` for providers other than OpenAI-shaped ones (which get them). Any other top-level field
is refused with a 400 naming it. Refused with a
400 rather than silently dropped, because the client would otherwise read an answer that
lacks what it asked for: ``n`` > 1, ``logprobs: true`` / ``top_logprobs`` > 0, legacy
``functions``, ``audio`` output (asked for by ``audio`` or by ``"audio"`` in ``modalities``),
``web_search_options``, non-function tools, file ids.
Legacy ``role: "function"`` messages (a function's result, without a call id) are passed on
as user text naming the function. Token-id embedding input is passed to
providers whose API takes it (OpenAI, Azure) and refused with a 400 for the others.

``tool_choice: {"type": "allowed_tools", ...}`` is honoured by sending only the allowed
tools, with ``auto`` or ``required``.

Attachments (``image_url``, ``input_audio``, ``file``) are passed on unread, as the client's
URL or a ``data:`` URL; the engine resolves them under the server's attachment policy. An
image's ``detail`` (low/high/auto) reaches OpenAI-shaped upstreams and keys the cache.
Non-standard but widely used fields are honoured: ``reasoning_content`` on assistant
messages and deltas (DeepSeek/vLLM style), and ``thinking: {budget_tokens}``.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Literal

from .. import _jsoncodec as jsoncodec
from .._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Citation,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
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
from . import signed_call_ids
from .fields import (
    MAX_TOKENS,
    as_dict,
    bad,
    base64_attachment,
    check_fields,
    check_tool_choice,
    function_tool,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_model,
    get_name,
    get_number,
    get_stop,
    get_str,
    image_detail,
    json_schema_object,
    remote_or_inline,
    too_deep,
    tool_objects,
)

MAX_TOKEN_ID = 2**31 - 1
CHAT_FIELDS = frozenset({
    "model", "messages", "n", "logprobs", "top_logprobs", "functions", "function_call", "stream", "stream_options",
    "max_completion_tokens", "max_tokens", "tools", "tool_choice", "response_format", "temperature", "top_p", "stop",
    "seed", "reasoning_effort", "thinking", "user", "parallel_tool_calls"})
CHAT_IGNORED = {"frequency_penalty": "number", "presence_penalty": "number", "logit_bias": "object",
                "metadata": "object", "store": "boolean", "service_tier": "string", "modalities": "array",
                "prediction": "object", "safety_identifier": "string", "prompt_cache_key": "string",
                "prompt_cache_retention": "string", "prompt_cache_options": "object", "verbosity": "string",
                "moderation": "any"}
CHAT_REFUSED = {"audio": "audio output is not available through the gateway; drop 'audio'",
                "web_search_options": "web search is a provider-side tool the gateway does not offer; "
                                      "drop 'web_search_options'"}
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
IMAGE_FIELDS = frozenset({"model", "prompt", "n", "size", "quality", "response_format", "user", "stream"})
#: The Images API's own settings, checked as OpenAI checks them and passed to OpenAI-shaped
#: upstreams (``ImageRequest.openai_options``): dropped, a jpeg asked for came back a png, a
#: transparent background opaque, a ``natural`` dall-e-3 image ``vivid``.
IMAGE_OPTIONS: dict[str, Any] = {
    "style": ("vivid", "natural"), "background": ("transparent", "opaque", "auto"), "moderation": ("low", "auto"),
    "output_compression": ("integer", 0, 100), "output_format": ("png", "jpeg", "webp")}
IMAGE_IGNORED: dict[str, Any] = {"partial_images": ("integer", 0, 3)}
IMAGE_QUALITIES = ("standard", "hd", "low", "medium", "high", "auto")
#: OpenAI's reasoning efforts, as the neutral ones (the top two are "as much as there is")
_EFFORTS: dict[str, Literal["minimal", "low", "medium", "high"]] = {
    "minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg",
                "webm": "audio/webm", "m4a": "audio/mp4", "aac": "audio/aac", "pcm16": "audio/pcm"}


# =========================================================================== requests


def parse_chat_request(body: dict[str, Any]) -> tuple[ChatRequest, bool]:
    """Translate a ``/v1/chat/completions`` body. Returns the request and whether the
    client asked for a usage chunk at the end of a stream (``stream_options.include_usage``)."""
    model = get_model(body)
    check_fields(body, CHAT_FIELDS, CHAT_IGNORED, CHAT_REFUSED)
    if "audio" in (body.get("modalities") or ()):
        # an audio answer is asked for by the modalities alone (the voice then defaults): served as
        # text it would be a 200 without what the client asked for
        raise bad("modalities", CHAT_REFUSED["audio"] + " from 'modalities'")
    raw_messages = get_list(body, "messages", "", required=True, non_empty=True) or []
    # Each optional field below is read only when the body has it: a reader finds an absent key
    # None (its default) as this test does, and a typical body has three or four of the twenty
    # (a Python call saved for each of the others, every request).
    n = get_int(body, "n", "", minimum=1) if "n" in body else None
    if n is not None and n > 1:
        raise bad("n", "only n=1 is supported; send several requests for several choices")
    if ("logprobs" in body and get_bool(body, "logprobs", "")) or (
            "top_logprobs" in body and (get_int(body, "top_logprobs", "", minimum=0) or 0) > 0):
        raise bad("logprobs", "log probabilities are not available through the gateway (not every provider has "
                              "them); drop 'logprobs'/'top_logprobs'")
    if body.get("functions") is not None or body.get("function_call") is not None:
        raise bad("functions", "legacy 'functions'/'function_call' are not supported; use 'tools'/'tool_choice'")

    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages)]
    stream = "stream" in body and bool(get_bool(body, "stream", ""))
    include_usage = False
    options = get_dict(body, "stream_options", "") if "stream_options" in body else None
    if options is not None:
        include_usage = bool(get_bool(options, "include_usage", "stream_options"))

    max_tokens = (get_int(body, "max_completion_tokens", "", minimum=1, maximum=MAX_TOKENS)
                  if "max_completion_tokens" in body else None)
    if max_tokens is None and "max_tokens" in body:
        max_tokens = get_int(body, "max_tokens", "", minimum=1, maximum=MAX_TOKENS)

    tools = _tools(body) if "tools" in body else None
    tool_choice, allowed = _tool_choice(body.get("tool_choice"))
    if allowed is not None:
        tools = _only(tools, allowed)
    if tool_choice is not None:
        check_tool_choice(tools, tool_choice.mode, tool_choice.name, "tool_choice")
    req = ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        response_format=_response_format(body.get("response_format")),
        temperature=get_number(body, "temperature", "", minimum=0, maximum=2) if "temperature" in body else None,
        top_p=get_number(body, "top_p", "", minimum=0, maximum=1) if "top_p" in body else None,
        max_tokens=max_tokens,
        stop=get_stop(body, "stop", "") if "stop" in body else None,
        seed=get_int(body, "seed", "", minimum=-(2**63), maximum=2**63 - 1) if "seed" in body else None,
        reasoning=_reasoning(body) if "reasoning_effort" in body or "thinking" in body else None,
        user=get_str(body, "user", "") if "user" in body else None,
        stream=stream,
        parallel_tool_calls=get_bool(body, "parallel_tool_calls", "") if "parallel_tool_calls" in body else None,
    )
    return req, include_usage


def _message(raw: Any, where: str) -> Message:
    msg = as_dict(raw, where)
    role = get_str(msg, "role", where, required=True)
    name = get_str(msg, "name", where)
    if role in ("system", "developer"):
        return Message(Role.SYSTEM, _text_only(msg.get("content"), f"{where}.content"), name=name)
    if role == "user":
        return Message(Role.USER, parts=_user_parts(msg.get("content"), f"{where}.content"), name=name)
    if role == "assistant":
        return Message(Role.ASSISTANT, parts=_assistant_parts(msg, where), name=name)
    if role == "function":  # legacy: a function's result, with no call id to pair it with a call
        fn_name = get_name(msg, "name", where)
        content = msg.get("content")
        result = "" if content is None else _text_only(content, f"{where}.content")
        return Message(Role.USER, f"Result of function {fn_name}: {result}")
    if role == "tool":
        call_id = signed_call_ids.unsigned(get_name(msg, "tool_call_id", where))[0]
        return Message(Role.TOOL, parts=[ToolResult(call_id, _text_only(msg.get("content"), f"{where}.content"))])
    raise bad(f"{where}.role", f"unknown role {role!r}; expected system, developer, user, assistant, tool or function")


def _text_only(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            part = as_dict(part, f"{where}[{i}]")
            if part.get("type") not in ("text", "refusal"):
                raise bad(f"{where}[{i}].type", "only text parts are allowed in this message")
            texts.append(get_str(part, part["type"], f"{where}[{i}]", required=True))
        return "".join(texts)
    if content is None:
        raise bad(where, "required content is missing")
    raise bad(where, "expected a string or an array of content parts")


def _user_parts(content: Any, where: str) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise bad(where, "expected a string or an array of content parts")
    parts: list[Part] = []
    for i, raw in enumerate(content):
        at = f"{where}[{i}]"
        part = as_dict(raw, at)
        kind = get_str(part, "type", at, required=True)
        if kind == "text":
            parts.append(Text(get_str(part, "text", at, required=True)))
        elif kind == "image_url":
            image = get_dict(part, "image_url", at, required=True)
            assert image is not None
            url = get_str(image, "url", f"{at}.image_url", required=True)
            att = remote_or_inline(url, "image", f"{at}.image_url.url")
            att.detail = image_detail(image, f"{at}.image_url")
            parts.append(att)
        elif kind == "input_audio":
            audio = get_dict(part, "input_audio", at, required=True)
            assert audio is not None
            fmt = get_str(audio, "format", f"{at}.input_audio", required=True)
            data = get_str(audio, "data", f"{at}.input_audio", required=True)
            parts.append(base64_attachment(data, _AUDIO_TYPES.get(fmt, f"audio/{fmt}"), "audio"))
        elif kind == "file":
            parts.append(_file_part(get_dict(part, "file", at, required=True) or {}, f"{at}.file"))
        else:
            raise bad(f"{at}.type", f"unknown content part type {kind!r}; expected text, image_url, input_audio or file")
    return parts


def _file_part(file: dict[str, Any], where: str) -> Attachment:
    if file.get("file_id") is not None:
        raise bad(f"{where}.file_id", "file ids are not supported (there is no Files API); send file_data")
    data = get_str(file, "file_data", where, required=True)
    att = (Attachment(source=data) if data[:5].lower() == "data:"  # the kind is read from the bytes
           else base64_attachment(data, None, None))
    att.filename = get_str(file, "filename", where)
    return att


def _assistant_parts(msg: dict[str, Any], where: str) -> list[Part]:
    parts: list[Part] = []
    reasoning = get_str(msg, "reasoning_content", where)
    if reasoning:
        parts.append(Reasoning(reasoning))
    content = msg.get("content")
    if content is not None:
        text = _text_only(content, f"{where}.content")
        if text:
            parts.append(Text(text))
    for i, raw in enumerate(get_list(msg, "tool_calls", where) or []):
        at = f"{where}.tool_calls[{i}]"
        call = as_dict(raw, at)
        fn = get_dict(call, "function", at, required=True)
        assert fn is not None
        raw_args = get_str(fn, "arguments", f"{at}.function", default="") or ""
        try:
            args = jsoncodec.loads_bounded(raw_args) if raw_args.strip() else {}
        except jsoncodec.JSONTooDeep as exc:
            raise too_deep(f"{at}.function.arguments", exc.limit) from None
        except (ValueError, RecursionError):
            raise bad(f"{at}.function.arguments", "must be a JSON-encoded object") from None
        if not isinstance(args, dict):
            raise bad(f"{at}.function.arguments", "must be a JSON-encoded object")
        # a Gemini call's thought signature, given back in the id or extra_content (signed_call_ids)
        call_id, extra = signed_call_ids.call_extra(get_name(call, "id", at), call.get("extra_content"))
        parts.append(ToolCall(id=call_id, name=get_name(fn, "name", f"{at}.function"),
                              arguments=args, raw_arguments=raw_args or None, extra=extra))
    return parts


def _tools(body: dict[str, Any]) -> list[Tool] | None:
    tools = []
    for at, item in tool_objects(body):
        if item.get("type", "function") != "function":
            raise bad(f"{at}.type", f"only function tools are supported, got {item.get('type')!r}")
        fn = get_dict(item, "function", at, required=True)
        assert fn is not None
        tools.append(function_tool(fn, f"{at}.function"))
    return tools or None


def _tool_choice(raw: Any) -> tuple[ToolChoice | None, list[str] | None]:
    """The choice, and the names of the allowed tools when it is ``allowed_tools``."""
    if raw is None:
        return None, None
    if isinstance(raw, str):
        if raw in ("auto", "none", "required"):
            return ToolChoice(raw), None  # type: ignore[arg-type]
        raise bad("tool_choice", f"expected 'auto', 'none', 'required' or an object, got {raw!r}")
    choice = as_dict(raw, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        fn = get_dict(choice, "function", "tool_choice", required=True)
        assert fn is not None
        return ToolChoice("tool", get_name(fn, "name", "tool_choice.function")), None
    if kind == "allowed_tools":
        spec = get_dict(choice, "allowed_tools", "tool_choice", required=True)
        assert spec is not None
        mode = get_str(spec, "mode", "tool_choice.allowed_tools", required=True)
        if mode not in ("auto", "required"):
            raise bad("tool_choice.allowed_tools.mode", f"expected 'auto' or 'required', got {mode!r}")
        names = []
        for i, item in enumerate(get_list(spec, "tools", "tool_choice.allowed_tools", required=True) or []):
            at = f"tool_choice.allowed_tools.tools[{i}]"
            fn = get_dict(as_dict(item, at), "function", at, required=True)
            assert fn is not None
            names.append(get_name(fn, "name", f"{at}.function"))
        return ToolChoice(mode), names
    raise bad("tool_choice.type", "expected 'function' or 'allowed_tools'")


def _only(tools: list[Tool] | None, names: list[str]) -> list[Tool] | None:
    """``allowed_tools``: the request's tools restricted to ``names`` (each must exist)."""
    known = {t.name for t in tools or ()}
    for name in names:
        if name not in known:
            raise bad("tool_choice.allowed_tools", f"names tool {name!r}, which is not among the request's tools")
    return [t for t in tools or () if t.name in names] or None


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    fmt = as_dict(raw, "response_format")
    kind = get_str(fmt, "type", "response_format", required=True)
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    if kind == "json_schema":
        spec = get_dict(fmt, "json_schema", "response_format", required=True)
        assert spec is not None
        schema = spec.get("schema")
        return ResponseFormat(
            type="json_schema",
            schema=json_schema_object(schema, "response_format.json_schema.schema") if schema is not None
            else {"type": "object"},
            name=get_str(spec, "name", "response_format.json_schema", default="response"),
            strict=bool(get_bool(spec, "strict", "response_format.json_schema")),
        )
    raise bad("response_format.type", f"expected text, json_object or json_schema, got {kind!r}")


def _reasoning(body: dict[str, Any]) -> ReasoningConfig | None:
    effort = get_str(body, "reasoning_effort", "")
    thinking = get_dict(body, "thinking", "")
    budget = None
    kind = get_str(thinking, "type", "thinking") if thinking is not None else None
    if kind not in (None, "enabled", "disabled"):
        raise bad("thinking.type", f"expected 'enabled' or 'disabled', got {kind!r}")
    if thinking is not None and kind in (None, "enabled"):
        budget = get_int(thinking, "budget_tokens", "thinking", minimum=1, maximum=MAX_TOKENS)
    if effort is None or effort == "none":
        return ReasoningConfig(budget_tokens=budget) if budget else None
    if effort not in _EFFORTS:
        raise bad("reasoning_effort", f"expected one of none, {', '.join(_EFFORTS)}; got {effort!r}")
    return ReasoningConfig(effort=_EFFORTS[effort], budget_tokens=budget)


#: Inputs one ``/v1/embeddings`` request may carry (OpenAI's own limit). A short input still
#: gets a whole vector back (6 KB as JSON for 1,536 dimensions), so 20,000 of them in a 200 KB
#: request made a 21 MB answer and 360 MB of memory on the server.
MAX_EMBEDDING_INPUTS = 2048


def parse_embedding_request(body: dict[str, Any]) -> tuple[EmbeddingRequest, str]:
    """Translate a ``/v1/embeddings`` body; also returns ``encoding_format`` (float|base64)."""
    model = get_model(body)
    check_fields(body, EMBEDDING_FIELDS, {})
    get_str(body, "user", "")
    raw = body.get("input")
    token_ids = None
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(s, str) for s in raw):
        inputs = list(raw)
    elif raw is None:
        raise bad("input", "required input is missing")
    elif isinstance(raw, list) and raw and not any(isinstance(t, str) for t in raw):
        inputs, token_ids = [], _token_ids(raw)
    else:
        raise bad("input", "expected a non-empty string, an array of strings, or token ids (an array of integers "
                           "or of arrays of integers)")
    for i, text in enumerate(inputs):
        if not text:
            raise bad(f"input[{i}]" if isinstance(raw, list) else "input", "must not be an empty string")
    count = len(token_ids) if token_ids is not None else len(inputs)
    if count > MAX_EMBEDDING_INPUTS:   # a few bytes each in, kilobytes each out: the answer is what grows
        raise bad("input", f"at most {MAX_EMBEDDING_INPUTS} inputs per request (as OpenAI's API), got {count:,}; "
                           "send them in batches")
    encoding = get_str(body, "encoding_format", "", default="float")
    if encoding not in ("float", "base64"):
        raise bad("encoding_format", f"expected 'float' or 'base64', got {encoding!r}")
    return EmbeddingRequest(model=model, inputs=inputs, token_ids=token_ids,
                            dimensions=get_int(body, "dimensions", "", minimum=1, maximum=65536)), encoding


def _token_ids(raw: list[Any]) -> list[list[int]]:
    """``input`` as token ids: one array of integers, or an array of them (what LangChain's
    ``OpenAIEmbeddings`` sends by default). Whether the target takes them is the engine's call."""
    rows = raw if all(isinstance(t, list) for t in raw) else [raw]
    out = []
    for i, row in enumerate(rows):
        where = f"input[{i}]" if rows is raw else "input"
        if not isinstance(row, list) or not row:
            raise bad(where, "expected a non-empty array of token ids")
        if not all(_is_token(t) for t in row):
            raise bad(where, f"token ids must be integers from 0 to {MAX_TOKEN_ID}")
        out.append([int(t) for t in row])  # 7.0 is an integer to JSON
    return out


def _is_token(value: Any) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_ID


def parse_image_request(body: dict[str, Any]) -> ImageRequest:
    """Translate an ``/v1/images/generations`` body. ``model`` may be left out (OpenAI's API
    has a default too): the request's model is then empty and the route uses the server's
    ``image_model``."""
    check_fields(body, IMAGE_FIELDS, {**IMAGE_IGNORED, **IMAGE_OPTIONS})
    get_str(body, "user", "")
    if get_bool(body, "stream", ""):
        raise bad("stream", "streamed image generation is not available through the gateway; drop 'stream'")
    prompt = get_str(body, "prompt", "", required=True)
    if not prompt.strip():
        raise bad("prompt", "must not be empty")
    fmt = get_str(body, "response_format", "")
    if fmt not in (None, "url", "b64_json"):
        raise bad("response_format", f"expected 'url' or 'b64_json', got {fmt!r}")
    quality = get_str(body, "quality", "")
    if quality not in (None, *IMAGE_QUALITIES):
        raise bad("quality", f"expected one of {', '.join(IMAGE_QUALITIES)}, got {quality!r}")
    return ImageRequest(
        model=get_model(body) if body.get("model") is not None else "",
        prompt=prompt,
        n=get_int(body, "n", "", minimum=1, maximum=10) or 1,
        size=get_str(body, "size", ""),
        quality=quality,
        response_format=fmt,
        openai_options={name: body[name] for name in IMAGE_OPTIONS if body.get(name) is not None} or None,
    )


# =========================================================================== responses


def finish_reason(reason: str | None) -> str:
    return _FINISH.get(reason or "stop", "stop")


def usage_json(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


#: Finish reasons of the Chat Completions API, relayed as the upstream sent them.
OPENAI_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def refusal_finish(resp: ChatResponse) -> str:
    """A refusal's finish reason as the upstream sent it (OpenAI says ``stop``), else ours mapped."""
    raw = resp.metadata.raw_finish_reason
    return raw if raw in OPENAI_FINISH_REASONS else finish_reason(resp.finish_reason)


def chat_completion(resp: ChatResponse, *, response_id: str, model: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object. ``model`` is the name the client asked for. A refusal is
    ``message.refusal`` (content null), as OpenAI sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    refusal = resp.refusal
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, Text) and part.extra is not None and part.extra.get("refusal") is True:
            continue  # the refusal itself: message.refusal below
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, Reasoning):
            if part.text:
                reasoning.append(part.text)
        elif isinstance(part, ToolCall):
            call: dict[str, Any] = {"id": signed_call_ids.signed_id(part.id, part.extra), "type": "function",
                                    "function": {"name": part.name, "arguments": part.arguments_json}}
            extra_content = signed_call_ids.google_extra_content(part.extra)
            if extra_content:
                call["extra_content"] = extra_content
            calls.append(call)
    text = "".join(texts)
    if refusal is not None:
        message["refusal"] = refusal
    if text or (not calls and refusal is None):
        message["content"] = text
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    message.update(sources_and_images(resp.parts))
    audio = resp.metadata.extra.get("audio")
    if isinstance(audio, dict) and audio.get("data"):   # an OpenAI audio answer, relayed as it came
        message["audio"] = audio
    finish = refusal_finish(resp) if refusal is not None else finish_reason(resp.finish_reason)
    out = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage_json(resp.usage),
    }
    sources = search_sources(resp.metadata.extra)
    if sources:
        out.update(sources)
    return out


def sources_and_images(parts: list[Part]) -> dict[str, list[dict[str, Any]]]:
    """What an answer's message carries beside its text and calls, when it has any: ``annotations``
    (the ``url_citation`` of each web source of its text) and ``images`` (each image the model
    made). One function for the whole answer's ``message`` and a stream's ``delta``
    (:class:`~.openai_stream.ChatChunkEncoder`), so the two always agree."""
    annotations: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    at = 0   # characters of the message's content before this part (a refusal is not content)
    for part in parts:
        if isinstance(part, Text):
            if part.extra is not None and part.extra.get("refusal") is True:
                continue
            if part.citations:
                annotations.extend(url_citation(c, at, at + len(part.text)) for c in part.citations if c.url)
            at += len(part.text)
        elif isinstance(part, Attachment):
            image = image_output(part)
            if image is not None:
                images.append(image)
    out: dict[str, list[dict[str, Any]]] = {}
    if annotations:
        out["annotations"] = annotations
    if images:
        out["images"] = images
    return out


def url_citation(c: Citation, start: int, end: int) -> dict[str, Any]:
    """A web source of the answer as OpenAI's ``url_citation`` annotation: where it is cited, as
    the upstream said (OpenAI's own ``start_index``/``end_index``), else the span of the text
    part that carries it (``start``/``end``: characters of the message's content)."""
    where = c.extra or {}
    return {"type": "url_citation", "url_citation": {
        "url": c.url, "title": c.title or "",
        "start_index": where["start_index"] if isinstance(where.get("start_index"), int) else start,
        "end_index": where["end_index"] if isinstance(where.get("end_index"), int) else end}}


def image_output(att: Attachment) -> dict[str, Any] | None:
    """An image the model made (Gemini's), as an ``images`` entry of the message (the
    ``image_url`` form OpenRouter answers image output with): Chat Completions has no image
    content in an assistant message. None for what is not an image in hand."""
    if att.type != "image" or att.data is None:
        return None
    return {"type": "image_url", "image_url": {"url": att.data_url()}}


#: Perplexity's top-level fields naming an answer's sources (kept in ``metadata.extra``).
SOURCE_FIELDS = ("citations", "search_results")


def search_sources(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The answer's ``citations`` and ``search_results`` (Perplexity's), when it has any: relayed
    as top-level fields, where Perplexity puts them and its clients read them."""
    if not extra or not ("citations" in extra or "search_results" in extra):
        return None
    return {key: extra[key] for key in SOURCE_FIELDS if isinstance(extra.get(key), list)} or None


def embedding_response(resp: EmbeddingResponse, *, model: str, encoding: str) -> dict[str, Any]:
    data = []
    for i, vec in enumerate(resp.vectors):
        data.append({"object": "embedding", "index": i,
                     "embedding": _b64_floats(vec) if encoding == "base64" else vec})
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": resp.usage.input_tokens, "total_tokens": resp.usage.input_tokens}}


def _b64_floats(vec: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32 (what the SDK decodes by default)."""
    packed = array("f", vec)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def images_response(resp: ImageResponse, *, created: int, want: str | None) -> dict[str, Any]:
    """``want`` is the requested ``response_format``. An image that came back as bytes but
    was asked for as ``url`` is returned as a ``data:`` URL (the server hosts no files)."""
    data = []
    for img in resp.images:
        item: dict[str, Any] = {}
        if img.data is not None:
            b64 = base64.b64encode(img.data).decode("ascii")
            if want == "url":
                item["url"] = f"data:{img.media_type};base64,{b64}"
            else:
                item["b64_json"] = b64
        elif img.url is not None:
            item["url"] = img.url
        if img.revised_prompt:
            item["revised_prompt"] = img.revised_prompt
        data.append(item)
    out: dict[str, Any] = {"created": created, "data": data}
    formats = {_IMAGE_FORMATS.get(img.media_type) for img in resp.images if img.data is not None}
    if len(formats) == 1 and None not in formats:   # what the bytes are, whatever was asked for
        out["output_format"] = formats.pop()
    u = resp.usage
    if u.reported and (u.input_tokens or u.output_tokens):   # gpt-image models bill by these tokens
        out["usage"] = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                        "total_tokens": u.input_tokens + u.output_tokens,
                        "input_tokens_details": {"text_tokens": u.input_tokens - u.image_input_tokens,
                                                 "image_tokens": u.image_input_tokens}}
    return out


#: An image's media type -> the Images API's ``output_format``
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


def model_object(name: str, *, owned_by: str, created: int = 0) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}


def models_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": models}
