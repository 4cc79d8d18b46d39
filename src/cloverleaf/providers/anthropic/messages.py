"""Encode a provider-neutral :class:`ChatRequest` as an Anthropic Messages API body.

Why this is more than a field rename: the Messages API has its own shape for a conversation.

- System messages are not turns: they become the top-level ``system`` (a string, or a list of
  text blocks when a part carries ``cache_control``), in order. Except under the
  ``mid-conversation-system-*`` beta (Claude Code sends it, and system messages inside
  ``messages``): then the system messages before the first turn are the top-level ``system``
  and each later one stays a ``system`` turn where it was, as the caller placed it.
- Only ``user`` and ``assistant`` turns exist and consecutive turns of one role must be merged:
  tool results travel as ``tool_result`` blocks inside a ``user`` turn, so a run of tool messages
  (and a user message after them) becomes one user turn with the results first.
- Assistant history must carry ``thinking`` blocks back with their ``signature`` (and
  ``redacted_thinking`` blocks with their ``data``) or a multi-turn conversation with extended
  thinking is rejected. Tool-call ids the API refuses (another provider's, such as Kimi K2's
  ``functions.get_weather:0``) are mapped alike for a call and its result. Reasoning from
  another provider has no valid signature and is dropped;
  Claude's from Bedrock is Claude's (``_common.replayable_reasoning``).
- Text the API refuses although other providers take it is left out or trimmed
  (:func:`_blank_text_left_out`, :func:`_prefill_trimmed`): a text block of only whitespace
  ("text content blocks must contain non-whitespace text": an assistant turn of ``"\n"``, stored
  by a client, would fail every later turn of its conversation), and the whitespace that ends a
  final assistant turn, a prefill ("final assistant content cannot end with trailing
  whitespace"). A stop sequence of only whitespace (``stop=["\n"]``, common from OpenAI
  clients) is refused too, and left out; a ``user`` over 256 characters, the most
  ``metadata.user_id`` takes, goes as its SHA-256 (still one opaque id per user).
- A :class:`~cloverleaf.Document` is a ``document`` block (:func:`encode_document`): text,
  PDF or ``content`` source, with ``title``, ``context``, ``citations`` and ``cache_control``.
- Thinking is ``{"type": "adaptive"}`` where the caller asked for it or the model has nothing
  else, else a budget; ``output_config.effort`` is the caller's own level (``xhigh``, ``max``
  kept), sent with or without thinking, as Anthropic's API takes it (``claude_rules``).
- ``max_tokens`` is required (default: the model's output limit up to 16k,
  :func:`~..claude_rules.default_max_tokens`) and must exceed the thinking
  budget; the thinking and sampling rules are the models' own, shared with Bedrock
  (``claude_rules``), and ``tool_choice`` is checked by the shared rule in ``_common``. One of
  them: a tool loop whose last assistant turn lost its signed thinking (an OpenAI-style client
  cannot send it back), or a request that forces a tool, is sent without a thinking budget,
  which the API would otherwise refuse.

Structured output, and why it is native: the recordings (``test_anthropic_native_output_*``,
``test_output/test_*_native_output*``) show ``output_config.format = {"type": "json_schema",
"schema": ...}`` making the model answer with the JSON as its text (stop_reason ``end_turn``),
which is exactly our contract and streams as plain text deltas. It is GA (no beta header) on
Claude Sonnet/Opus 4.5+, Haiku 4.5 and later. Older models (Claude 3.x, Sonnet/Opus 4.0) and
``json_object`` (which has no schema to enforce) fall back to a forced tool named
:data:`STRUCTURED_TOOL`; the response parser turns that call back into a Text part holding the
JSON. ``cfg.extra["structured_output"] = "native" | "tool"`` overrides the choice per provider.
A schema constrained decoding cannot hold (a ``dict[str, X]`` map, a recursive model: see
:mod:`.schemas`) always takes the tool, which keeps it as given.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from ..._json_schema import object_root
from ..._types import (
    Attachment,
    ChatRequest,
    Document,
    Message,
    Reasoning,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from .._common import WEB_IMAGES, checked_image, checked_tool_choice, empty_text_turn, replayable_reasoning
from ..claude_rules import (
    BlockKind,
    adaptive_thinking,
    context_edits_for,
    default_max_tokens,
    effort_alone,
    ends_with_assistant,
    history_allows_thinking,
    max_tokens,
    output_effort,
    prefill_trimmed,
    sampling,
    stop_sequences,
    thinking_budget,
    tool_choice_allows_thinking,
)
from ..extra_tools import extra_tool_names, with_extra_tools
from ..openai.tool_ids import remap_ids
from .schemas import fits_native, native_output_schema
from .server_blocks import assistant_content
from .tool_names import wire_names

if TYPE_CHECKING:
    from ..base import Adapter, ProviderConfig

#: Name of the forced tool used for structured output on models without native JSON outputs.
STRUCTURED_TOOL = "json_response"

#: The beta (a prefix of its dated names) under which the API takes ``system`` turns in ``messages``.
MID_CONVERSATION_SYSTEM = "mid-conversation-system-"
#: The beta under which Claude thinks between tool calls, and a thinking budget is the whole
#: turn's, so it may exceed ``max_tokens`` (Anthropic's extended thinking guide).
INTERLEAVED_THINKING = "interleaved-thinking-"

#: The longest ``metadata.user_id`` the API takes.
MAX_USER_ID = 256

#: A tool-call id as the API takes it (``tool_use.id``, ``tool_result.tool_use_id``).
_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")

#: Model name prefixes that predate native structured outputs (``output_config.format``).
_NO_NATIVE_JSON = ("claude-3", "claude-2", "claude-instant", "claude-sonnet-4-0", "claude-sonnet-4-2025",
                   "claude-opus-4-0", "claude-opus-4-2025")


def encode_chat(adapter: Adapter, req: ChatRequest, cfg: ProviderConfig) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages``."""
    body: dict[str, Any] = {"model": req.model}
    adaptive = adaptive_thinking(req)
    budget = None if adaptive or effort_alone(req.reasoning) else thinking_budget(
        adapter, req, interleaved=_has_beta(cfg, INTERLEAVED_THINKING))
    in_place = _has_beta(cfg, MID_CONVERSATION_SYSTEM)
    turns = encode_messages(adapter, req.messages, system_in_place=in_place)
    if budget is not None and not (history_allows_thinking(_final_assistant(turns), req.model,
                                                           prefill=ends_with_assistant(turns))
                                   and tool_choice_allows_thinking(req)):
        budget = None
    body["max_tokens"] = max_tokens(req, budget) or default_max_tokens(req.model)
    body["messages"] = turns
    system = encode_system(req.messages, leading_only=in_place)
    if system is not None:
        body["system"] = system
    if adaptive:
        body["thinking"] = {"type": "adaptive"}
    elif budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    _sampling(body, req, thinking=adaptive or budget is not None)
    effort = output_effort(req, adaptive=adaptive)
    if effort is not None:
        body["output_config"] = {"effort": effort}

    tools = [encode_tool(t) for t in req.tools or []]
    choice = checked_tool_choice(req, adapter.name)
    tool_choice = encode_tool_choice(choice, req.parallel_tool_calls) if tools else None
    names = tool_name_map(req)
    if names:   # names the API refuses (an MCP host's "github.create_issue"): see .tool_names
        _send_tool_names(names, tools, tool_choice, turns)
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        if structured_mode(req, cfg) == "native":
            body.setdefault("output_config", {})["format"] = {
                "type": "json_schema", "schema": native_output_schema(fmt.schema or {})}
        else:
            schema = object_root(fmt.schema) if fmt.type == "json_schema" and fmt.schema else {"type": "object"}
            tools.append({
                "name": STRUCTURED_TOOL,
                "description": "Give the final answer by calling this tool with JSON that matches its schema.",
                "input_schema": schema,
            })
            if budget is not None:  # a thinking budget allows only auto/none (adaptive allows forcing)
                tool_choice = tool_choice or {"type": "auto"}
            elif tool_choice is None:
                tool_choice = {"type": "any"} if req.tools else {"type": "tool", "name": STRUCTURED_TOOL}
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if req.stream:
        body["stream"] = True
    if req.cache_control:   # automatic prompt caching: the API places the breakpoint itself
        body["cache_control"] = req.cache_control
    if req.context_management:   # server-side context edits (Claude Code clears old thinking): as given
        edits = context_edits_for(req.context_management, thinking="thinking" in body or req.reasoning is None)
        if edits is not None:
            body["context_management"] = edits
    if req.extra_body:   # its tools (server tools: web_search...) join the caller's
        body.update(with_extra_tools(body, req.extra_body))
    return body


