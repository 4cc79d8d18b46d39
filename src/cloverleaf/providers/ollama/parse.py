"""What an Ollama reply and an Ollama stream both read: tool calls, stop reasons, counts.
A leaf of the package: the adapter and the stream decoder import it, it imports neither."""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..._types import FinishReason, ToolCall, Usage

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "other", "unload": "other"}


def tool_call_id() -> str:
    """An id for a call Ollama sent without one, made the same way for a stream and a whole reply.

    Random, not derived from the call: a model that makes the same call (name and arguments) in
    two turns of a conversation must get two ids, or the history holds one id twice — Anthropic
    refuses such a history on a fallback ("tool_use ids must be unique") and clients that pair
    results with calls by id mis-pair them. Each call is parsed once (a stream sends it whole in
    one line), so its id is stable for the rest of the answer."""
    return f"call_{secrets.token_hex(12)}"


def tool_call(call: dict[str, Any]) -> ToolCall:
    fn = call.get("function") or {}
    name = str(fn.get("name") or "")
    args = fn.get("arguments")
    if isinstance(args, str):  # some model templates send a JSON string
        raw = args
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            args = {"_raw": raw}
    else:
        raw = json.dumps(args if args is not None else {})
    if not isinstance(args, dict):
        args = {} if args is None else {"_value": args}
    call_id = call.get("id") or tool_call_id()
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
