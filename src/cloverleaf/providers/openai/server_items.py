"""The Responses API's items of tools OpenAI runs itself: kept from an answer and sent back in place.

A ``web_search`` (or ``file_search``, ``code_interpreter``, ``image_generation``, MCP) tool asked
for in ``extra_body`` adds its own items to the answer's ``output`` (``web_search_call``,
``code_interpreter_call`` with its outputs, ``image_generation_call`` with the image in ``result``,
...), between the reasoning items and the message. They have no neutral part, so the answer keeps
them as they came in ``metadata.extra["server_tool_blocks"]`` (the key Anthropic's server tool
blocks use, which :meth:`ChatResponse.to_message` carries onto the history's message with the row
that produced them) and, in ``metadata.extra["server_tool_block_positions"]``, the id of the output
item each came after (None: first).

They must go back: a reasoning item sent by id needs the item that followed it ("Item 'rs_...' of
type 'reasoning' was provided without its required following item", a recorded 400), and after a
search that item is the ``web_search_call``. So an assistant turn that goes back with its reasoning
by id (see :mod:`.responses_messages`) gets each kept item again right after the item it followed,
as pydantic-ai's recorded (accepted) follow-up requests send them (a search's ``action.sources``
left out, as there). Under ``store: false`` nothing goes back by id, these items neither.
"""

from __future__ import annotations

from typing import Any

#: The output items of tools OpenAI runs (not the caller's function, custom or computer calls).
SERVER_ITEM_TYPES = frozenset({"web_search_call", "file_search_call", "code_interpreter_call",
                               "image_generation_call", "mcp_call", "mcp_list_tools"})
BLOCKS = "server_tool_blocks"
POSITIONS = "server_tool_block_positions"


class ServerItems:
    """The server tools' items of one answer, in order, each with the id of the item before it."""

    __slots__ = ("items", "after", "_last")

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.after: list[str | None] = []
        self._last: str | None = None

    def see(self, item: Any) -> None:
        """One output item, in order: kept if a server tool's, and the anchor of the next either way."""
        if not isinstance(item, dict):
            return
        if item.get("type") in SERVER_ITEM_TYPES:
            self.items.append(item)
            self.after.append(self._last)
        if isinstance(item.get("id"), str):
            self._last = item["id"]

    def extra(self) -> dict[str, Any]:
        return {BLOCKS: self.items, POSITIONS: self.after} if self.items else {}


def of_output(output: list[Any]) -> dict[str, Any]:
    """The ``metadata.extra`` entries for a whole answer's ``output``."""
    kept = ServerItems()
    for item in output:
        kept.see(item)
    return kept.extra()


def placed(items: list[dict[str, Any]], extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A turn's ``items`` (sent by id) with the kept server items of its message (``extra``) put
    back after the item each followed; one whose anchor is not there goes last."""
    blocks, after = (extra or {}).get(BLOCKS), (extra or {}).get(POSITIONS)
    if not isinstance(blocks, list) or not blocks:
        return items
    anchors = after if isinstance(after, list) and len(after) == len(blocks) else [None] * len(blocks)
    pending = [(_as_input(b), a) for b, a in zip(blocks, anchors, strict=True)
               if isinstance(b, dict) and b.get("type") in SERVER_ITEM_TYPES]
    out = [b for b, a in pending if a is None]
    pending = [(b, a) for b, a in pending if a is not None]
    for item in items:
        out.append(item)
        anchor = item.get("id")
        while anchor is not None and pending and pending[0][1] == anchor:
            out.append(pending.pop(0)[0])
            anchor = out[-1].get("id")   # a run of server items: each anchored on the one before
    return out + [b for b, _ in pending]


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    """The item as input: a search's ``action.sources`` (output asked for with ``include``, in kinds
    the input does not take, ``{"type": "api"}``) stays out, as the recorded follow-up sends it."""
    action = item.get("action")
    if item.get("type") == "web_search_call" and isinstance(action, dict) and "sources" in action:
        return {**item, "action": {k: v for k, v in action.items() if k != "sources"}}
    return item
