"""``POST /v1/responses`` bodies -> a neutral request; a neutral answer -> the Response object.

Pure functions, like :mod:`..openai_wire`: a mistake is a 400 naming the exact field, the
body is read once. The items themselves are translated in :mod:`.items`.

Honoured: ``input`` (string or items), ``instructions`` (a system message placed first; as
in OpenAI's API it is *not* carried over by ``previous_response_id``), ``previous_response_id``,
``store`` (default true), ``stream``, function ``tools``, ``tool_choice`` (``allowed_tools``
included), ``parallel_tool_calls``, ``text.format`` (``text``/``json_object``/``json_schema``),
``reasoning.effort``/``summary`` (``xhigh`` and ``max`` are ``high`` for providers that have
no such effort, as on Chat Completions), ``max_output_tokens``, ``temperature``, ``top_p``,
``metadata``, ``user``/``safety_identifier``. A function tool sent without ``strict`` is called
non-strict and echoed so, except on a relay to OpenAI's Responses API, which gets it without
``strict`` and applies its own default; the relay also gets ``store: false``, ``metadata`` and
the effort as sent, and ``prompt_cache_key``/``prompt_cache_retention`` (OpenAI's prompt-cache
routing: Codex keys each conversation) (:meth:`ResponsesRequest._relayed_fields`).

Accepted, checked and ignored (no portable meaning; ``RESPONSES_IGNORED``): ``include`` (an
array of strings), ``truncation``, ``service_tier``, ``prompt_cache_key`` and
``prompt_cache_retention`` (except on a relay, above), ``prompt_cache_options``, ``stream_options``, ``max_tool_calls``,
``moderation``, ``background_options``, ``client_metadata`` (Codex), ``text.verbosity``,
``top_logprobs: 0``. Refused with a 400: ``background: true``, ``conversation``, ``prompt``
(stored prompts), ``top_logprobs`` > 0, ``context_management`` (server-side compaction), and
any other top-level field (``unknown_field``: a misspelt ``instruction`` would otherwise
change the answer without a word).

Client-run ``custom`` (freeform) and ``namespace`` tools are flattened into function tools for
every provider (:mod:`.client_tools`), and their calls rendered back as OpenAI renders them; a
relay to OpenAI's Responses API gets them, and their items in ``input``, as sent. So is the
client-executed ``tool_search`` (``execution: "client"``) with the function tools it defers
(``defer_loading``), which go upstream once a ``tool_search_output`` in the conversation loaded
them (:mod:`.tool_search`); OpenAI's hosted tool search is a built-in tool.

Built-in tools (web search, file search, computer use, code interpreter, MCP...) are
collected apart: the route refuses them unless every target of the model is OpenAI's own
Responses API, which runs them itself (see :mod:`.api`). The same holds for their items in
``input`` (``web_search_call``, ``computer_call_output``...), which a client managing its own
history sends back: when there are any, OpenAI gets the client's ``input`` exactly as sent
(after the rebuilt ``previous_response_id`` history), since only it knows those items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..._types import (
    ChatRequest,
    ChatResponse,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Role,
    Tool,
    ToolChoice,
    Usage,
)
from ...providers.openai.responses_messages import encode_function_tool, encode_input
from ..fields import (
    MAX_TOKENS,
    as_dict,
    bad,
    check_fields,
    check_tool_choice,
    function_tool,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_model,
    get_name,
    get_number,
    get_str,
    json_schema_object,
    tool_objects,
)
from .client_tools import ToolNames, flatten
from .items import (
    GATEWAY_ITEM_ID,
    holds_refusal,
    items_to_messages,
    normalise_input,
    output_items,
    relayed_verbatim,
    with_refusal_marked,
)
from .tool_search import TOOL_SEARCH, deferred, is_client_search, loaded_definitions, with_loaded

#: OpenAI's reasoning efforts, as the neutral ones (the top two are "as much as there is"; OpenAI's
#: Responses API gets them as sent on a relay)
_EFFORTS: dict[str, Literal["minimal", "low", "medium", "high"]] = {
    "minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_SUMMARIES = {"auto", "concise", "detailed"}
MAX_METADATA_KEYS = 16
RESPONSES_FIELDS = frozenset({
    "model", "input", "instructions", "previous_response_id", "store", "stream", "tools", "tool_choice", "text",
    "reasoning", "max_output_tokens", "temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier",
    "metadata", "truncation", "background", "conversation", "prompt", "top_logprobs"})
RESPONSES_IGNORED: dict[str, Any] = {
    "include": "array", "service_tier": "string", "prompt_cache_key": "string", "prompt_cache_retention": "string",
    "prompt_cache_options": "object", "stream_options": "object", "max_tool_calls": ("integer", 0, MAX_TOKENS),
    "moderation": "any", "background_options": "object", "client_metadata": "object"}
RESPONSES_REFUSED = {"context_management": "server-side context management (compaction) is not available through "
                                           "the gateway; drop 'context_management'"}


@dataclass(slots=True)
class ResponsesRequest:
    """A parsed ``POST /v1/responses`` body: what the gateway needs, and what the Response
    object echoes back (OpenAI's objects repeat the request's settings)."""

    model: str
    input_items: list[dict[str, Any]]
    instructions: str | None
    previous_response_id: str | None
    store: bool
    stream: bool
    tools: list[Tool] | None
    tool_choice: ToolChoice | None
    response_format: ResponseFormat | None
    reasoning: ReasoningConfig | None
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    parallel_tool_calls: bool | None
    user: str | None
    metadata: dict[str, str]
    #: the client's own words for the echoed settings (tools, tool_choice, text, reasoning...)
    echo: dict[str, Any]
    #: built-in tools as sent (served only by OpenAI's Responses API)
    builtin_tools: list[dict[str, Any]] = field(default_factory=list)
    #: the ``tools`` array exactly as sent (what OpenAI's Responses API gets on a relay)
    sent_tools: list[Any] = field(default_factory=list)
    #: the ``input`` array exactly as sent (relayed verbatim when it holds built-in tool items)
    sent_input: list[Any] = field(default_factory=list)
    #: names of the function tools sent without ``strict`` (OpenAI's default is strict, the
    #: gateway's non-strict)
    unset_strict: frozenset[str] = frozenset()
    #: ``prompt_cache_key`` / ``prompt_cache_retention`` as sent: OpenAI routes requests that
    #: share a key to the same cache (Codex sends its conversation's id), so a relay keeps them
    prompt_cache: dict[str, str] = field(default_factory=dict)
    #: the custom and namespaced tools, by the flat names the upstream knows them by
    names: ToolNames = field(default_factory=ToolNames)
    #: the function, custom, namespace and client tool_search tools as sent (kind, object, path):
    #: the upstream tools again once the history's tool searches have loaded deferred ones
    tool_entries: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    #: the flat names ``tool_choice.allowed_tools`` allows (None: all)
    allowed: list[str] | None = None
    #: input index -> the id its ``item_reference`` named, for those put back as stored items (.item_refs)
    references: dict[int, str] = field(default_factory=dict)
    #: the deferred tool ``tool_choice`` forces, loaded for this turn: its (namespace, name)
    forced: frozenset[tuple[str | None, str]] = frozenset()

    @property
    def builtin_items(self) -> bool:
        """Whether ``input`` holds items OpenAI's Responses API must get as sent (built-in tool
        items, custom tool items, namespaced calls) on a relay."""
        return any(relayed_verbatim(item) for item in self.input_items)

    def chat_request(self, history: list[dict[str, Any]], *, relay: bool = False) -> ChatRequest:
        """The neutral request: instructions, the rebuilt history (the stored items of the
        conversation so far), then this request's input.

        ``relay``: every target is OpenAI's Responses API. When built-in tool items are in play
        (in this request or in the history) it gets the conversation as items, built-in ones
        verbatim and in their place: a ``computer_call_output`` needs its ``computer_call``
        before it, and a reasoning item the item it led to. (Other providers get the neutral
        messages, where a built-in call is dropped: its result is in the message after it.)"""
        if not relay and loaded_definitions(history):   # searches earlier in the conversation
            self.tools, self.names = _upstream_tools(self.tool_entries, history + self.input_items, self.allowed,
                                                     self.forced)
        messages = [Message(Role.SYSTEM, self.instructions)] if self.instructions else []
        messages += items_to_messages(history, self.names)
        messages += items_to_messages(self.input_items, self.names)
        extra: dict[str, Any] | None = None
        if self.builtin_tools:  # only reaches an openai-responses target (checked by the route)
            extra = {"tools": list(self.sent_tools)}
            if isinstance(self.echo["tool_choice"], dict):
                extra["tool_choice"] = self.echo["tool_choice"]
        if relay:
            extra = {**self._relayed_fields(), **(extra or {})}
        if relay and (self.builtin_items or any(relayed_verbatim(item) for item in history)):
            current = self.sent_input or _wire_items(self.input_items, stateless=not self.store)
            extra = {**(extra or {}), "input": _wire_items(history, stateless=not self.store) + current}
            if any(m.role is Role.SYSTEM for m in messages):  # only this request's own instructions
                extra["instructions"] = self.instructions
        choice = self.tool_choice
        if relay and self.names and self.echo["tool_choice"] == {"type": TOOL_SEARCH}:
            choice = None   # OpenAI gets the client's own choice (in extra), not the function's
        return ChatRequest(
            model=self.model, messages=messages, tools=self.tools, tool_choice=choice,
            response_format=self.response_format, temperature=self.temperature, top_p=self.top_p,
            max_tokens=self.max_output_tokens, reasoning=self.reasoning, user=self.user, stream=self.stream,
            parallel_tool_calls=self.parallel_tool_calls, extra_body=extra or None)

    def _relayed_fields(self) -> dict[str, Any]:
        """What only OpenAI's Responses API takes, as the client sent it: ``store: false`` (its own
        default is to keep the conversation; the adapter then sends no item ids and asks for the
        reasoning's encrypted content, so replayed reasoning still verifies), ``metadata``, an
        effort above ``high`` (the neutral request says ``high``), and function tools sent without
        ``strict`` left without it (OpenAI's default applies; the adapter's is ``false``)."""
        out: dict[str, Any] = {}
        if not self.store:
            out["store"] = False
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        out.update(self.prompt_cache)
        effort = self.echo["reasoning"]["effort"]
        if effort is not None and effort in _EFFORTS and _EFFORTS[effort] != effort:
            out["reasoning"] = {"effort": effort}
        if self.names:   # custom and namespace tools: OpenAI runs them as they were sent
            out["tools"] = list(self.sent_tools)
            if isinstance(self.echo["tool_choice"], dict):
                out["tool_choice"] = self.echo["tool_choice"]
        elif self.tools and self.unset_strict:
            out["tools"] = [encode_function_tool(t) for t in self.tools]
            for tool in out["tools"]:
                if tool["name"] in self.unset_strict:
                    del tool["strict"]
        return out

    def relayed(self) -> None:
        """Every target is OpenAI's Responses API: the echo says ``strict`` as it applies it to a
        function tool sent without one (strict, its default), as its own answer will."""
        for tool in self.echo["tools"]:
            if tool.get("type") == "function" and tool["name"] in self.unset_strict:
                tool["strict"] = True


def _wire_items(items: list[dict[str, Any]], *, stateless: bool) -> list[dict[str, Any]]:
    """Stored items as Responses input: built-in and custom tool items and namespaced calls as
    they were sent or answered (less an ``id`` the gateway gave one, which OpenAI would not
    recognise), every run of other
    items through the neutral messages (so reasoning is replayed only to the provider that
    made it, as everywhere else)."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for item in items:
        if not relayed_verbatim(item):
            run.append(item)
            continue
        if run:
            out += _wire_history(items_to_messages(run), stateless)
            run = []
        if GATEWAY_ITEM_ID.fullmatch(str(item.get("id") or "")):
            item = {k: v for k, v in item.items() if k != "id"}
        out.append(item)
    if run:
        out += _wire_history(items_to_messages(run), stateless)
    return out


