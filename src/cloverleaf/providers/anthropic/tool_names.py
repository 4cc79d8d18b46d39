"""Tool names the Messages API refuses, sent under a name it takes and read back as they were.

Anthropic takes a tool name of 1 to 64 letters, digits, ``_`` and ``-`` (``tools.0.custom.name:
String should match pattern '^[a-zA-Z0-9_-]{1,64}$'``), while other providers and MCP hosts use
names such as ``github.create_issue`` or ``mcp__server__a_long_tool_name...`` past 64
characters (Gemini takes dots; a route that falls back from it to Claude got a 400). Such a name
is sent as its nearest valid form (other characters as ``_``), or, when that is taken by another
tool of the request or too long, cut to fit with a hash of the name after it; everything else
goes as it is. The answer's ``tool_use`` names are read back through the same request's map,
whole or streamed, so the caller sees its own names, and a conversation's earlier calls are
sent under the same names as the tools they call. A leaf of the package: pure functions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_VALID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_OTHER = re.compile(r"[^a-zA-Z0-9_-]")
_MAX = 64


def is_valid(name: str) -> bool:
    return _VALID.fullmatch(name) is not None


def _hashed(name: str, cleaned: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[:_MAX - 9]}_{digest}"


def wire_names(names: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Each name the API refuses -> the name to send in its place (valid names are not in it).
    ``reserved``: names the request's body may carry beside the caller's tools (the structured
    output tool), never given to a caller's tool. Deterministic for a set of names, so every
    turn of a conversation maps them alike."""
    given = list(dict.fromkeys(names))
    taken = {n for n in given if is_valid(n)} | set(reserved)
    out: dict[str, str] = {}
    for name in given:
        if name in taken:
            continue
        cleaned = _OTHER.sub("_", name) or "tool"
        wire = cleaned if len(cleaned) <= _MAX and cleaned not in taken else _hashed(name, cleaned)
        taken.add(wire)
        out[name] = wire
    return out


def read_back(names: dict[str, str], wire: str) -> str:
    """The caller's name for the ``wire`` name an answer's ``tool_use`` carries."""
    for name, sent in names.items():
        if sent == wire:
            return name
    return wire
