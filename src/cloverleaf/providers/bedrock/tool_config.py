"""The Converse ``toolConfig``: the caller's tools, its tool choice, and structured output as a tool.

Structured output: Converse has no JSON-schema mode shared by all models, so the schema is sent
as a tool (named after ``ResponseFormat.name``: :func:`structured_tool_name`) that the model is
forced to call (``toolChoice: {tool}``, or ``{any}`` when the caller's own tools are also
offered, or ``{auto}`` when Claude's extended thinking forbids forcing). The adapter's parser and
the stream decoder turn that tool call back into a Text part holding the JSON. With
``extra={"structured_output": "native"}`` the adapter uses Converse's
``outputConfig.textFormat`` instead, and no tool is added here.

Which forcing ``toolChoice`` a model takes differs by family (:func:`.model_ids.tool_forcing`):
a forced choice the model refuses is a clear error before sending, and the answer tool of a model
that cannot be forced is offered with a description that asks for the call. Converse refuses
``toolUse``/``toolResult`` blocks in the history without a ``toolConfig``, so a request with such
history and no tools declares the tools it used.

A leaf of the package's request side: the adapter imports it; it needs of its adapter only what
:class:`_Host` names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

from ..._types import ChatRequest
from .._common import checked_tool_choice
from .cache_points import with_cache_point

if TYPE_CHECKING:
    from ..._errors import InvalidRequestError


class _Host(Protocol):
    """What the tool config needs of its adapter (a protocol keeps the import one way)."""

    @property
    def name(self) -> str: ...

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError: ...


_TOOL_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def structured_tool_name(req: ChatRequest) -> str | None:
    """The forced tool that carries structured output for ``req``, if it asks for JSON."""
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    return _TOOL_NAME_BAD.sub("_", fmt.name or "response")[:64] or "response"


def tool_config_for(host: _Host, req: ChatRequest, messages: list[dict[str, Any]], *, forced_ok: bool,
                native: bool, forcing: frozenset[str] | None) -> dict[str, Any] | None:
    """The ``toolConfig`` for ``req`` (None: none to send). ``messages``: the Converse turns
    (their tool blocks need a config); ``forced_ok``: whether a forcing choice is allowed (not
    with a Claude thinking budget); ``native``: structured output goes as ``outputConfig``, not
    as a tool; ``forcing``: the forcing ``toolChoice`` members the model takes
    (:func:`.model_ids.tool_forcing`; None: not known, sent as asked)."""
    choice = checked_tool_choice(req, host.name)
    wanted = {"required": "any", "tool": "tool"}.get(choice.mode if choice is not None else "")
    if wanted is not None and forcing is not None and wanted not in forcing:
        raise host.invalid(
            f"{req.model} on Bedrock cannot be made to call a tool (Converse takes toolChoice "
            f"{wanted!r} only from Claude, Amazon Nova{' and Mistral Large' if wanted == 'any' else ''}): "
            "send tool_choice 'auto' and ask for the tool in the prompt, or use one of those models", req.model)
    tools = [entry for t in req.tools or [] for entry in with_cache_point(
        _tool_spec(t.name, t.description, t.parameters), t.cache_control)]
    if choice is not None and choice.mode == "none":
        tools = tools if _has_tool_blocks(messages) else []
    structured = None if native else structured_tool_name(req)
    if structured is not None:
        if any(t.name == structured for t in req.tools or []):
            raise host.invalid(f"a tool is named {structured!r} like the response format; rename one", req.model)
        fmt = req.response_format
        schema = (fmt.schema if fmt is not None else None) or {"type": "object"}
        tools.append(_tool_spec(structured, "Give the final answer: call this tool with the answer as "
                                            "its input (a JSON value matching the schema).", schema))
    if not tools and _has_tool_blocks(messages):
        # Converse refuses toolUse/toolResult history without a toolConfig: declare those tools.
        seen = {b["toolUse"]["name"] for m in messages for b in m["content"] if "toolUse" in b}
        tools = [_tool_spec(name, None, {"type": "object"}) for name in sorted(seen)]
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    if structured is not None:
        only_tool = not req.tools or (choice is not None and choice.mode == "none")
        if not forced_ok:
            config["toolChoice"] = {"auto": {}}
        elif forcing is not None and "any" not in forcing:
            pass   # Llama, DeepSeek...: a forced choice is a 400; the tool's description asks for the call
        elif not only_tool or (forcing is not None and "tool" not in forcing):
            config["toolChoice"] = {"any": {}}   # the answer tool alone: "any" forces it (Mistral Large)
        else:
            config["toolChoice"] = {"tool": {"name": structured}}
    elif choice is not None and choice.mode != "none":
        config["toolChoice"] = ({"tool": {"name": choice.name}} if choice.mode == "tool"
                                else {"any": {}} if choice.mode == "required" else {"auto": {}})
    return config


def _tool_spec(name: str, description: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "inputSchema": {"json": schema}}
    if description:
        spec["description"] = description
    return {"toolSpec": spec}


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


__all__ = ["structured_tool_name", "tool_config_for"]
