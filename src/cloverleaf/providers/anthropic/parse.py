"""What an Anthropic response and an Anthropic stream both read: stop reasons and usage
(see :mod:`.adapter`'s docstring for how the usage counts add up). A leaf of the package:
the adapter and the stream decoder import it, it imports neither."""

from __future__ import annotations

from typing import Any

from ..._types import FinishReason, Usage

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
}


#: ``metadata.extra["refusal"]`` for a refusal that came with no text.
DECLINED = "the model declined to answer (Anthropic stop_reason 'refusal')"


def refusal_extra(raw_finish: str | None, text: str) -> dict[str, str]:
    """``{"refusal": ...}`` for ``metadata.extra`` when Claude refused (``stop_reason:
    "refusal"``), as the OpenAI adapter keeps ``message.refusal``: ``ChatResponse.refusal`` is
    then set, and a structured call says the model refused instead of quoting a JSON error."""
    if raw_finish != "refusal":
        return {}
    return {"refusal": text.strip() or DECLINED}


def finish_reason(raw: str | None) -> FinishReason | None:
    if raw is None:
        return None
    return FINISH_REASONS.get(raw, "other")


def usage_from(data: dict[str, Any] | None) -> Usage:
    """Our :class:`Usage` from an Anthropic ``usage`` object (see the module docstring); an
    answer without one has unknown usage, not zero. ``cache_creation`` splits the writes by
    cache lifetime: one-hour writes bill at a higher rate than five-minute ones."""
    if not data:
        return Usage(reported=False)
    iterations = data.get("iterations")
    if isinstance(iterations, list) and iterations and all(isinstance(i, dict) for i in iterations):
        # server-side compaction: the top level counts only the last sampling step; every step is billed
        total = Usage()
        for step in iterations:
            total = total + usage_from(step)
        return total
    uncached = data.get("input_tokens") or 0
    read = data.get("cache_read_input_tokens") or 0
    written = data.get("cache_creation_input_tokens") or 0
    details = data.get("output_tokens_details") or {}
    by_ttl = data.get("cache_creation")
    server_tools = data.get("server_tool_use")
    searches = server_tools.get("web_search_requests") if isinstance(server_tools, dict) else None
    return Usage(
        input_tokens=uncached + read + written,
        output_tokens=data.get("output_tokens") or 0,
        cached_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=details.get("thinking_tokens") or 0,
        cache_write_1h_tokens=int(by_ttl.get("ephemeral_1h_input_tokens") or 0) if isinstance(by_ttl, dict) else 0,
        web_search_requests=searches if isinstance(searches, int) and searches > 0 else 0,
    )
