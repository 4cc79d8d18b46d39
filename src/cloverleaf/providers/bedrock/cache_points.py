"""Converse ``cachePoint`` blocks for Anthropic-style ``cache_control`` marks: a cache point after
the marked block (system text, message content, tool), with the mark's lifetime for Claude."""

from __future__ import annotations

from typing import Any


def with_cache_point(block: dict[str, Any], cache_control: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [block, cache_point(cache_control)] if cache_control else [block]


#: The cache lifetimes a Converse ``cachePoint`` takes (``CacheTTL``).
CACHE_TTLS = ("5m", "1h")


def cache_point(cache_control: dict[str, Any]) -> dict[str, Any]:
    """A ``cachePoint`` block for an Anthropic-style mark, with its ``ttl``: a one-hour mark
    (``"ttl": "1h"``, Claude Code's) became a five-minute cache point, so a long session paid a
    cache write again after every pause of five minutes."""
    ttl = cache_control.get("ttl")
    return {"cachePoint": {"type": "default", **({"ttl": ttl} if ttl in CACHE_TTLS else {})}}


def without_cache_ttls(body: dict[str, Any]) -> None:
    """Drop, in place, the cache points' ``ttl`` (extended caching is Claude's on Bedrock): a
    request marked for Claude that falls back to Nova keeps its default cache points."""
    for blocks in _block_lists(body):
        for block in blocks:
            if isinstance(block, dict) and isinstance(block.get("cachePoint"), dict):
                block["cachePoint"].pop("ttl", None)


def without_cache_points(body: dict[str, Any]) -> None:
    """Drop, in place, every ``cachePoint``: a model without prompt caching on Bedrock (Llama,
    Mistral, DeepSeek, Kimi, Qwen, GLM, Claude 3...) refuses the whole call ("You invoked an
    unsupported model or your request did not allow prompt caching"), and caching is only a
    saving: Claude Code's marks, or a route falling back from Claude, made every call there fail."""
    for blocks in _block_lists(body):
        blocks[:] = [b for b in blocks if not (isinstance(b, dict) and "cachePoint" in b)]


def _block_lists(body: dict[str, Any]) -> list[list[Any]]:
    """The lists a cachePoint can stand in: system, each message's content, the tools."""
    tool_config = body.get("toolConfig")
    lists = [body.get("system"), *(m.get("content") for m in body.get("messages") or ()),
             tool_config.get("tools") if isinstance(tool_config, dict) else None]
    return [blocks for blocks in lists if isinstance(blocks, list)]
