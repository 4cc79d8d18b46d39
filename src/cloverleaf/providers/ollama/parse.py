"""What an Ollama reply and an Ollama stream both read: tool calls, stop reasons, counts.
A leaf of the package: the adapter and the stream decoder import it, it imports neither."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..._types import FinishReason, ToolCall, Usage

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "other", "unload": "other"}


def tool_call_id(index: int, name: str, arguments: Any) -> str:
    """A stable id for a call Ollama sent without one (same for stream and non-stream)."""
    digest = hashlib.sha256(f"{index}:{name}:{json.dumps(arguments, sort_keys=True)}".encode()).hexdigest()
    return f"call_{digest[:16]}"


def tool_call(call: dict[str, Any], index: int) -> ToolCall:
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
    call_id = call.get("id") or tool_call_id(index, name, args)
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
