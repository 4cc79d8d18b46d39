"""Client-run tools that only the Responses API defines: ``custom`` (freeform) and ``namespace``.

Codex sends its ``apply_patch`` as a *custom* tool (the model writes the patch as plain text,
following a grammar, not as JSON arguments) and its sub-agent tools as a *namespace* (a named
group of function tools). Both are run by the client, like function tools, so any provider can
serve them; only the wire differs. For a provider other than OpenAI's Responses API:

- a custom tool goes upstream as a function tool with one string parameter, ``input``; its
  description tells the model the input is free text and gives the grammar (or regex) it must
  follow. The model's call comes back as a ``custom_tool_call`` item whose ``input`` is that
  string, as OpenAI renders one;
- a namespace's tools are flattened into the tool list, each under its own name unless that
  name is taken by another tool (then ``<namespace>__<name>``). A call comes back as OpenAI
  renders a namespaced call: its own ``name`` and the ``namespace`` it belongs to.

:class:`ToolNames` is that mapping, one per request: the upstream (flat) name of each such tool
and how its call is rendered, both ways (the client sends the call items back in ``input``).
:class:`InputStream` turns the streamed JSON arguments of a custom call back into the raw text
deltas of ``response.custom_tool_call_input.delta``. On an ``openai-responses/...`` route all of
this is skipped: the tools and items go upstream as sent. The client-executed ``tool_search``
and deferred tools (``defer_loading``) are mapped here too; :mod:`.tool_search` says how.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..._types import Tool, ToolCall
from ..fields import bad, function_tool, get_list, get_name, get_str
from .tool_search import TOOL_SEARCH, deferred, search_as_function, search_call_item

#: the one parameter a custom tool gets as a function tool
INPUT = "input"
#: between a namespace and a tool name, when the bare name is taken
SEPARATOR = "__"
_NESTED_KINDS = ("function", "custom")
_JSON = json.JSONDecoder(strict=False)
_INPUT_START = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_OPEN_ESCAPE = re.compile(r"(\\+)(u[0-9a-fA-F]{0,3})?$")


@dataclass(frozen=True, slots=True)
class ClientTool:
    """How a flattened tool is named to the client: ``custom``, ``function`` or ``tool_search``,
    its own name, and the namespace it came in (None at top level)."""

    kind: str
    name: str
    namespace: str | None = None


@dataclass(slots=True)
class ToolNames:
    """The request's custom and namespaced tools (and its client-run tool search), by the name
    the upstream knows them by; and the flat names of the deferred tools not loaded yet, which
    the upstream does not get."""

    by_flat: dict[str, ClientTool] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.by_flat or self.deferred)

    def flat(self, name: str, namespace: str | None = None, kind: str = "function") -> str:
        """The upstream name of a client's call item (``name`` and ``namespace`` as it sent
        them back). A call to a tool this request does not define keeps a name derived the
        same way (the prefixed one for a namespace), so the history still reads sensibly."""
        for flat, tool in self.by_flat.items():
            if tool.name == name and tool.namespace == namespace and (namespace is not None or tool.kind == kind):
                return flat
        return f"{namespace}{SEPARATOR}{name}" if namespace else name

    def custom(self, flat_name: str) -> ClientTool | None:
        tool = self.by_flat.get(flat_name)
        return tool if tool is not None and tool.kind == "custom" else None

    def item_type(self, flat_name: str) -> str:
        """The output item type a call of this upstream tool is rendered as."""
        tool = self.by_flat.get(flat_name)
        kind = tool.kind if tool is not None else "function"
        return {"custom": "custom_tool_call", TOOL_SEARCH: "tool_search_call"}.get(kind, "function_call")

    def call_item(self, item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
        """A neutral call as the output item OpenAI would render: ``custom_tool_call`` with the
        raw ``input`` for a custom tool, ``function_call`` (with its ``namespace`` when it has
        one) otherwise."""
        tool = self.by_flat.get(call.name)
        if tool is not None and tool.kind == TOOL_SEARCH:
            return search_call_item(item_id, call, status)
        if tool is not None and tool.kind == "custom":
            item: dict[str, Any] = {"type": "custom_tool_call", "id": item_id, "call_id": call.id,
                                    "name": tool.name, "input": custom_input(call.arguments_json)}
        else:
            item = {"type": "function_call", "id": item_id, "call_id": call.id,
                    "name": tool.name if tool is not None else call.name, "arguments": call.arguments_json,
                    "status": status}
        if tool is not None and tool.namespace is not None:
            item["namespace"] = tool.namespace
        return item


def custom_as_function(item: dict[str, Any], where: str, name: str | None = None) -> Tool:
    """A ``custom`` tool as a function tool taking the freeform text as one string, ``input``."""
    own = get_name(item, "name", where)
    description = get_str(item, "description", where) or ""
    fmt = item.get("format")
    rule = ""
    if fmt is not None:
        if not isinstance(fmt, dict):
            raise bad(f"{where}.format", "expected an object: {\"type\": \"text\"} or {\"type\": \"grammar\", ...}")
        kind = get_str(fmt, "type", f"{where}.format", required=True)
        if kind == "grammar":
            syntax = get_str(fmt, "syntax", f"{where}.format", required=True)
            definition = get_str(fmt, "definition", f"{where}.format", required=True)
            rule = f"\n\nThe input must follow this {syntax} grammar:\n{definition}"
        elif kind != "text":
            raise bad(f"{where}.format.type", f"expected 'text' or 'grammar', got {kind!r}")
    note = ("This is a freeform tool: put the raw text (not JSON, not quoted or escaped beyond what "
            f"the JSON string needs) in the `{INPUT}` argument.")
    return Tool(name=name or own, description=(description + "\n\n" if description else "") + note + rule,
                parameters={"type": "object", "properties": {INPUT: {"type": "string", "description":
                                                                     "The tool's freeform input text."}},
                            "required": [INPUT], "additionalProperties": False})


def namespace_tools(item: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any], str]]:
    """A ``namespace`` tool's members: (kind, the member object, its path), checked."""
    get_name(item, "name", where)
    members = []
    for i, member in enumerate(get_list(item, "tools", where, required=True) or ()):
        at = f"{where}.tools[{i}]"
        if not isinstance(member, dict):
            raise bad(at, "expected a function or custom tool object")
        kind = get_str(member, "type", at, required=True)
        if kind not in _NESTED_KINDS:
            raise bad(f"{at}.type", f"a namespace holds function or custom tools, not {kind!r}")
        get_name(member, "name", at)
        members.append((kind, member, at))
    return members


