"""OpenRouter's ``reasoning_details``: kept as received, sent back as received.

OpenRouter asks for an assistant turn's ``reasoning_details`` to be passed back unchanged
("preserving reasoning blocks"): a ``reasoning.encrypted`` detail carries the encrypted
reasoning or the thought signature (Gemini 3 behind OpenRouter refuses a tool turn without
it), and each detail's ``format``, ``index`` and ``id`` tell OpenRouter which upstream block it
is. Our :class:`~cloverleaf.Reasoning` fields cannot hold all of that, so the details ride whole
on ``Reasoning.extra["reasoning_details"]``.

A stream sends them in fragments: the pieces of one detail share its ``type`` and ``index``,
and their ``text``/``summary``/``data`` add up. The fragments are kept in arrival order (the
stream accumulator extends the list) and joined back into whole details when sent.
"""

from __future__ import annotations

from typing import Any

from ..._types import Reasoning

KEY = "reasoning_details"
_JOINED = ("text", "summary", "data")


def received(message: dict[str, Any]) -> dict[str, Any] | None:
    """``{"reasoning_details": [...]}`` for a part's ``extra``: the message's (or delta's)
    details as received, or None when it has none."""
    details = message.get(KEY)
    if not isinstance(details, list):
        return None
    kept = [dict(d) for d in details if isinstance(d, dict)]
    return {KEY: kept} if kept else None


def joined(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole details from stream fragments; details received whole come out unchanged."""
    out: list[dict[str, Any]] = []
    by_key: dict[tuple[Any, int], dict[str, Any]] = {}
    for fragment in fragments:
        index = fragment.get("index")
        key = (fragment.get("type"), index) if isinstance(index, int) else None
        whole = by_key.get(key) if key is not None else None
        if whole is None:
            whole = dict(fragment)
            out.append(whole)
            if key is not None:
                by_key[key] = whole
            continue
        for field, value in fragment.items():
            if field in _JOINED and isinstance(value, str) and isinstance(whole.get(field), str):
                whole[field] += value
            elif value is not None:
                whole[field] = value
    return out


def of_parts(parts: list[Reasoning]) -> list[dict[str, Any]] | None:
    """The details these reasoning parts were received with, whole; None when none has any."""
    fragments = [d for p in parts for d in (p.extra or {}).get(KEY) or () if isinstance(d, dict)]
    return joined(fragments) if fragments else None