def _wire_history(history: list[Message], stateless: bool) -> list[dict[str, Any]]:
    """A rebuilt history as Responses input items, system turns kept in place (the client's
    verbatim ``input`` follows, so they cannot be folded into ``instructions``)."""
    items: list[dict[str, Any]] = []
    for msg in history:
        if msg.role is Role.SYSTEM:
            items.append({"type": "message", "role": "system", "content": msg.content})
        else:
            items += encode_input([msg], provider="openai-responses", stateless=stateless)
    return items


def parse_request(body: dict[str, Any]) -> ResponsesRequest:
    model = get_model(body)
    check_fields(body, RESPONSES_FIELDS, RESPONSES_IGNORED, RESPONSES_REFUSED)
    for i, value in enumerate(body.get("include") or ()):
        if not isinstance(value, str):
            raise bad(f"include[{i}]", "expected a string, such as 'reasoning.encrypted_content'")
    if get_bool(body, "background", ""):
        raise bad("background", "background mode is not supported by the gateway; send the request without it")
    for unsupported, why in (("conversation", "conversation objects are not supported; use previous_response_id"),
                             ("prompt", "stored prompts are not supported; send instructions and input")):
        if body.get(unsupported) is not None:
            raise bad(unsupported, why)
    if (get_int(body, "top_logprobs", "", minimum=0, maximum=20) or 0) > 0:
        raise bad("top_logprobs", "log probabilities are not available through the gateway; drop 'top_logprobs'")
    raw_input = body.get("input")
    previous = get_str(body, "previous_response_id", "")
    if previous is not None and "\x00" in previous:   # no id holds one (PostgreSQL would refuse to look)
        raise bad("previous_response_id", "must not contain NUL characters (\\u0000): no response id does; "
                  "send the id a response was given")
    if raw_input is None:
        raise bad("input", "required input is missing (a string or an array of input items)")
    items = normalise_input(raw_input)
    if not items:
        raise bad("input", "must not be empty")
    entries, builtin, raw_tools = _tools(body)
    tools, names = _upstream_tools(entries, items, None)
    choice, allowed, raw_choice = _tool_choice(body.get("tool_choice"), builtin, names)
    forced = _forced_load(choice, names)
    if forced:   # a choice naming a deferred tool no search has loaded: it is loaded for this turn
        tools, names = _upstream_tools(entries, items, None, forced)
    if allowed is not None:
        known = {t.name for t in tools or ()} | names.deferred
        missing = [n for n in allowed if n not in known]
        if missing:
            raise bad("tool_choice.tools", f"names tool {missing[0]!r}, which is not among the request's tools")
        tools = [t for t in tools or () if t.name in allowed] or None
    if choice is not None and not builtin:
        check_tool_choice(tools, choice.mode, choice.name, "tool_choice")
    text = get_dict(body, "text", "")
    fmt, raw_format = _format(text)
    reasoning, raw_reasoning = _reasoning(get_dict(body, "reasoning", ""))
    max_output = get_int(body, "max_output_tokens", "", minimum=1, maximum=MAX_TOKENS)
    temperature = get_number(body, "temperature", "", minimum=0, maximum=2)
    top_p = get_number(body, "top_p", "", minimum=0, maximum=1)
    parallel = get_bool(body, "parallel_tool_calls", "")
    user = get_str(body, "user", "") or get_str(body, "safety_identifier", "")
    store = get_bool(body, "store", "")
    echo = {"tools": raw_tools, "tool_choice": raw_choice, "text": {"format": raw_format},
            "reasoning": raw_reasoning, "truncation": get_str(body, "truncation", "") or "disabled"}
    if echo["truncation"] not in ("auto", "disabled"):
        raise bad("truncation", "expected 'auto' or 'disabled'")
    return ResponsesRequest(
        model=model, input_items=items, instructions=get_str(body, "instructions", ""),
        previous_response_id=previous, store=True if store is None else store,
        stream=bool(get_bool(body, "stream", "")), tools=tools, tool_choice=choice, response_format=fmt,
        reasoning=reasoning, max_output_tokens=max_output, temperature=temperature, top_p=top_p,
        parallel_tool_calls=parallel, user=user, metadata=_metadata(body.get("metadata")), echo=echo,
        builtin_tools=builtin, sent_tools=list(body.get("tools") or ()),
        sent_input=list(raw_input) if isinstance(raw_input, list) else [],
        unset_strict=frozenset(t.name for t in tools or () if t.strict is None),
        prompt_cache={name: value for name in ("prompt_cache_key", "prompt_cache_retention")
                      if (value := get_str(body, name, "")) is not None}, names=names,
        tool_entries=entries, allowed=allowed, forced=forced)