def flatten(entries: list[tuple[str, dict[str, Any], str]],
            loaded: frozenset[tuple[str | None, str]] = frozenset()) -> tuple[list[Tool], ToolNames]:
    """The function tools the upstream gets for the request's function, custom, namespace and
    client ``tool_search`` ``entries`` (kind, object, path), in order, and the names to map their
    calls back by. A tool marked ``defer_loading`` is left out unless ``loaded`` holds its
    (namespace, name): a ``tool_search_output`` loaded it."""
    top = {str(obj.get("name")) for kind, obj, _ in entries if kind in _NESTED_KINDS}
    members: list[tuple[str, dict[str, Any], str, str]] = []
    for kind, obj, at in entries:
        if kind == "namespace":
            members += [(k, m, a, str(obj["name"])) for k, m, a in namespace_tools(obj, at)]
    counts: dict[str, int] = {}
    for _, member, _, _ in members:
        counts[member["name"]] = counts.get(member["name"], 0) + 1
    names = ToolNames()
    tools: list[Tool] = []
    descriptions = {str(obj["name"]): get_str(obj, "description", at) or "" for kind, obj, at in entries
                    if kind == "namespace"}
    queue = iter(members)
    for kind, obj, at in entries:
        if kind == TOOL_SEARCH:
            names.by_flat[TOOL_SEARCH] = ClientTool(TOOL_SEARCH, TOOL_SEARCH)
            tools.append(search_as_function(obj, at))
        elif kind in _NESTED_KINDS:
            tool = function_tool(obj, at) if kind == "function" else custom_as_function(obj, at)
            if kind == "custom":
                names.by_flat[tool.name] = ClientTool("custom", tool.name)
            if deferred(obj) and (None, tool.name) not in loaded:
                names.deferred.add(tool.name)
            else:
                tools.append(tool)
        else:
            for _ in namespace_tools(obj, at):
                m_kind, member, m_at, space = next(queue)
                own = member["name"]
                flat = own if own not in top and counts[own] == 1 else f"{space}{SEPARATOR}{own}"
                tool = custom_as_function(member, m_at, flat) if m_kind == "custom" else function_tool(member, m_at)
                tool.name = flat
                if descriptions[space]:
                    tool.description = f"({space}: {descriptions[space]}) {tool.description or ''}".rstrip()
                names.by_flat[flat] = ClientTool(m_kind, own, space)
                if deferred(member) and (space, own) not in loaded:
                    names.deferred.add(flat)
                else:
                    tools.append(tool)
    return tools, names


def custom_input(arguments: str) -> str:
    """A custom call's raw input from the function arguments the model wrote: the ``input``
    string (or the one string it holds under another name); the arguments themselves when they
    are no such object, so nothing the model wrote is lost."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict):
        text = value.get(INPUT)
        if isinstance(text, str):
            return text
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return arguments


def input_arguments(text: str) -> str:
    """A custom call's raw input as the function arguments an upstream expects back."""
    return json.dumps({INPUT: text}, ensure_ascii=False)


class InputStream:
    """The raw text of a custom call's ``input`` as its JSON arguments stream in: each fragment
    yields the newly decoded text (an escape cut between fragments waits for its end), so the
    client sees ``custom_tool_call_input.delta`` events as OpenAI sends them."""

    __slots__ = ("_raw", "_start", "sent")

    def __init__(self) -> None:
        self._raw = ""
        self._start: int | None = None
        self.sent = ""

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._start is None:
            match = _INPUT_START.match(self._raw)
            if match is None:
                return ""
            self._start = match.end()
        text = _decoded_prefix(self._raw[self._start:])
        if text is None or not text.startswith(self.sent):
            return ""
        new, self.sent = text[len(self.sent):], text
        return new

    def rest(self, final: str) -> str:
        """What the deltas have not yet said of the ``final`` input."""
        return final[len(self.sent):] if final.startswith(self.sent) else ""


def _decoded_prefix(body: str) -> str | None:
    """The text of a JSON string's body so far (from after its opening quote)."""
    try:
        return str(_JSON.raw_decode('"' + body)[0])   # the string has closed
    except ValueError:
        pass
    match = _OPEN_ESCAPE.search(body)
    if match is not None and len(match.group(1)) % 2 == 1:
        body = body[:match.end(1) - 1]
    try:
        text = str(_JSON.decode('"' + body + '"'))
    except ValueError:
        return None
    if text and "\ud800" <= text[-1] <= "\udbff":  # half a surrogate pair: wait for the other half
        text = text[:-1]
    return text
