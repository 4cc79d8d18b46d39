"""Tool-call ids in the form an API accepts, for a history that began on another provider.

Mistral takes exactly nine letters and digits: it answers 400 ("Tool call id was call_... but
must be a-z, A-Z, 0-9, with a length of 9") to any other id in ``assistant.tool_calls[].id`` or
``tool.tool_call_id`` (:func:`mistral_tool_ids`). Anthropic takes letters, digits, ``_`` and ``-``
(``^[a-zA-Z0-9_-]+$``), and Kimi K2's ids (``functions.get_weather:0``) are neither
(:func:`remap_ids`, for its encoder). A history that began elsewhere carries such ids: OpenAI's
``call_...``, Anthropic's ``toolu_...``, Kimi's, our own ``call_0`` for a server that sent none, a
gateway fallback's. All an id must do within one request is tie a call to its result, so each id
the API would refuse is sent as nine base-62 characters of its SHA-256 instead:

- the same id always maps alike, so a call and its result still match, and the same history
  is sent the same way turn after turn;
- an id already in the API's form (one it gave) is sent as it is;
- two ids never map alike within a request: a clash with another mapped or kept id (odds
  about 1 in 10^16) takes the hash of the id with a counter instead.

The answer's own calls come back with the API's ids, which need nothing on the next turn.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from typing import Any

_MISTRAL_ID = re.compile(r"[a-zA-Z0-9]{9}")
_BASE62 = string.digits + string.ascii_letters
_SPACE = len(_BASE62) ** 9


def mistral_tool_ids(messages: list[dict[str, Any]]) -> None:
    """Rewrite, in place, the tool-call ids of encoded Chat Completions ``messages`` that are
    not nine letters and digits (see the module docstring)."""
    refs: list[tuple[dict[str, Any], str]] = []
    for message in messages:
        for call in message.get("tool_calls") or ():
            refs.append((call, "id"))
        if "tool_call_id" in message:
            refs.append((message, "tool_call_id"))
    remap_ids(refs, _is_mistral_id)


def remap_ids(refs: list[tuple[dict[str, Any], str]], accepted: Callable[[Any], bool]) -> None:
    """Rewrite, in place, each id ``holder[key]`` of ``refs`` that ``accepted`` refuses to a
    :func:`short_id` of it, alike wherever it occurs (a call and its result)."""
    kept = {holder[key] for holder, key in refs if accepted(holder[key])}
    if all(holder[key] in kept for holder, key in refs):
        return
    taken = set(kept)
    mapped: dict[str, str] = {}
    for holder, key in refs:
        old = holder[key]
        if old in kept:
            continue   # in the API's form already
        new = mapped.get(old)
        if new is None:
            new = mapped[old] = short_id(str(old), taken)
            taken.add(new)
        holder[key] = new


def short_id(original: str, taken: set[str]) -> str:
    """Nine base-62 characters of ``original``'s SHA-256, none of ``taken``."""
    salt = 0
    while True:
        seed = original if salt == 0 else f"{original}\x00{salt}"
        value = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big") % _SPACE
        digits = []
        for _ in range(9):
            value, digit = divmod(value, len(_BASE62))
            digits.append(_BASE62[digit])
        candidate = "".join(reversed(digits))
        if candidate not in taken:
            return candidate
        salt += 1


def _is_mistral_id(value: Any) -> bool:
    return isinstance(value, str) and _MISTRAL_ID.fullmatch(value) is not None
