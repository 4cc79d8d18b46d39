"""Tools: Python functions, pydantic models or JSON Schema dicts → :class:`Tool`; and the
optional loop that runs the model's tool calls until it answers.

A function's schema comes from its signature (types through pydantic, so ``list[int]``,
``Literal``, ``Optional``, nested models and defaults all work) and its docstring (the
summary becomes the description; Google-style ``Args:`` and Sphinx ``:param x:`` lines
describe parameters).

The tool loop is written once as a generator that yields "call the model with these
messages" and receives the response, so the sync and async clients drive the same code.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Generator
from typing import Any

from ._errors import ConfigError
from ._json_schema import object_root
from ._types import Attachment, ChatResponse, Message, Role, Text, Tool, ToolCall, ToolChoice, ToolResult, Usage


def to_tool(obj: Any) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, dict):
        return _tool_from_dict(obj)
    if isinstance(obj, type) and hasattr(obj, "model_json_schema"):
        schema = object_root(obj.model_json_schema())   # a recursive model's root is a $ref
        description = schema.pop("description", None) or _doc_summary(obj.__doc__)
        schema.pop("title", None)
        return Tool(name=obj.__name__, description=description, parameters=schema)
    if callable(obj):
        return tool_from_function(obj)
    raise ConfigError(f"cannot use {obj!r} as a tool: pass a function, a pydantic model, a Tool "
                      "or an OpenAI-style {'type': 'function', 'function': {...}} dict")


def _tool_from_dict(d: dict[str, Any]) -> Tool:
    fn = d.get("function") if d.get("type") == "function" else d
    if not isinstance(fn, dict) or not fn.get("name"):
        raise ConfigError("a tool dict needs a 'name' (or {'type': 'function', 'function': {'name': ...}})")
    params = fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}}
    # an Anthropic-style tool carries its prompt-cache breakpoint beside its name; an OpenAI-style
    # one may carry it on the outer dict (as LiteLLM's callers write it) or inside "function"
    cache_control = d.get("cache_control", fn.get("cache_control"))
    if cache_control is not None and not isinstance(cache_control, dict):
        raise ConfigError(f"tool {fn['name']!r}: cache_control must be a dict such as {{'type': 'ephemeral'}}, "
                          f"got {type(cache_control).__name__}")
    return Tool(name=fn["name"], description=fn.get("description"), parameters=params, strict=fn.get("strict"),
                cache_control=cache_control)


def to_tool_choice(value: Any) -> ToolChoice | None:
    if value is None or isinstance(value, ToolChoice):
        return value
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return ToolChoice(value)  # type: ignore[arg-type]
        if value == "any":
            return ToolChoice("required")
        return ToolChoice("tool", value)
    if isinstance(value, dict):
        name = (value.get("function") or {}).get("name") or value.get("name")
        if name:
            return ToolChoice("tool", name)
        if value.get("type") in ("auto", "none", "any", "required"):
            return to_tool_choice(value["type"])
    raise ConfigError("tool_choice must be 'auto', 'none', 'required', a tool name, or {'type': 'function', "
                      "'function': {'name': ...}}")


_PARAM_LINE = re.compile(r"^\s*(?::param\s+)?(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _doc_summary(doc: str | None) -> str | None:
    if not doc:
        return None
    text = inspect.cleandoc(doc)
    summary = text.split("\n\n", 1)[0].strip()
    return " ".join(summary.split()) or None


def _doc_params(doc: str | None) -> dict[str, str]:
    if not doc:
        return {}
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:", "params:"):
            in_args = True
            continue
        if stripped.startswith(":param "):
            m = _PARAM_LINE.match(stripped)
            if m:
                out[m.group(1)] = m.group(2).strip()
            continue
        if in_args:
            if not stripped:
                continue
            if not line.startswith((" ", "\t")) and stripped.endswith(":"):
                in_args = False
                continue
            m = _PARAM_LINE.match(stripped)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


#: The names providers accept for a tool (OpenAI's rule, the strictest).
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def tool_from_function(fn: Callable[..., Any]) -> Tool:
    """A Tool for any Python callable: a function, a ``functools.partial`` (its bound arguments are
    not the model's to give), or an object with ``__call__``. Every parameter name works: the
    parameters model names its fields ``p0``, ``p1``... with the parameter names as aliases, so a
    parameter called ``model_config``, ``json`` or ``_id`` neither clashes with pydantic nor is
    taken for a private attribute."""
    from pydantic import Field, create_model

    name = _tool_name(fn)
    target = _annotated_callable(fn)
    sig = inspect.signature(fn)
    try:
        hints = inspect.get_annotations(target, eval_str=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations fall back to Any
        hints = {}
    bound = _bound_keywords(fn)
    docs = _doc_params(target.__doc__ or getattr(fn, "__doc__", None))
    fields: dict[str, Any] = {}
    params: dict[str, str] = {}   # field name -> parameter name
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in bound:
            continue
        field_name = f"p{len(fields)}"
        default = ... if param.default is param.empty else param.default
        fields[field_name] = (hints.get(param.name, Any), Field(default, alias=param.name))
        params[field_name] = param.name
    model = create_model(f"{name}_params", **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop_name, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        if prop_name in docs:
            prop.setdefault("description", docs[prop_name])
    takes_more = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())

    def arguments(raw: dict[str, Any]) -> dict[str, Any]:
        """The model's JSON as the function's types: the schema promised a ``Loc``, not a dict."""
        parsed = model.model_validate(raw)
        out = {param: getattr(parsed, field) for field, param in params.items()}
        if takes_more:
            out.update({k: v for k, v in raw.items() if k not in out})
        return out

    return Tool(name=name, description=_doc_summary(target.__doc__ or getattr(fn, "__doc__", None)),
                parameters=schema, function=fn, arguments=arguments)


def _tool_name(fn: Callable[..., Any]) -> str:
    """The callable's own name (a partial's function's, an object's class's), when a provider
    accepts it as a tool name; else a ConfigError saying how to give one."""
    inner = fn
    while isinstance(inner, functools.partial):
        inner = inner.func
    name = getattr(fn, "__name__", None) or getattr(inner, "__name__", None) or type(inner).__name__
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ConfigError(f"a tool's name must be letters, digits, '_' or '-' (at most 64 characters), and this "
                          f"callable's is {name!r}: define it with def under such a name, or set its __name__")
    return name


def _bound_keywords(fn: Callable[..., Any]) -> set[str]:
    """The parameters partials fixed by keyword: the caller chose them, not the model."""
    bound: set[str] = set()
    while isinstance(fn, functools.partial):
        bound |= set(fn.keywords)
        fn = fn.func
    return bound


def _annotated_callable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where ``fn``'s annotations and docstring are: the function under a partial, or an object's
    ``__call__`` method."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isroutine(fn) or isinstance(fn, type):
        return fn
    call = inspect.getattr_static(type(fn), "__call__", None)
    return call if inspect.isfunction(call) else fn


def _call_arguments(tool: Tool, call: ToolCall) -> dict[str, Any]:
    """The call's arguments converted for ``tool.function`` (as they came, for a plain callable)."""
    return tool.arguments(call.arguments) if tool.arguments is not None else call.arguments


def run_tool(call: ToolCall, tools: dict[str, Tool]) -> ToolResult:
    """Run one call against the Python functions; whatever the tool raises goes back to the model,
    not up (as on AsyncClient), a ConfigError from a helper call inside it included. Only an async
    tool, which a sync client cannot run, stops the conversation."""
    refused = _refused(call, tools)
    if refused is not None:
        return refused
    tool = tools[call.name]
    try:
        value = tool.function(**_call_arguments(tool, call))
    except Exception as exc:  # noqa: BLE001 - the model sees the failure and can recover
        return _failed(call, exc)
    if inspect.isawaitable(value):
        _discard(value)
        raise ConfigError(f"tool {call.name!r} is async: use AsyncClient for async tools")
    return _result(call, value)


async def arun_tool(call: ToolCall, tools: dict[str, Tool]) -> ToolResult:
    """As :func:`run_tool`, awaiting what the tool returns when it is awaitable: an ``async def``,
    but also a decorated one or an object with an async ``__call__``, which look synchronous. A
    plain (``def``) tool runs in a worker thread (``asyncio.to_thread``, which carries the caller's
    context variables), so blocking I/O in it neither stalls the event loop nor the other calls."""
    import asyncio

    refused = _refused(call, tools)
    if refused is not None:
        return refused
    tool = tools[call.name]
    try:
        kwargs = _call_arguments(tool, call)
        if _is_async(tool.function):
            value = tool.function(**kwargs)
        else:
            value = await asyncio.to_thread(tool.function, **kwargs)
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:  # noqa: BLE001 - the model sees the failure and can recover
        return _failed(call, exc)
    return _result(call, value)


def _is_async(fn: Any) -> bool:
    """True for an ``async def`` (under partials or ``functools.wraps`` decorators) or an object
    whose ``__call__`` is one: it is called on the event loop. Anything else may block."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        fn = inspect.unwrap(fn)
    else:
        fn = inspect.getattr_static(type(fn), "__call__", None)
    return inspect.iscoroutinefunction(fn)


async def arun_tools(calls: list[ToolCall], tools: dict[str, Tool]) -> list[ToolResult]:
    """The model's parallel calls at once (results in the calls' order): they were asked for
    together, and each async tool would otherwise wait for the one before it."""
    import asyncio

    return list(await asyncio.gather(*(arun_tool(c, tools) for c in calls)))


def _refused(call: ToolCall, tools: dict[str, Tool]) -> ToolResult | None:
    """The error result the model gets instead of a run: no such function, or no JSON arguments."""
    tool = tools.get(call.name)
    if tool is None or tool.function is None:
        return ToolResult(call.id, f"error: no tool named {call.name!r}", name=call.name, is_error=True)
    if "_raw" in call.arguments and len(call.arguments) == 1:
        return ToolResult(call.id, "error: the arguments were not valid JSON", name=call.name, is_error=True)
    return None


def _failed(call: ToolCall, exc: Exception) -> ToolResult:
    return ToolResult(call.id, f"error: {type(exc).__name__}: {exc}", name=call.name, is_error=True)


def _discard(awaitable: Any) -> None:
    """Close a coroutine that will never be awaited, so it does not warn at collection."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _result(call: ToolCall, value: Any) -> ToolResult:
    """What a tool returned, as the result of ``call``: a ToolResult it built keeps its content
    and error flag; an Attachment (a screenshot, a chart) or a list holding Text or Attachment
    parts is sent as those parts, which the adapters encode as the provider's image/file input;
    anything else is sent as text."""
    if isinstance(value, ToolResult):
        return ToolResult(call.id, value.content, name=call.name, is_error=value.is_error)
    parts = _parts(value)
    return ToolResult(call.id, parts if parts is not None else _to_text(value), name=call.name)