def _upstream_tools(entries: list[tuple[str, dict[str, Any], str]], conversation: list[dict[str, Any]],
                    allowed: list[str] | None, forced: frozenset[tuple[str | None, str]] = frozenset(),
                    ) -> tuple[list[Tool] | None, ToolNames]:
    """The function tools the upstream gets for the request's tool ``entries``, given the tools
    the ``conversation``'s tool searches loaded (deferred ones go only once loaded) and the one
    ``tool_choice`` forces (``forced``), less those ``allowed_tools`` leaves out; and the names
    to map calls back by."""
    entries, loaded = with_loaded(entries, loaded_definitions(conversation))
    tools, names = flatten(entries, loaded | forced)
    if allowed is not None:
        tools = [t for t in tools if t.name in allowed]
    return tools or None, names


def _tools(body: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any], str]], list[dict[str, Any]],
                                          list[dict[str, Any]]]:
    """(the function, custom, namespace and client tool_search entries: kind, object, path; the
    built-in tools; the echo)."""
    entries: list[tuple[str, dict[str, Any], str]] = []
    builtin: list[dict[str, Any]] = []
    echoed: list[dict[str, Any]] = []
    for at, item in tool_objects(body):
        kind = get_str(item, "type", at, required=True)
        if kind == TOOL_SEARCH and not is_client_search(item):   # OpenAI's hosted search
            builtin.append(item)
            echoed.append(item)
            continue
        if kind not in ("function", "custom", "namespace", TOOL_SEARCH):
            builtin.append(item)
            echoed.append(item)
            continue
        entries.append((kind, item, at))
        if kind != "function":
            echoed.append(item)
            continue
        tool = function_tool(item, at)
        echoed.append({"type": "function", "name": tool.name, "description": tool.description,
                       "parameters": tool.parameters, "strict": bool(tool.strict),  # as sent: see relayed
                       **({"defer_loading": True} if deferred(item) else {})})
    return entries, builtin, echoed