def tool_name_map(req: ChatRequest) -> dict[str, str]:
    """The request's tool names the API refuses -> the names they are sent under (the same map
    reads an answer's ``tool_use`` names back: :func:`.tool_names.read_back`). None is sent as
    :data:`STRUCTURED_TOOL`: a caller's ``json.response`` cleaned to it went up beside the
    structured output tool (two tools of one name, a 400) and its calls were read as the answer.
    Nor as an ``extra_body`` tool's name: ``web.search`` cleaned to ``web_search`` was replaced by
    the server tool ``web_search`` (:mod:`..extra_tools`) and silently gone."""
    names = [t.name for t in req.tools or []]
    names += [p.name for m in req.messages for p in m.parts if isinstance(p, ToolCall)]
    return wire_names(names, reserved=(STRUCTURED_TOOL, *extra_tool_names(req.extra_body)))


def _send_tool_names(names: dict[str, str], tools: list[dict[str, Any]], tool_choice: dict[str, Any] | None,
                     turns: list[dict[str, Any]]) -> None:
    """Rename, in place, the tools, a forced tool and the history's calls by ``names``."""
    blocks = [b for t in turns if t["role"] == "assistant" for b in t["content"] if b.get("type") == "tool_use"]
    for item in [*tools, *blocks, *([tool_choice] if tool_choice and "name" in tool_choice else [])]:
        item["name"] = names.get(item["name"], item["name"])