def _parts(value: Any) -> list[Text | Attachment] | None:
    """``value`` as message parts when it is one or a list of them (strings in such a list are
    text parts); None for anything else, a plain list of strings included: that is data."""
    if isinstance(value, (Text, Attachment)):
        return [value]
    if not isinstance(value, (list, tuple)) or not any(isinstance(v, (Text, Attachment)) for v in value):
        return None
    if not all(isinstance(v, (str, Text, Attachment)) for v in value):
        return None
    return [Text(v) if isinstance(v, str) else v for v in value]


def _to_text(value: Any) -> str:
    """A tool's return value as the text the model reads: JSON for data, pydantic models,
    dataclasses, dates, enums and sets at any depth (bytes as base64, pydantic's choice); ``str()``
    for what has no JSON form."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())
    from pydantic_core import to_jsonable_python

    try:
        return json.dumps(to_jsonable_python(value, fallback=str, bytes_mode="base64"))
    except (TypeError, ValueError, RecursionError):
        return str(value)


def tool_loop(messages: list[Message], max_tool_turns: int) -> Generator[list[Message] | list[ToolCall],
                                                                         Any, ChatResponse]:
    """Drive a conversation until the model stops calling tools.

    Protocol (driven by the sync/async clients): the generator yields ``messages`` to send
    and receives the ChatResponse; when the response has tool calls it yields the list of
    calls and receives the list of ToolResults; it returns the final response. After
    ``max_tool_turns`` rounds of tool calls it returns the last response, whose ``usage`` and
    ``cost`` are then the whole conversation's: every turn was a billed call.
    """
    history = list(messages)
    turns = 0
    usage: Usage | None = None
    costs: list[float | None] = []
    while True:
        response: ChatResponse = yield history
        if response.usage is not None:
            usage = response.usage if usage is None else usage + response.usage
        costs.append(response.cost)
        calls = response.tool_calls
        if not calls or turns >= max_tool_turns:
            if turns:   # the sums of every turn (a cost is known only when every turn's is)
                response.usage = usage
                response.cost = None if None in costs else sum(costs)  # type: ignore[arg-type]
            return response
        turns += 1
        results: list[ToolResult] = yield calls
        history.append(response.to_message())
        history.append(Message(Role.TOOL, parts=list(results)))