def _forced_load(choice: ToolChoice | None, names: ToolNames) -> frozenset[tuple[str | None, str]]:
    """The (namespace, name) of the deferred tool ``choice`` forces when no tool search has loaded
    it yet: a forced call needs the tool's definition, so it goes upstream for this turn (as if
    loaded) rather than the request failing for a tool it does define."""
    if choice is None or choice.mode != "tool" or choice.name not in names.deferred:
        return frozenset()
    tool = names.by_flat.get(str(choice.name))
    if tool is not None and tool.namespace is not None:
        return frozenset({(tool.namespace, tool.name)})
    return frozenset({(None, str(choice.name))})


def _tool_choice(raw: Any, builtin: list[dict[str, Any]],
                 names: ToolNames) -> tuple[ToolChoice | None, list[str] | None, Any]:
    """(choice, names of allowed_tools or None, the echo)."""
    if raw is None:
        return None, None, "auto"
    if isinstance(raw, str):
        if raw in ("auto", "none", "required"):
            return ToolChoice(raw), None, raw  # type: ignore[arg-type]
        raise bad("tool_choice", f"expected 'auto', 'none', 'required' or an object, got {raw!r}")
    choice = as_dict(raw, "tool_choice")
    kind = get_str(choice, "type", "tool_choice", required=True)
    if kind == "function":
        return ToolChoice("tool", get_name(choice, "name", "tool_choice")), None, {"type": "function",
                                                                                   "name": choice["name"]}
    if kind == "custom":
        name = get_name(choice, "name", "tool_choice")
        return ToolChoice("tool", names.flat(name, kind="custom")), None, {"type": "custom", "name": name}
    client_search = TOOL_SEARCH in names.by_flat
    if kind == TOOL_SEARCH and client_search:   # the client's own search: the function built from it
        return ToolChoice("tool", TOOL_SEARCH), None, {"type": TOOL_SEARCH}
    if kind == "allowed_tools":
        mode = get_str(choice, "mode", "tool_choice", required=True)
        if mode not in ("auto", "required"):
            raise bad("tool_choice.mode", f"expected 'auto' or 'required', got {mode!r}")
        allowed: list[str] = []
        for i, item in enumerate(get_list(choice, "tools", "tool_choice", required=True) or []):
            at = f"tool_choice.tools[{i}]"
            item = as_dict(item, at)
            if item.get("type") == TOOL_SEARCH and client_search:
                allowed.append(TOOL_SEARCH)
                continue
            if item.get("type") not in ("function", "custom"):
                raise bad(f"{at}.type", "only function and custom tools (and a client tool search) can be listed "
                                        "in allowed_tools")
            allowed.append(names.flat(get_name(item, "name", at), kind=str(item["type"])))
        return ToolChoice(mode), allowed, choice
    if builtin:  # a hosted tool forced by type: passed on with the built-in tools
        return None, None, choice
    if kind == TOOL_SEARCH:
        raise bad("tool_choice", "forces tool_search, but the request has no client-executed tool search; add "
                                 "{\"type\": \"tool_search\", \"execution\": \"client\"} to tools or drop tool_choice")
    raise bad("tool_choice.type", f"expected 'function', 'custom', 'allowed_tools' or 'tool_search', got {kind!r}")