def structured_mode(req: ChatRequest, cfg: ProviderConfig) -> str:
    """``"native"`` (``output_config.format``) or ``"tool"`` (a forced :data:`STRUCTURED_TOOL` call).
    A schema native mode cannot hold (a map, recursion: :func:`.schemas.fits_native`) takes the
    tool, which keeps it as given, whatever the model or the ``structured_output`` setting."""
    fmt = req.response_format
    if fmt is None or fmt.type == "json_object" or not fmt.schema or not fits_native(fmt.schema):
        return "tool"
    override = cfg.extra.get("structured_output")
    if override in ("native", "tool"):
        return str(override)
    return "tool" if req.model.startswith(_NO_NATIVE_JSON) else "native"


def is_structured_tool_call(req: ChatRequest, name: str | None) -> bool:
    """True when a ``tool_use`` named ``name`` is our structured-output tool, not a user tool."""
    return (
        name == STRUCTURED_TOOL
        and req.response_format is not None
        and req.response_format.type != "text"
        and not any(t.name == STRUCTURED_TOOL for t in req.tools or [])
    )


# --------------------------------------------------------------------------- parameters


def _sampling(body: dict[str, Any], req: ChatRequest, *, thinking: bool) -> None:
    """Sampling options, by the rules every Claude model checks (:mod:`..claude_rules`);
    ``seed`` has no equivalent."""
    temperature, top_p = sampling(req, thinking=thinking)
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p
    stops = stop_sequences(req.stop, req.model)
    if stops:
        body["stop_sequences"] = stops
    if req.user:
        body["metadata"] = {"user_id": user_id(req.user)}


def user_id(user: str) -> str:
    """``metadata.user_id`` for the caller's ``user``: as given, or its SHA-256 when it is longer
    than the API takes (:data:`MAX_USER_ID`), which still tells one user from another."""
    return user if len(user) <= MAX_USER_ID else hashlib.sha256(user.encode()).hexdigest()


