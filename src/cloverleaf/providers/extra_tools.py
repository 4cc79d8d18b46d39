"""Tools in ``extra_body`` are added to the caller's own tools, never put in their place.

``extra_body`` is how a caller reaches a provider's server-side tools (Anthropic's ``web_search``,
Gemini's ``google_search`` and ``code_execution``, the Responses API's ``web_search``, Nova's
``systemTool``) next to the function tools of ``ChatRequest.tools``. Merged like any other
field, its ``tools`` list replaced the one built from ``ChatRequest.tools``, and the caller's
functions were silently gone from the request. Here the extra tools come after the built ones;
an extra tool named like a built one replaces it, so a caller who had put the whole list in
``extra_body`` (the work-around, or the server relaying a client's tools) sends each tool once,
in its own order. Only a tool of a kind the caller defines (a function, a custom tool, a relayed
Responses namespace or client tool search, a Converse ``toolSpec``) stands for a built one: a
provider's own tool (Anthropic's ``{"type": "web_search_20250305", "name": "web_search"}``, Nova's
``systemTool``) named like one of the caller's functions used to drop that function without a
word, and is now an :class:`InvalidRequestError` naming both (the API takes one tool per name).
:func:`extra_tool_names` lets an adapter that renames the caller's tools keep clear of these
names. A ``tools`` value that is not a list is the caller's to send as given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._errors import InvalidRequestError, clipped

#: A tool's name in one API's tool shape, None for a tool without one (a server tool by type).
NameOf = Callable[[Any], str | None]

#: The ``type`` of a tool the caller defines itself, in any API's shape (none: an Anthropic custom
#: tool, a Converse ``toolSpec``); any other type, or a ``systemTool``, is the provider's own tool.
_CALLERS_TYPES = frozenset({None, "function", "custom", "namespace", "tool_search"})


def tool_name(tool: Any) -> str | None:
    """The name of an Anthropic, Responses (``name``) or Chat Completions (``function.name``) tool,
    or of a Gemini function declaration."""
    if not isinstance(tool, dict):
        return None
    name = tool.get("name")
    if name is None and isinstance(tool.get("function"), dict):
        name = tool["function"].get("name")
    return name if isinstance(name, str) else None


def joined(built: Any, extra: Any, name_of: NameOf = tool_name) -> Any:
    """``built`` followed by ``extra``, an extra tool replacing the built one of its name (in
    ``extra``'s order: a list sent whole, as the server relays a Responses client's tools, keeps
    the client's order); ``extra`` as given when either is not a list."""
    if not isinstance(extra, list) or not isinstance(built, list):
        return extra
    mine = {name for tool in built if (name := name_of(tool)) is not None}
    for tool in extra:
        if (name := name_of(tool)) in mine and not is_callers_kind(tool):
            raise InvalidRequestError(
                f"two tools are named {name!r}: your function tool and the extra_body tool {clipped(tool, 120)} "
                f"(a provider's own tool); a request takes one tool per name: rename your function "
                f"(e.g. 'my_{name}') or drop that tool from extra_body")
    replaced = {name for tool in extra for name in _names(tool, name_of)}
    return [tool for tool in built if name_of(tool) not in replaced] + extra


def is_callers_kind(tool: Any) -> bool:
    """True for a tool of a kind the caller defines (it may stand for a built tool of its name),
    False for a provider's own tool (a server tool by ``type``, a Converse ``systemTool``)."""
    return isinstance(tool, dict) and "systemTool" not in tool and tool.get("type") in _CALLERS_TYPES


def extra_tool_names(extra: Mapping[str, Any] | None, name_of: NameOf = tool_name, key: str = "tools") -> list[str]:
    """The names the tools of ``extra[key]`` take (a relayed namespace's members too): an adapter
    that sends a caller's name in another form (``web.search`` as ``web_search``) never picks one
    of them, or the extra tool would take the caller's place."""
    tools = extra.get(key) if extra else None
    return [name for tool in tools for name in _names(tool, name_of)] if isinstance(tools, list) else []


def _names(tool: Any, name_of: NameOf) -> list[str]:
    """The names of the built tools ``tool`` stands for: its own; a Responses ``namespace``'s
    members too (built as functions of their own names, or ``<namespace>__<name>`` where two
    clash), and a client ``tool_search`` (built as the function ``tool_search``): a relayed
    client's list then replaces what was built from it, and no tool goes up twice."""
    name = name_of(tool)
    names = [name] if name is not None else []
    if isinstance(tool, dict):
        if tool.get("type") == "tool_search":
            names.append("tool_search")
        elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            for member in tool["tools"]:
                if (inner := name_of(member)) is not None:
                    names += (inner, f"{name}__{inner}")
    return names


def with_extra_tools(body: Mapping[str, Any], extra_body: Mapping[str, Any], name_of: NameOf = tool_name,
                     key: str = "tools") -> dict[str, Any]:
    """``extra_body`` with its ``key`` list joined to ``body``'s (see :func:`joined`), ready to be
    merged into ``body`` as the adapter merges any other extra field."""
    extra = dict(extra_body)
    if key in extra:
        extra[key] = joined(body.get(key), extra[key], name_of)
    return extra


def gemini_tools(built: Any, extra: Any) -> Any:
    """Gemini's ``tools``: a list of tool objects, the caller's functions in one
    ``functionDeclarations`` object. Extra function declarations join that object (one of a
    name replacing the built one); any other extra tool (``google_search``, ``code_execution``,
    ``url_context``...) is added beside it."""
    if not isinstance(extra, list) or not isinstance(built, list):
        return extra
    out = [dict(tool) if isinstance(tool, dict) else tool for tool in built]
    functions = next((tool for tool in out if isinstance(tool, dict)
                      and isinstance(tool.get("functionDeclarations"), list)), None)
    for tool in extra:
        declarations = _declarations(tool)
        if functions is not None and declarations is not None:
            functions["functionDeclarations"] = joined(functions["functionDeclarations"], declarations)
        else:
            out.append(tool)
    return out


def _declarations(tool: Any) -> list[Any] | None:
    """The declarations of an extra tool object that holds only function declarations (either
    spelling), else None."""
    if not isinstance(tool, dict) or len(tool) != 1:
        return None
    value = tool.get("functionDeclarations", tool.get("function_declarations"))
    return value if isinstance(value, list) else None


__all__ = ["extra_tool_names", "gemini_tools", "is_callers_kind", "joined", "tool_name", "with_extra_tools"]