def _format(text: dict[str, Any] | None) -> tuple[ResponseFormat | None, dict[str, Any]]:
    fmt = get_dict(text, "format", "text") if text is not None else None
    if fmt is None:
        return None, {"type": "text"}
    kind = get_str(fmt, "type", "text.format", required=True)
    if kind == "text":
        return None, {"type": "text"}
    if kind == "json_object":
        return ResponseFormat(type="json_object"), {"type": "json_object"}
    if kind == "json_schema":
        schema = json_schema_object(fmt.get("schema"), "text.format.schema")
        name = get_str(fmt, "name", "text.format", default="response")
        strict = get_bool(fmt, "strict", "text.format")
        echo = {"type": "json_schema", "name": name, "schema": schema, "strict": bool(strict)}
        description = get_str(fmt, "description", "text.format")
        if description:
            echo["description"] = description
        return ResponseFormat(type="json_schema", schema=schema, name=name, strict=bool(strict)), echo
    raise bad("text.format.type", f"expected text, json_object or json_schema, got {kind!r}")


def _reasoning(raw: dict[str, Any] | None) -> tuple[ReasoningConfig | None, dict[str, Any]]:
    if raw is None:
        return None, {"effort": None, "summary": None}
    effort = get_str(raw, "effort", "reasoning")
    summary = get_str(raw, "summary", "reasoning") or get_str(raw, "generate_summary", "reasoning")
    if effort is not None and effort != "none" and effort not in _EFFORTS:
        raise bad("reasoning.effort", f"expected one of none, {', '.join(_EFFORTS)}; got {effort!r}")
    if summary is not None and summary not in _SUMMARIES:
        raise bad("reasoning.summary", f"expected auto, concise or detailed; got {summary!r}")
    echo = {"effort": effort, "summary": summary}
    if effort in (None, "none") and summary is None:
        return None, echo
    neutral = _EFFORTS[effort] if effort is not None and effort != "none" else None
    return ReasoningConfig(effort=neutral, summary=summary is not None), echo


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    meta = as_dict(raw, "metadata")
    if len(meta) > MAX_METADATA_KEYS:
        raise bad("metadata", f"at most {MAX_METADATA_KEYS} keys")
    for key, value in meta.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise bad(f"metadata.{key[:64]}", "keys are at most 64 characters and values strings of at most 512")
    return dict(meta)


