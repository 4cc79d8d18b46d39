"""What Converse refuses with a ValidationException although other providers take it, fitted
before sending, as the Anthropic encoder fits the Messages API's rules.

Converse checks its own constraints (botocore's ``bedrock-runtime`` service model) for every
model, and Claude checks Anthropic's on top ("The model returned the following errors: ..."):

- a tool name is 1 to 64 letters, digits, ``_`` and ``-`` (``ToolName``, for a ``toolSpec``, a
  forced ``toolChoice.tool`` and a ``toolUse`` of the history: "Value 'github.create_issue' at
  'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint"), for every model, the
  pattern Anthropic's API has: names are mapped by the same rule (:mod:`..anthropic.tool_names`)
  and the answer's calls, whole or streamed, read back to the caller's;
- ``temperature`` is 0 to 1 for every model (``inferenceConfig.temperature``: "Member must have
  value less than or equal to 1"; OpenAI's goes to 2): a higher one is sent as 1, as Claude's is
  (:func:`~..claude_rules.sampling`);
- a stop sequence is not empty (``NonEmptyString``), and Claude's not only whitespace
  (:func:`~..claude_rules.stop_sequences`);
- a system text is not empty (``SystemContentBlock.text``), and Claude's not only whitespace:
  a part of only whitespace says nothing, and is left out for every model;
- Claude's final assistant turn (a prefill) does not end with whitespace
  (:func:`~..claude_rules.prefill_trimmed`);
- a ``toolUseId`` is 1 to 64 letters, digits, ``_`` and ``-``: another provider's ids are mapped
  alike for a call and its result (:func:`converse_tool_ids`).

Text blocks of only whitespace ("The text field in the ContentBlock object at messages.1.content.0
is blank") are left out where the turns are built. A leaf of the package: pure functions.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..._types import ChatRequest, ToolCall
from ..anthropic.tool_names import read_back, wire_names
from ..claude_rules import prefill_trimmed
from ..claude_rules import stop_sequences as claude_stop_sequences
from ..extra_tools import extra_tool_names
from ..openai.tool_ids import remap_ids

log = logging.getLogger("cloverleaf.providers")

#: The highest ``inferenceConfig.temperature`` Converse takes, for any model.
MAX_TEMPERATURE = 1.0
#: A ``toolUseId`` as Converse takes it (ToolUseBlock, ToolResultBlock: 1 to 64 characters).
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_USE_ID_MAX = 64
#: Why a user message of only empty or blank text is refused before it is sent (``_common.empty_text_turn``).
REFUSES_BLANK = 'Converse refuses ("The text field in the ContentBlock object ... is blank")'

__all__ = ["MAX_TEMPERATURE", "REFUSES_BLANK", "converse_tool_ids", "converse_tool_name", "read_back", "send_tool_names", "stop_sequences", "temperature",
           "tool_name_map", "trim_prefill"]


def tool_name_map(req: ChatRequest, structured: str | None = None) -> dict[str, str]:
    """The request's tool names Converse refuses -> the names they are sent under (the same map
    reads the answer's ``toolUse`` names back: :func:`read_back`). ``structured``, the answer
    tool's name (valid already), is kept clear of the names given out, and so are the names of
    ``extra_body``'s ``toolConfig`` tools (``nova.grounding`` cleaned to Nova's ``nova_grounding``
    system tool was replaced by it)."""
    names = [t.name for t in req.tools or []]
    names += [p.name for m in req.messages for p in m.parts if isinstance(p, ToolCall)]
    extra = (req.extra_body or {}).get("toolConfig")
    reserved = extra_tool_names(extra if isinstance(extra, dict) else None, converse_tool_name)
    return wire_names([*names, *([structured] if structured else [])], reserved=reserved)


def converse_tool_name(tool: Any) -> str | None:
    """A Converse tool's name: a ``toolSpec``'s, or a ``systemTool``'s (Nova's ``nova_grounding``)."""
    spec = (tool.get("toolSpec") or tool.get("systemTool")) if isinstance(tool, dict) else None
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) else None


def send_tool_names(names: dict[str, str], messages: list[dict[str, Any]], tool_config: dict[str, Any] | None) -> None:
    """Rename, in place, by ``names``: the history's ``toolUse`` blocks, and the ``toolSpec``
    and forced ``toolChoice.tool`` of ``tool_config``."""
    if not names:
        return
    items = [b["toolUse"] for m in messages for b in m["content"] if "toolUse" in b]
    if tool_config is not None:
        items += [t["toolSpec"] for t in tool_config["tools"] if "toolSpec" in t]
        items += [tool_config["toolChoice"]["tool"]] if "tool" in tool_config.get("toolChoice", {}) else []
    for item in items:
        item["name"] = names.get(item["name"], item["name"])


def temperature(req: ChatRequest) -> float | None:
    """``inferenceConfig.temperature`` for a model other than Claude (whose rules are
    :func:`~..claude_rules.sampling`): the caller's, at most :data:`MAX_TEMPERATURE`."""
    given = req.temperature
    if given is not None and given > MAX_TEMPERATURE:
        log.debug("%s: temperature %s sent as %s, the most Converse takes", req.model, given, MAX_TEMPERATURE)
        return MAX_TEMPERATURE
    return given


def stop_sequences(req: ChatRequest, *, claude: bool) -> list[str]:
    """``inferenceConfig.stopSequences``: without the empty ones Converse refuses, and, for
    Claude, without those of only whitespace (another model may well stop at ``"\\n"``)."""
    if claude:
        return claude_stop_sequences(req.stop, req.model)
    return [s for s in req.stop or () if s]


def trim_prefill(messages: list[dict[str, Any]]) -> None:
    """Claude's rule on a final assistant turn, for Converse's blocks (a ``cachePoint`` marks
    the block before it)."""
    prefill_trimmed(messages, lambda block: "text" in block, lambda block: "cachePoint" in block)


def converse_tool_ids(messages: list[dict[str, Any]]) -> None:
    """Map, in place, the tool-call ids Converse refuses (``toolUseId``: 1 to 64 letters, digits,
    ``_`` and ``-``) alike for a call and its result: a conversation begun elsewhere carries
    Kimi K2's ``functions.get_weather:0`` or an OpenAI-compatible server's longer ids, and the
    refused turn would fail every later call (:func:`~..openai.tool_ids.remap_ids`)."""
    refs = [(b["toolUse"] if "toolUse" in b else b["toolResult"], "toolUseId")
            for m in messages for b in m["content"] if "toolUse" in b or "toolResult" in b]
    remap_ids(refs, _is_tool_use_id)


def _is_tool_use_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _TOOL_USE_ID_MAX and _TOOL_USE_ID.fullmatch(value) is not None
