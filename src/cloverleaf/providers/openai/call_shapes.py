"""The other shapes a Chat Completions answer gives a tool call: GPT-5's custom tools and legacy functions.

Beside ``{"type": "function", "function": {"name", "arguments"}}`` an answer may hold:

- a *custom* (freeform) tool's call, ``{"type": "custom", "custom": {"name", "input"}}``, for a tool
  declared ``{"type": "custom", ...}`` (in ``extra_body``): its input is plain text, not JSON. It
  becomes a ToolCall whose arguments are ``{"input": <text>}`` (the one-parameter function the
  gateway makes of a custom tool for other providers), marked ``extra["type"] = "custom"`` so the
  history sends it back as a custom call: OpenAI matches a call to its tool by kind. Read as a
  function call it had no name and no arguments.
- a legacy ``message.function_call`` (``{"name", "arguments"}``, no id), the answer to a request
  with ``functions`` (in ``extra_body``), ``finish_reason: "function_call"``: one call. Read only
  as ``tool_calls`` it was lost, and the finish said a tool was called when none was.

Streamed, a custom call's ``input`` fragments are JSON-escaped into the arguments of
``{"input": "..."}``, closed at the end of the stream (:class:`CustomInputs`), so the streamed
call equals the whole one.
"""

from __future__ import annotations

import json
from typing import Any

from ..._types import ToolCall
from ...streams.accumulate import arguments_text

#: ``ToolCall.extra`` of a custom tool's call.
CUSTOM: dict[str, Any] = {"type": "custom"}
_OPEN = '{"input": "'
_CLOSE = '"}'


def is_custom(call: dict[str, Any]) -> bool:
    return call.get("type") == "custom" or (isinstance(call.get("custom"), dict) and "function" not in call)


def answer_calls(message: dict[str, Any]) -> list[Any]:
    """The answer's calls as ``tool_calls`` entries, a legacy ``function_call`` as one without an id."""
    calls = message.get("tool_calls")
    if calls:
        return list(calls)
    legacy = message.get("function_call")
    return [{"type": "function", "function": legacy}] if isinstance(legacy, dict) else []


def name_and_arguments(call: dict[str, Any]) -> tuple[str, str]:
    """A whole call's name and its arguments as JSON text (a custom call's input as ``{"input": ...}``)."""
    if is_custom(call):
        custom = call.get("custom") or {}
        text = custom.get("input")
        return custom.get("name") or "", json.dumps({"input": text if isinstance(text, str) else ""})
    fn = call.get("function") or {}
    return fn.get("name") or "", arguments_text(fn.get("arguments")) or ""   # a few servers send the object


def history_call(call: ToolCall, arguments_json: str) -> dict[str, Any]:
    """A call of an assistant turn in the history, custom or function as it came."""
    if (call.extra or {}).get("type") == "custom":
        text = call.arguments.get("input")
        return {"id": call.id, "type": "custom",
                "custom": {"name": call.name, "input": text if isinstance(text, str) else arguments_json}}
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments_json}}


class CustomInputs:
    """The streamed custom calls (by our index): each input fragment as escaped JSON text."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: list[int] = []

    def fragment(self, index: int, text: Any) -> str:
        """The arguments text for one ``custom.input`` fragment of the call at ``index``."""
        piece = json.dumps(text if isinstance(text, str) else "")[1:-1]
        if index in self.open:
            return piece
        self.open.append(index)
        return _OPEN + piece

    def closers(self) -> list[tuple[int, str]]:
        """(index, text) closing each open call's arguments, at the end of the stream."""
        out = [(index, _CLOSE) for index in self.open]
        self.open.clear()
        return out