# =========================================================================== responses


def usage_json(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": u.cache_write_tokens},
            "output_tokens": u.output_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.input_tokens + u.output_tokens}


def status_of(finish_reason: str | None, *, refused: bool = False) -> tuple[str, dict[str, Any] | None]:
    """The Response ``status`` and ``incomplete_details`` for a neutral finish reason. A refusal
    (a ``refusal`` content part) is ``completed``, as OpenAI sends it: the model finished its
    answer, which is the refusal; the ``content_filter`` finish that marks it is not a cut."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter" and not refused:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(req: ResponsesRequest, *, response_id: str, model: str, created_at: int, status: str,
                    output: list[dict[str, Any]], usage: Usage | None,
                    incomplete: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                    completed_at: int | None = None) -> dict[str, Any]:
    """The Response object. ``model`` is the name the client asked for."""
    out = {
        "id": response_id, "object": "response", "created_at": created_at, "status": status,
        "background": False, "completed_at": completed_at, "error": error, "incomplete_details": incomplete,
        "instructions": req.instructions, "max_output_tokens": req.max_output_tokens, "model": model,
        "output": output, "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "previous_response_id": req.previous_response_id, "reasoning": req.echo["reasoning"],
        "service_tier": "default", "store": req.store, "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": req.echo["text"], "tool_choice": req.echo["tool_choice"], "tools": req.echo["tools"],
        "top_p": 1.0 if req.top_p is None else req.top_p, "truncation": req.echo["truncation"],
        "metadata": req.metadata,
    }
    if usage is not None:  # the schema has no null for these: absent until known
        out["usage"] = usage_json(usage)
    if req.user is not None:
        out["user"] = req.user
    return out


def completed_object(req: ResponsesRequest, resp: ChatResponse, *, response_id: str, model: str, created_at: int,
                     completed_at: int) -> dict[str, Any]:
    """The finished Response for a non-streamed answer."""
    parts = with_refusal_marked(resp)
    status, incomplete = status_of(resp.finish_reason, refused=holds_refusal(parts))
    return response_object(req, response_id=response_id, model=model, created_at=created_at, status=status,
                           output=output_items(parts, cut=status != "completed", names=req.names),
                           usage=resp.usage,
                           incomplete=incomplete,
                           completed_at=completed_at if status == "completed" else None)
