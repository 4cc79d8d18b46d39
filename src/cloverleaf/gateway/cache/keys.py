"""What makes two requests the same question: a canonical form of the request, hashed.

The exact key covers everything that can change the answer — the requested model or route,
every message part (attachments by content, not by object identity or file name), tools,
tool choice, response format, sampling parameters, reasoning settings, provider extras and the
caller's beta features (``anthropic-beta``: one can switch on what changes the answer) — and
nothing that cannot (the ``stream`` flag: a streamed and a non-streamed call of the same
question share one entry; prompt-cache hints, ``cache_control`` on a part, a tool or the
request: they change what the provider bills and how fast it answers, not what it answers).
Context edits (``context_management``: clearing old thinking or tool results) do change what
the model reads, so they are keyed, only when present (a request without them keeps its key).
Betas are keyed as a set (split on commas, stripped, sorted, once each) and only when there
are some, so a request without betas keeps the key it always had and existing entries stay
valid. The semantic scope is the same hash *without* the last user turn's text, so
semantically close prompts only meet when everything else is identical.

The key is made before the call loads its attachments, so an attachment is keyed by what
holds its content at that point: its bytes' hash (bytes given, or a local file, hashed as it
is read), the base64 or ``data:`` text itself, or the URL a provider fetches. A URL the
gateway would download itself (``fetch="local"``) has no key — its content is unknown until
fetched, and changes under the same URL — so such a request is not cached (:class:`Unkeyed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..._errors import AttachmentError
from ..._types import Attachment, ChatRequest, Document, Message, Reasoning, Role, Text, ToolCall, ToolResult
from ...attachments.sources import classify, file_digest, file_url_path
from ...attachments.ssrf import ALLOWED_SCHEMES

KEY_VERSION = "v1"   # bump when the canonical form changes, so old entries are never misread


class Unkeyed(Exception):
    """The request names content the key cannot know before the call loads it (a URL the
    gateway downloads, a file that cannot be read now): it is answered, not cached."""


def is_deterministic(req: ChatRequest) -> bool:
    """Would the same request give the same answer? Only with temperature 0 (top_p alone
    does not make sampling greedy). Unset temperature means the provider's default, which
    samples."""
    return req.temperature is not None and req.temperature == 0


def exact_key(scope: str, model: str, req: ChatRequest, betas: Sequence[str] = ()) -> str:
    return _digest(scope, model, _canonical(req, req.messages, betas))


def semantic_keys(scope: str, model: str, req: ChatRequest, betas: Sequence[str] = ()) -> tuple[str, str, str]:
    """(the exact key, the scope hash shared by paraphrases, the text to embed): everything
    but the text of the last user message goes into the scope; that text is what gets
    embedded. Each message is made canonical once (a local file is hashed once)."""
    messages = [_message(m) for m in req.messages]
    key = _digest(scope, model, _canonical(req, None, betas) | {"messages": messages})
    last = max((i for i, m in enumerate(req.messages) if m.role is Role.USER), default=None)
    if last is None:
        return key, key, ""
    parts = req.messages[last].parts
    text = "".join(p.text for p in parts if isinstance(p, Text))
    rest = [done for p, done in zip(parts, messages[last]["parts"]) if not isinstance(p, Text)]
    body = _canonical(req, None, betas) | {"messages": [*messages[:last], {"role": "user", "other_parts": rest},
                                                        *messages[last + 1:]]}
    return key, _digest(scope, model, body), text


def _digest(scope: str, model: str, body: dict[str, Any]) -> str:
    blob = json.dumps({"v": KEY_VERSION, "scope": scope, "model": model, "request": body},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def normalised_betas(betas: Sequence[str]) -> list[str]:
    """Beta names as a set: ``"b, a"`` and ``["a", "b", "a"]`` ask for the same features."""
    return sorted({name.strip() for value in betas for name in value.split(",") if name.strip()})


def _canonical(req: ChatRequest, messages: list[Message] | None, betas: Sequence[str] = ()) -> dict[str, Any]:
    fmt = req.response_format
    body: dict[str, Any] = {
        "messages": [_message(m) for m in messages] if messages is not None else None,
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters, "strict": t.strict}
                  for t in req.tools or ()],
        "tool_choice": [req.tool_choice.mode, req.tool_choice.name] if req.tool_choice else None,
        "response_format": [fmt.type, fmt.schema, fmt.name, fmt.strict] if fmt else None,
        # temperature=0 and temperature=0.0 are one question: both numbers as floats
        "sampling": [_float(req.temperature), _float(req.top_p), req.max_tokens, req.stop, req.seed,
                     req.parallel_tool_calls],
        "reasoning": _reasoning(req),
        "extra_body": req.extra_body,
    }
    if req.context_management:   # clearing old thinking or tool results changes what the model reads
        body["context_management"] = req.context_management
    names = normalised_betas(betas)
    if names:   # absent, not empty, without betas: the key every entry had before betas were keyed
        body["betas"] = names
    return body


def _reasoning(req: ChatRequest) -> list[Any] | None:
    """Adaptive thinking and Anthropic's own effort word change the answer too; they are keyed
    only when set, so a request without them keeps the key it always had."""
    cfg = req.reasoning
    if cfg is None:
        return None
    key: list[Any] = [cfg.effort, cfg.budget_tokens, cfg.summary]
    if cfg.adaptive or cfg.native_effort is not None:
        key += [cfg.adaptive, cfg.native_effort]
    return key


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role.value, "name": m.name, "parts": [_part(p) for p in m.parts]}
    if m.extra:   # a turn's provider data (server tool blocks) changes the answer; keys without it hold
        out["extra"] = m.extra
    return out


def _part(p: Any) -> Any:
    if isinstance(p, Text):
        return ["text", p.text]
    if isinstance(p, Attachment):
        key = ["attachment", p.type, p.media_type, _content_id(p), p.filename]
        # an image's detail changes the answer; keyed only when given, so keys made before it existed hold
        return [*key, p.detail] if p.detail is not None else key
    if isinstance(p, Document):   # by content, like every part: its repr shows an attachment's size only
        content = p.content if isinstance(p.content, str) else (
            _part(p.content) if isinstance(p.content, Attachment) else [_part(c) for c in p.content])
        return ["document", content, p.title, p.context, p.citations]
    if isinstance(p, ToolCall):
        return ["tool_call", p.id, p.name, p.arguments]
    if isinstance(p, ToolResult):
        content = p.content if isinstance(p.content, str) else [_part(c) for c in p.content]
        return ["tool_result", p.tool_call_id, content, p.is_error]
    if isinstance(p, Reasoning):
        return ["reasoning", p.text, p.signature]
    return [type(p).__name__, repr(p)]


def _content_id(a: Attachment) -> str | None:
    """What identifies the attachment's content (see the module docstring); raises Unkeyed."""
    data = a.data if a.data is not None else (a.source if isinstance(a.source, bytes) else None)
    if data is not None:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    raw = a.source if a.source is not None else a.url
    if raw is None:
        return None
    try:
        source = classify(raw)
        if source.kind in ("path", "file-url"):
            path = str(source.value)
            return "sha256:" + file_digest(file_url_path(path) if source.kind == "file-url" else path)
    except (AttachmentError, OSError):   # the call itself will say what is wrong with it
        raise Unkeyed from None
    if source.kind == "url" and a.fetch == "local" and source.scheme in ALLOWED_SCHEMES:
        raise Unkeyed
    return str(source.value)             # base64 or data: text (the content itself), a provider's URL


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return repr(value)
