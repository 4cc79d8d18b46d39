"""What an Ollama reply and an Ollama stream both read: tool calls, stop reasons, counts.
A leaf of the package: the adapter and the stream decoder import it, it imports neither."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from ... import _jsoncodec as jsoncodec
from ..._types import FinishReason, ToolCall, Usage

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "other", "unload": "other"}


def reply_salt(data: dict[str, Any], fallback: str | None = None) -> str:
    """What makes one reply's call ids its own: the reply's ``created_at`` (a timestamp to the
    microsecond, which no two replies share), else ``fallback`` or a random token (an
    Ollama-compatible server that sends no timestamp)."""
    created = data.get("created_at")
    if isinstance(created, str) and created:
        return created
    return fallback or secrets.token_hex(8)


def tool_call_id(salt: str, index: int, name: str, arguments: Any) -> str:
    """An id for a call Ollama sent without one, made the same way for a stream and a whole reply.

    From the reply (``salt``) as well as the call: a model that makes the same call (name and
    arguments) in two turns of a conversation must get two ids, or the history holds one id
    twice — Anthropic refuses such a history on a fallback ("tool_use ids must be unique") and
    clients that pair results with calls by id mis-pair them. Deterministic for one reply, so a
    stream split anywhere gives the same ids."""
    key = f"{salt}:{index}:{name}:{json.dumps(arguments, sort_keys=True)}"
    return f"call_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def tool_call(call: dict[str, Any], index: int, salt: str) -> ToolCall:
    fn = call.get("function") or {}
    name = str(fn.get("name") or "")
    args = fn.get("arguments")
    if isinstance(args, str):  # some model templates send a JSON string (read as any upstream JSON is:
        raw = args                 # a lone surrogate escape as U+FFFD, which UTF-8 can carry)
        try:
            args = jsoncodec.loads_upstream(args, jsoncodec.MAX_DEPTH) if args.strip() else {}
        except (ValueError, RecursionError):
            args = {"_raw": raw}
    else:
        raw = json.dumps(args if args is not None else {})
    if not isinstance(args, dict):
        args = {} if args is None else {"_value": args}
    call_id = call.get("id") or tool_call_id(salt, index, name, args)
    return ToolCall(id=str(call_id), name=name, arguments=args, raw_arguments=raw)


def finish_reason(data: dict[str, Any], has_tool_calls: bool) -> tuple[FinishReason, str | None]:
    raw = data.get("done_reason")
    if has_tool_calls and raw in (None, "stop"):
        return "tool_calls", raw
    if raw is None:
        return "stop", None
    return _FINISH.get(raw, "other"), raw


def usage(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(data.get("prompt_eval_count") or 0),
                 output_tokens=int(data.get("eval_count") or 0))
