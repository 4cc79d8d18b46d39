"""The fake upstream's answers, in OpenAI's wire format exactly: pure functions, no I/O.

Given a decoded request body (and a scripted reply, if one was queued) these decide what
the fake model says and render it as a Chat Completions object, a list of SSE chunks,
an embeddings list, an images list or a models list. Rendering exactly what OpenAI sends
is the point: the real OpenAI adapter, stream decoder and server parse it unchanged.

What the fake model says (first rule that applies):

1. a scripted reply (``FakeScript.reply``);
2. tools given, ``tool_choice`` not ``"none"`` and the last message not a tool result: a
   call of the named tool (or the first) with arguments valid for its JSON Schema;
3. ``response_format`` ``json_schema``: an instance of the schema; ``json_object``: an object;
4. the last message is a tool result: a sentence quoting it;
5. model ``echo``: the last user message's text; any other model: a sentence derived from
   a hash of the conversation.

``reasoning_effort`` (or ``reasoning``) adds ``reasoning_content``; ``max_tokens`` cuts the
text and reports ``finish_reason="length"``; usage is about one token per four characters.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from .content import count_tokens, digest, image_size, png, schema_instance, seed_of, sentence, vector
from .script import ScriptedReply

CREATED = 1_700_000_000  # a fixed timestamp keeps every answer byte-for-byte deterministic
FINGERPRINT = "fp_cloverleaf_fake"
DEFAULT_DIMENSIONS = 256
MODELS = ("echo", "chat", "embed", "image")


@dataclass(slots=True)
class Answer:
    """What the fake model says, before it is rendered."""

    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments": JSON text}
    finish_reason: str = "stop"
    prompt_tokens: int = 1
    completion_tokens: int = 1
    reasoning_tokens: int = 0
    cached_tokens: int = 0


# --------------------------------------------------------------------------- chat


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def conversation_key(body: dict[str, Any]) -> str:
    """Everything that should change the answer, as one string to hash."""
    return json.dumps([body.get("model"), body.get("messages"), body.get("tools")], sort_keys=True, default=str)


def chat_answer(body: dict[str, Any], *, echo: bool = False, scripted: ScriptedReply | None = None) -> Answer:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    key = conversation_key(body)
    answer = Answer()
    if scripted is not None:
        answer.text = scripted.text
        answer.tool_calls = [_scripted_call(c, i, key) for i, c in enumerate(scripted.tool_calls or [])]
        answer.finish_reason = scripted.finish_reason or ("tool_calls" if answer.tool_calls else "stop")
        answer.reasoning = scripted.reasoning
    else:
        _decide(answer, body, messages, last, key, echo)
    if answer.reasoning is None and (body.get("reasoning_effort") or body.get("reasoning")):
        answer.reasoning = f"Thinking about: {_last_user_text(messages)[:120] or 'the conversation'}"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if scripted is None and isinstance(limit, int) and answer.text and count_tokens(answer.text) > limit:
        answer.text = answer.text[: max(1, limit * 4)]
        answer.finish_reason = "length"
    _count(answer, body, messages, scripted)
    return answer


def _decide(answer: Answer, body: dict[str, Any], messages: list[dict[str, Any]], last: dict[str, Any],
            key: str, echo: bool) -> None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if tools and choice != "none" and last.get("role") != "tool":
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        tool = next((t for t in tools if t["function"]["name"] == name), tools[0])
        params = tool["function"].get("parameters") or {"type": "object", "properties": {}}
        args = schema_instance(params, seed_of(key, name))
        answer.tool_calls = [{"id": f"call_{digest(key, name).hex()[:24]}", "name": name,
                              "arguments": json.dumps(args)}]
        answer.finish_reason = "tool_calls"
        return
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        answer.text = json.dumps(schema_instance(spec.get("schema") or {}, seed_of(key)))
    elif fmt.get("type") == "json_object":
        answer.text = json.dumps({"answer": sentence(key)})
    elif last.get("role") == "tool":
        name = _tool_name(messages, last.get("tool_call_id"))
        answer.text = f"The {name} tool returned: {message_text(last)}"
    elif echo:
        answer.text = _last_user_text(messages)
    else:
        answer.text = sentence(key)


def _count(answer: Answer, body: dict[str, Any], messages: list[dict[str, Any]], scripted: ScriptedReply | None) -> None:
    prompt = "".join(message_text(m) for m in messages) + (json.dumps(body["tools"]) if body.get("tools") else "")
    answer.prompt_tokens = count_tokens(prompt)
    answer.reasoning_tokens = count_tokens(answer.reasoning) if answer.reasoning else 0
    output = (answer.text or "") + "".join(c["name"] + c["arguments"] for c in answer.tool_calls)
    answer.completion_tokens = count_tokens(output) + answer.reasoning_tokens
    usage = scripted.usage if scripted is not None else None
    if usage:
        answer.prompt_tokens = usage.get("prompt_tokens", answer.prompt_tokens)
        answer.completion_tokens = usage.get("completion_tokens", answer.completion_tokens)
        answer.cached_tokens = usage.get("cached_tokens", 0)
        answer.reasoning_tokens = usage.get("reasoning_tokens", answer.reasoning_tokens)


def _scripted_call(call: dict[str, Any], index: int, key: str) -> dict[str, Any]:
    args = call.get("arguments", {})
    return {"id": call.get("id") or f"call_{digest(key, index).hex()[:24]}", "name": call["name"],
            "arguments": args if isinstance(args, str) else json.dumps(args)}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def _tool_name(messages: list[dict[str, Any]], call_id: Any) -> str:
    for m in messages:
        for call in m.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str((call.get("function") or {}).get("name") or "tool")
    return "tool"


def usage_json(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": answer.reasoning_tokens, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def completion_id(body: dict[str, Any]) -> str:
    return "chatcmpl-fake" + digest(conversation_key(body)).hex()[:20]


def completion_json(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}}
                                 for c in answer.tool_calls]
    return {
        "id": completion_id(body), "object": "chat.completion", "created": CREATED, "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
        "usage": usage_json(answer), "system_fingerprint": FINGERPRINT,
    }


def completion_chunks(body: dict[str, Any], answer: Answer, *, finish: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer (``finish=False`` stops before the finish chunk)."""
    head = {"id": completion_id(body), "object": "chat.completion.chunk", "created": CREATED,
            "model": body.get("model"), "system_fingerprint": FINGERPRINT}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        return sse(data)

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"reasoning_content": piece}) for piece in words(answer.reasoning or "")]
    out += [chunk({"content": piece}) for piece in words(answer.text or "")]
    for index, call in enumerate(answer.tool_calls):
        out.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                          "function": {"name": call["name"], "arguments": ""}}]}))
        args = call["arguments"]
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i:i + 12]}}]})
                for i in range(0, len(args), 12)]
    if not finish:
        return out
    out.append(chunk({}, answer.finish_reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append(sse({**head, "choices": [], "usage": usage_json(answer)}))
    out.append(b"data: [DONE]\n\n")
    return out


def words(text: str) -> list[str]:
    """Text split into word-sized deltas (leading whitespace kept with each word)."""
    return re.findall(r"\s*\S+|\s+$", text) if text else []


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


# --------------------------------------------------------------------------- embeddings, images, models


def embeddings_json(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else [x if isinstance(x, str) else json.dumps(x) for x in raw or []]
    dims = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vec = vector(text, dims)
        embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if as_base64 else vec
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(count_tokens(t) for t in inputs)
    return {"object": "list", "data": data, "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def images_json(body: dict[str, Any]) -> dict[str, Any]:
    prompt = str(body.get("prompt") or "")
    width, height = image_size(body.get("size"))
    data = []
    for i in range(max(1, int(body.get("n") or 1))):
        b64 = base64.b64encode(png(f"{prompt}\x00{i}", width, height)).decode()
        item = {"url": f"data:image/png;base64,{b64}"} if body.get("response_format") == "url" else {"b64_json": b64}
        data.append({**item, "revised_prompt": prompt})
    return {"created": CREATED, "data": data,
            "usage": {"input_tokens": count_tokens(prompt), "output_tokens": 0, "total_tokens": count_tokens(prompt)}}


def models_json() -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "cloverleaf-fake"} for m in MODELS]}


# --------------------------------------------------------------------------- errors

_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request (fake upstream)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (fake upstream)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden (fake upstream)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (fake upstream)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (fake upstream). Please try again soon."),
    500: ("server_error", None, "The server had an error while processing your request (fake upstream)."),
    503: ("server_error", None, "The engine is currently overloaded (fake upstream)."),
    529: ("overloaded_error", None, "Overloaded (fake upstream)."),
}


def error_response(status: int, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    """An OpenAI-shaped error body and its headers (429/503/529 say when to retry)."""
    out = {"content-type": "application/json"}
    if status in (429, 503, 529):
        out.update({"retry-after": "0", "retry-after-ms": "10"})
    out.update({k.lower(): v for k, v in (headers or {}).items()})
    if body is None:
        kind, code, message = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error",
                                                  None, f"HTTP {status} (fake upstream)."))
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    return body, out


def garbage_body(stream: bool) -> list[bytes]:
    """A 200 answer that does not parse: a data line cut mid-JSON, or a JSON body cut short."""
    if stream:
        return [b'data: {"id":"chatcmpl-garbage","object":"chat.completion.chunk","choices":[{"delta":{"cont\n\n']
    return [b'{"id":"chatcmpl-garbage","object":"chat.completion","choices":[{"message":']
