"""Anthropic's server tool blocks: kept from an answer, whole or streamed, and sent back.

Blocks of tools Anthropic runs itself (``server_tool_use`` and its ``web_search_tool_result``,
``web_fetch_tool_result``, code execution and MCP blocks...) have no neutral part. An answer keeps
them as they came in ``metadata.extra["server_tool_blocks"]`` (streamed: a block from its
``content_block_start``, a ``server_tool_use``'s input joined from its ``input_json_delta``
fragments and read as the whole answer's body is, a lone surrogate escape as U+FFFD), and in ``metadata.extra["server_tool_block_positions"]`` how many of the answer's
parts came before each, so the turn can be rebuilt in order.

They must go back: a turn that stopped with ``pause_turn`` (a long server-tool run) is resumed
by sending the paused assistant turn, server blocks included, and Claude cannot continue from
its text alone. :meth:`ChatResponse.to_message` puts them on the message
(``Message.extra``, with the row that produced them), and :func:`assistant_content` puts them
back in place, for the same kind of provider only (another API does not know the blocks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import _jsoncodec as jsoncodec
from .._common import replayable_reasoning

if TYPE_CHECKING:
    from ..._types import Message
    from .._common import NamedAdapter


class ServerBlocks:
    """A stream's server tool blocks, in order, each with the number of parts before it."""

    __slots__ = ("_blocks", "_positions", "_open", "_inputs")

    def __init__(self) -> None:
        self._blocks: list[dict[str, Any]] = []
        self._positions: list[int] = []
        self._open: dict[int, dict[str, Any]] = {}
        self._inputs: dict[int, list[str]] = {}

    def start(self, index: int, block: dict[str, Any], parts_before: int) -> None:
        kept = dict(block)
        self._blocks.append(kept)
        self._positions.append(parts_before)
        self._open[index] = kept

    def input(self, index: int, fragment: str) -> None:
        if index in self._open:
            self._inputs.setdefault(index, []).append(fragment)

    def stop(self, index: int) -> None:
        block = self._open.pop(index, None)
        fragments = self._inputs.pop(index, None)
        if block is None or not fragments:
            return
        text = "".join(fragments)
        try:
            block["input"] = jsoncodec.loads_upstream(text)
        except (ValueError, RecursionError):
            block["input"] = {"_raw": text}   # kept, never dropped (as a tool call's bad arguments are)

    def extra(self) -> dict[str, Any]:
        if not self._blocks:
            return {}
        return {"server_tool_blocks": self._blocks, "server_tool_block_positions": self._positions}


def assistant_content(adapter: NamedAdapter, msg: Message, per_part: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """An assistant turn's blocks (``per_part``: the blocks of each of its parts) with its server
    tool blocks back in place, when the turn came from this kind of provider."""
    extra = msg.extra or {}
    blocks = extra.get("server_tool_blocks")
    if not isinstance(blocks, list) or not blocks or not replayable_reasoning(adapter, extra.get("provider")):
        return [b for part in per_part for b in part]
    given = extra.get("server_tool_block_positions")
    if not isinstance(given, list) or len(given) != len(blocks):
        given = [0] * len(blocks)   # no places given: before the text, as a search precedes its answer
    last = len(per_part)
    places = [p if isinstance(p, int) and 0 <= p <= last else last for p in given]
    out: list[dict[str, Any]] = []
    for at in range(last + 1):
        out.extend(b for b, p in zip(blocks, places, strict=True) if p == at and isinstance(b, dict))
        if at < last:
            out.extend(per_part[at])
    return out