def encode_tool(tool: Tool) -> dict[str, Any]:
    """A tool; a ``strict`` one with its schema closed for constrained decoding, or sent without
    ``strict`` when its schema cannot be (a map, recursion), as OpenAI's falls back to
    ``strict: false``: the arguments are then unchecked, not impossible."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    strict = bool(tool.strict) and fits_native(tool.parameters)
    out["input_schema"] = native_output_schema(tool.parameters) if strict else tool.parameters
    if strict:
        out["strict"] = True
    if tool.cache_control:   # a prompt-cache breakpoint after this tool (the tool list is cached)
        out["cache_control"] = tool.cache_control
    return out


def encode_tool_choice(choice: ToolChoice | None, parallel_tool_calls: bool | None) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel_tool_calls is False else None
    elif choice.mode == "none":
        return {"type": "none"}
    elif choice.mode == "required":
        out = {"type": "any"}
    elif choice.mode == "tool":
        out = {"type": "tool", "name": choice.name}
    else:
        out = {"type": "auto"}
    if out is not None and parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


# --------------------------------------------------------------------------- conversation


def _has_beta(cfg: ProviderConfig, prefix: str) -> bool:
    """Did the caller (or the provider's ``beta`` setting) ask for the beta named ``prefix``...
    (mid-conversation system turns, interleaved thinking)?"""
    beta = cfg.extra.get("beta")
    if not beta:
        return False
    items = [beta] if isinstance(beta, str) else list(beta or ())
    return any(name.strip().startswith(prefix) for item in items for name in str(item).split(","))


def _leading_system(messages: list[Message]) -> int:
    """How many messages open the conversation as system messages (the top-level ``system``)."""
    return next((i for i, m in enumerate(messages) if m.role is not Role.SYSTEM), len(messages))


def encode_system(messages: list[Message], *, leading_only: bool = False) -> str | list[dict[str, Any]] | None:
    """The system messages, hoisted (only those before the first turn with ``leading_only``): a
    string, or text blocks when any part has ``cache_control``."""
    if leading_only:
        messages = messages[:_leading_system(messages)]
    return _system_content([p for m in messages if m.role is Role.SYSTEM for p in m.parts if isinstance(p, Text)])


def _system_content(parts: list[Text]) -> str | list[dict[str, Any]] | None:
    """None when the parts say nothing (no text but whitespace: the API refuses such a block)."""
    parts = [p for p in parts if p.text.strip()]
    if not parts:
        return None
    if any(p.cache_control for p in parts):
        return [_text_block(p) for p in parts]
    return "\n\n".join(p.text for p in parts)


def encode_messages(adapter: Adapter, messages: list[Message], *,
                    system_in_place: bool = False) -> list[dict[str, Any]]:
    """Turns as the API wants them: user/assistant only, same-role runs merged, no empty turns;
    with ``system_in_place``, each system message after the first turn is a ``system`` turn there."""
    turns: list[dict[str, Any]] = []
    leading = _leading_system(messages) if system_in_place else len(messages)
    for position, msg in enumerate(messages):
        if msg.role is Role.SYSTEM:
            if position >= leading:   # only with system_in_place: hoisted into ``system`` otherwise
                content = _system_content([p for p in msg.parts if isinstance(p, Text)])
                if content:
                    turns.append({"role": "system", "content": content})
            continue
        if msg.role is Role.ASSISTANT:
            # its server tool blocks (a paused turn's) back in place, for this kind of provider
            role, blocks = "assistant", assistant_content(adapter, msg, [_assistant_blocks(adapter, p) for p in msg.parts])
        else:
            refused = empty_text_turn(adapter, position, msg, refusal=CLAUDE_REFUSES_EMPTY_TEXT)
            if refused:
                raise refused
            role, blocks = "user", _blank_text_left_out([b for p in msg.parts for b in _user_blocks(adapter, p)])
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:   # never a system turn: role is user or assistant
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    _anthropic_tool_ids(turns)
    _prefill_trimmed(turns)
    return turns


def _is_blank_text(block: dict[str, Any]) -> bool:
    return block.get("type") == "text" and not str(block.get("text", "")).strip()


#: Why a user message of only empty text is refused before it is sent (``_common.empty_text_turn``).
CLAUDE_REFUSES_EMPTY_TEXT = 'Claude refuses ("text content blocks must be non-empty")'


def _blank_text_left_out(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A user turn's blocks without its whitespace-only text blocks, when it has others: they say
    nothing, and the API may refuse them. A turn of only empty or whitespace text never gets here
    (refused by name first, ``_common.empty_text_turn``); a turn whose other parts made no block
    keeps its blocks, for the API's 400 to say what is wrong with it."""
    kept = [b for b in blocks if not _is_blank_text(b)]
    return kept or blocks


def _prefill_trimmed(turns: list[dict[str, Any]]) -> None:
    """Trim, in place, the whitespace that ends a conversation's final assistant turn (a
    prefill): the API refuses it ("final assistant content cannot end with trailing
    whitespace"), and the model writes its own. A text block left empty goes, and the turn too
    when nothing is left of it. Earlier assistant turns keep theirs: only the final one counts
    (the rule is Claude's, on Bedrock too: :func:`~..claude_rules.prefill_trimmed`)."""
    prefill_trimmed(turns, lambda block: block.get("type") == "text")


def _anthropic_tool_ids(turns: list[dict[str, Any]]) -> None:
    """Map, in place, the tool-call ids the API refuses (anything but letters, digits, ``_`` and
    ``-``: Kimi K2's ``functions.get_weather:0``, from a conversation begun there) alike for a
    call and its result, as Mistral's are (:mod:`..openai.tool_ids`)."""
    refs = [(block, "id" if block["type"] == "tool_use" else "tool_use_id")
            for turn in turns if turn["role"] != "system" for block in turn["content"]
            if block["type"] in ("tool_use", "tool_result")]
    remap_ids(refs, _is_tool_id)


def _is_tool_id(value: Any) -> bool:
    return isinstance(value, str) and _TOOL_ID.fullmatch(value) is not None


def _final_assistant(turns: list[dict[str, Any]]) -> list[BlockKind] | None:
    """The block kinds of the conversation's last assistant turn, for ``history_allows_thinking``."""
    last = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    if last is None:
        return None
    return [("thinking" if b["type"] in ("thinking", "redacted_thinking") else
             "tool_use" if b["type"] == "tool_use" else "other") for b in last["content"]]


def _user_blocks(adapter: Adapter, part: Any) -> list[dict[str, Any]]:
    if isinstance(part, Text):
        return [_text_block(part)] if part.text else []
    if isinstance(part, Attachment):
        return [encode_attachment(adapter, part)]
    if isinstance(part, Document):
        return [encode_document(adapter, part)]
    if isinstance(part, ToolResult):
        return [_tool_result_block(adapter, part)]
    if isinstance(part, Reasoning):
        return []
    raise adapter.invalid(f"a {type(part).__name__} part cannot be sent in a user or tool message")


def _assistant_blocks(adapter: Adapter, part: Any) -> list[dict[str, Any]]:
    if isinstance(part, Text):   # only whitespace: the model said nothing there, and the API refuses it
        return [_text_block(part)] if part.text.strip() else []
    if isinstance(part, ToolCall):
        block: dict[str, Any] = {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
        if part.cache_control:
            block["cache_control"] = part.cache_control
        return [block]
    if isinstance(part, Reasoning):
        if not replayable_reasoning(adapter, part.provider, claude=True):
            return []  # another vendor's reasoning: its signature cannot verify here
        if part.redacted:
            return [{"type": "redacted_thinking", "data": part.redacted}]
        if part.signature:
            return [{"type": "thinking", "thinking": part.text, "signature": part.signature}]
        return []  # unsigned thinking is rejected by the API
    raise adapter.invalid(f"a {type(part).__name__} part cannot be sent in an assistant message")


def _text_block(part: Text) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _tool_result_block(adapter: Adapter, result: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_call_id}
    if isinstance(result.content, str):
        if result.content:
            block["content"] = result.content
    else:
        block["content"] = [b for p in result.content for b in _user_blocks(adapter, p)]
    block["is_error"] = result.is_error
    if result.cache_control:   # an agent loop's rolling breakpoint: the last block is a tool result
        block["cache_control"] = result.cache_control
    return block


def encode_attachment(adapter: Adapter, att: Attachment) -> dict[str, Any]:
    """Images and PDFs inline (``source.type=base64``) or by URL (``fetch="provider"``)."""
    if att.kind == "audio":
        raise adapter.unsupported("audio input")
    if att.kind not in ("image", "pdf"):
        raise adapter.invalid(f"unsupported attachment type {att.kind!r}; Anthropic takes images and PDFs")
    block_type = "image" if att.kind == "image" else "document"
    if att.kind == "image":
        checked_image(att.media_type, WEB_IMAGES, provider=adapter.name)
    if att.data is not None:
        media_type = att.media_type or ("application/pdf" if att.kind == "pdf" else None)
        if media_type is None:
            raise adapter.invalid("an inline image needs a media_type (image/png, image/jpeg, image/gif, image/webp)")
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": att.base64()}
    elif att.url is not None:
        source = {"type": "url", "url": att.url}
    else:
        raise adapter.invalid("attachment was not resolved (no data and no url)")
    block: dict[str, Any] = {"type": block_type, "source": source}
    if att.kind == "pdf" and att.filename:
        block["title"] = att.filename
    if att.cache_control:
        block["cache_control"] = att.cache_control
    return block


def encode_document(adapter: Adapter, doc: Document) -> dict[str, Any]:
    """A ``document`` block: text (``source.type=text``), a PDF (base64 or URL, as
    :func:`encode_attachment` sends it) or a list of parts (``source.type=content``: text and
    image blocks, cited by block), with its title, context, citations switch and cache hint."""
    content = doc.content
    if isinstance(content, str):
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": content}
    elif isinstance(content, Attachment):
        if content.kind != "pdf":
            raise adapter.invalid(f"a document's attachment must be a PDF, not {content.kind!r}; give images "
                                  "as parts of a list of content")
        source = encode_attachment(adapter, content)["source"]
    else:
        blocks = []
        for part in content:
            if isinstance(part, Text):
                if part.text:
                    blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, Attachment) and part.kind == "image":
                blocks.append({k: v for k, v in encode_attachment(adapter, part).items() if k != "cache_control"})
            else:
                raise adapter.invalid("a document given as a list holds text parts and images only")
        source = {"type": "content", "content": blocks}
    block: dict[str, Any] = {"type": "document", "source": source}
    if doc.title is not None:
        block["title"] = doc.title
    if doc.context is not None:
        block["context"] = doc.context
    if doc.citations:
        block["citations"] = {"enabled": True}
    if doc.cache_control:
        block["cache_control"] = doc.cache_control
    return block
