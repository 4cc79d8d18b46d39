"""A tool call's thought signature, carried through clients that keep only (id, name, arguments).

Gemini 3 signs its function calls (``thoughtSignature``, kept on ``ToolCall.extra``) and refuses
the next turn when a call comes back unsigned ("Function call is missing a thought_signature").
An OpenAI or Anthropic client sends back what it was given, and most agents rebuild a tool call
from its id, name and arguments alone; so the signature travels in two places:

- in the call's **id**: ``<id>__thsig_<flag><payload>``, the signature as unpadded base64url
  (``b``: its decoded bytes, as long as the signature itself; ``t``: its text, when it is not
  canonical base64). Every character is one of ``[A-Za-z0-9_-]``, which Anthropic's ``tool_use``
  id pattern accepts, and the id is decoded back on the way in, for the call *and* for the tool
  result that answers it, so the upstream (Gemini, or another provider after a fallback) only
  ever sees the original id;
- on Chat Completions, also as Google's own OpenAI-compatible field,
  ``extra_content.google.thought_signature`` on the tool call.

An id without the marker passes unchanged, both ways.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

#: The key Gemini's adapter keeps a function call's signature under, on ``ToolCall.extra``.
SIGNATURE_KEY = "thoughtSignature"
_MARK = "__thsig_"
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]*")


def signature_of(extra: dict[str, Any] | None) -> str | None:
    value = (extra or {}).get(SIGNATURE_KEY)
    return value if isinstance(value, str) and value else None


def signed_id(call_id: str, extra: dict[str, Any] | None) -> str:
    """The id to give the client: ``call_id`` with the call's signature, when it has one."""
    signature = signature_of(extra)
    if signature is None:
        return call_id
    try:
        raw = base64.b64decode(signature, validate=True)
        flag = "b" if base64.b64encode(raw).decode("ascii") == signature else "t"
    except (binascii.Error, ValueError):
        flag = "t"
    if flag == "t":
        raw = signature.encode("utf-8")
    return f"{call_id}{_MARK}{flag}{base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')}"


def unsigned(call_id: str) -> tuple[str, str | None]:
    """``(original id, signature or None)`` for an id a client sent back."""
    at = call_id.find(_MARK)
    if at < 0:
        return call_id, None
    flag, payload = call_id[at + len(_MARK):at + len(_MARK) + 1], call_id[at + len(_MARK) + 1:]
    if flag not in ("b", "t") or not payload or not _PAYLOAD.fullmatch(payload):
        return call_id, None
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        signature = base64.b64encode(raw).decode("ascii") if flag == "b" else raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return call_id, None
    return call_id[:at], signature


def google_extra_content(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat Completions' ``extra_content`` for a call with a signature (Google's OpenAI-compatible field)."""
    signature = signature_of(extra)
    return {"google": {"thought_signature": signature}} if signature else None


def from_extra_content(raw: Any) -> str | None:
    """The signature in a tool call's ``extra_content``, if it holds one."""
    google = raw.get("google") if isinstance(raw, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    return value if isinstance(value, str) and value else None


def call_extra(call_id: str, extra_content: Any = None) -> tuple[str, dict[str, Any] | None]:
    """``(original id, ToolCall.extra)`` for a call a client sent back: its signature from
    ``extra_content`` when given, else from its id."""
    original, from_id = unsigned(call_id)
    signature = from_extra_content(extra_content) or from_id
    return original, ({SIGNATURE_KEY: signature} if signature else None)
