"""Client-executed tool search (``{"type": "tool_search", "execution": "client"}``) and deferred tools.

Codex sends, on gpt-5.x model names, a tool search that *it* runs: the model calls the search
with arguments of the client's schema, the client answers with a ``tool_search_output`` item
listing tool definitions, and from then on those tools are callable. Function tools marked
``defer_loading: true`` stay hidden from the model until a search loads them. Since the client
runs the search, any provider can serve it; for a provider other than OpenAI's Responses API:

- the ``tool_search`` tool goes upstream as a function tool of that name, with its
  ``description`` and ``parameters``; the model's call comes back as a ``tool_search_call``
  item (``call_id``, the parsed ``arguments`` object, ``execution: "client"``, ``status``), which
  the Responses API streams with no events of its own: only the item's added and done events;
- a ``tool_search_output`` in the conversation (``input`` or the stored history of a
  ``previous_response_id``) is the tool result of its call (the names it loaded), and the tools
  it lists join the upstream tools of that request and every later one that carries it;
- a deferred tool goes upstream only once a ``tool_search_output`` loaded it. A call the model
  makes to one anyway is rendered back as usual (the client decides what to do with it);
- ``tool_choice`` ``{"type": "tool_search"}`` forces the search's function (also listed in
  ``allowed_tools``; without a client search it is a 400 saying to add one), and a choice naming
  a deferred tool no search has loaded loads it for that turn: a forced call needs the tool's
  definition (OpenAI's model sees a deferred function's name and description from the start).

On an ``openai-responses/...`` route none of this applies: tools and items go as sent.
"""

from __future__ import annotations

import json
from typing import Any

from ..._types import Tool, ToolCall
from ..fields import bad, get_list, get_str, json_schema_object

#: the tool's type, and the name its function form has upstream
TOOL_SEARCH = "tool_search"
#: a search call and its output: client-run when ``execution`` is ``client``
SEARCH_ITEMS = frozenset({"tool_search_call", "tool_search_output"})
#: tool definitions a search output can load for any provider
_LOADABLE = ("function", "custom", "namespace")


def is_client_search(item: dict[str, Any]) -> bool:
    """Is this ``tools`` entry the client-executed tool search (not OpenAI's hosted one)?"""
    return item.get("type") == TOOL_SEARCH and item.get("execution") == "client"


def is_client_search_item(item: dict[str, Any]) -> bool:
    """A ``tool_search_call`` / ``tool_search_output`` the client ran (not the hosted search's,
    which only OpenAI's Responses API knows)."""
    return item["type"] in SEARCH_ITEMS and item.get("execution", "client") == "client"


def search_as_function(item: dict[str, Any], where: str) -> Tool:
    """The client's tool search as the function tool the upstream model calls."""
    params = item.get("parameters")
    return Tool(name=TOOL_SEARCH, description=get_str(item, "description", where) or
                "Search for more tools to load; the tools found become callable afterwards.",
                parameters=json_schema_object(params, f"{where}.parameters") if params is not None
                else {"type": "object", "properties": {}})


def deferred(obj: dict[str, Any]) -> bool:
    return obj.get("defer_loading") is True


def check_output_tools(item: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A ``tool_search_output``'s ``tools``: objects with a ``type`` (their full check is the
    request's, when they join its tools)."""
    tools = get_list(item, "tools", where, required=True) or []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad(f"{where}.tools[{i}]", "expected a tool definition object with a 'type'")
    return tools


def loaded_definitions(items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The tool definitions the conversation's client-run ``tool_search_output`` items loaded,
    in order, each with the path to name in an error."""
    out = []
    for i, item in enumerate(items):
        if item["type"] == "tool_search_output" and is_client_search_item(item):
            out += [(tool, f"tool_search_output[{i}].tools[{j}]") for j, tool in enumerate(item.get("tools") or ())
                    if tool.get("type") in _LOADABLE]
    return out


def result_text(item: dict[str, Any]) -> str:
    """What the upstream model reads as the search's result: the tools it loaded, by name."""
    names = []
    for tool in item.get("tools") or ():
        if tool.get("type") == "namespace":
            names += [f"{m.get('name')} (in {tool.get('name')})" for m in tool.get("tools") or ()
                      if isinstance(m, dict)]
        elif tool.get("name"):
            names.append(str(tool["name"]))
    if not names:
        return "No tools found."
    return "Loaded these tools, which can now be called: " + ", ".join(names)


def call_arguments(item: dict[str, Any]) -> str:
    """A ``tool_search_call``'s arguments as the JSON text an upstream expects back."""
    arguments = item.get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {},
                                                                   ensure_ascii=False)


def parsed_arguments(raw: str) -> Any:
    """The model's search arguments as the object the item carries (the raw text when it is
    no JSON, so nothing the model wrote is lost)."""
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


def search_call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    """A model's call of the search as OpenAI renders it."""
    return {"type": "tool_search_call", "id": item_id, "call_id": call.id,
            "arguments": parsed_arguments(call.arguments_json), "execution": "client", "status": status}


def _undeferred(tool: dict[str, Any]) -> dict[str, Any]:
    """A loaded definition as a tool the upstream gets (a namespace's members too)."""
    out = {k: v for k, v in tool.items() if k != "defer_loading"}
    if tool.get("type") == "namespace":
        out["tools"] = [_undeferred(m) if isinstance(m, dict) else m for m in tool.get("tools") or ()]
    return out


def with_loaded(entries: list[tuple[str, dict[str, Any], str]], definitions: list[tuple[dict[str, Any], str]],
                ) -> tuple[list[tuple[str, dict[str, Any], str]], frozenset[tuple[str | None, str]]]:
    """The request's tool ``entries`` (kind, object, path) with the ``definitions`` searches
    loaded, and the (namespace, name) of each tool they loaded. A definition the request has
    (a deferred tool by its name, a namespace's member) loads the request's own; one it lacks
    joins the tools (a new member joins its namespace)."""
    entries = list(entries)
    loaded: set[tuple[str | None, str]] = set()
    where = {(kind if kind == "namespace" else "tool", str(obj.get("name"))): i
             for i, (kind, obj, _) in enumerate(entries)}
    for tool, at in definitions:
        kind, name = str(tool["type"]), str(tool.get("name"))
        key = (kind if kind == "namespace" else "tool", name)
        i = where.get(key)
        if kind != "namespace":
            loaded.add((None, name))
            if i is None:
                where[key] = len(entries)
                entries.append((kind, _undeferred(tool), at))
            continue
        members = [m for m in tool.get("tools") or () if isinstance(m, dict)]
        loaded |= {(name, str(m.get("name"))) for m in members}
        if i is None:
            where[key] = len(entries)
            entries.append((kind, _undeferred(tool), at))
            continue
        own_kind, own, own_at = entries[i]
        have = {str(m.get("name")) for m in own.get("tools") or () if isinstance(m, dict)}
        new = [_undeferred(m) for m in members if str(m.get("name")) not in have]
        if new:
            entries[i] = (own_kind, {**own, "tools": [*(own.get("tools") or ()), *new]}, own_at)
    return entries, frozenset(loaded)
