"""Bedrock's server tool blocks, rebuilt from a ConverseStream as a whole Converse answer has them.

A tool Bedrock runs itself (Nova's ``nova_code_interpreter``, ``nova_grounding``...) answers with a
``toolUse`` block of ``type: server_tool_use`` and a ``toolResult`` block holding what it returned.
Neither is a part of the answer (the call is not ours to run), so the non-streamed parser keeps them
whole, as Bedrock sent them, in ``metadata.extra["server_tool_blocks"]``. A stream sends the same
blocks in pieces: the ``contentBlockStart`` names the tool (``toolUseId``, ``name``, ``type``) or the
result (``toolUseId``, ``type``, ``status``), ``toolUse.input`` deltas are fragments of the input's
JSON text, and ``toolResult`` deltas are lists of ``{"text": ...}`` or ``{"json": ...}`` content
(Converse's ``ToolResultBlockDelta``). :class:`StreamedServerBlocks` joins them back into the
blocks the whole answer has, so a streamed answer keeps what the same answer keeps whole. The
joined input is read as the whole answer's body is (``jsoncodec.loads_upstream``: a lone surrogate
escape becomes U+FFFD), so the two agree and the blocks stay text UTF-8 can carry.
"""

from __future__ import annotations

from typing import Any

from ... import _jsoncodec as jsoncodec

#: the fields of a block's start that the whole block has too (``p``, the stream's padding, is not)
_USE_FIELDS = ("toolUseId", "name", "type")
_RESULT_FIELDS = ("toolUseId", "type", "status")


class StreamedServerBlocks:
    """The server tool blocks of one stream, in the order they started."""

    __slots__ = ("_blocks", "_open", "_inputs")

    def __init__(self) -> None:
        self._blocks: list[dict[str, Any]] = []
        #: the body (``toolUse`` or ``toolResult`` object) of each block still open, by block index
        self._open: dict[int, dict[str, Any]] = {}
        self._inputs: dict[int, list[str]] = {}

    def start_use(self, index: int, start: dict[str, Any]) -> None:
        """A ``server_tool_use`` block's start: the tool and its call id."""
        body = {key: start[key] for key in _USE_FIELDS if key in start}
        self._blocks.append({"toolUse": body})
        self._open[index] = body
        self._inputs[index] = []

    def start_result(self, index: int, start: Any) -> None:
        """A ``toolResult`` block's start: which call it answers, and how it went."""
        body = {key: start[key] for key in _RESULT_FIELDS if isinstance(start, dict) and key in start}
        body["content"] = []
        self._blocks.append({"toolResult": body})
        self._open[index] = body

    def delta(self, index: int, delta: dict[str, Any]) -> None:
        """A piece of an open block: input text of a tool use, content of a result."""
        body = self._open.get(index)
        if body is None:
            return
        if "toolUse" in delta and index in self._inputs:
            fragment = (delta["toolUse"] or {}).get("input")
            if isinstance(fragment, str) and fragment:
                self._inputs[index].append(fragment)
        elif "toolResult" in delta and "content" in body:
            pieces = delta["toolResult"]
            for piece in pieces if isinstance(pieces, list) else [pieces]:
                _add_content(body["content"], piece)

    def stop(self, index: int) -> None:
        """The block is complete: a tool use's input is parsed (``{}`` when it sent none)."""
        body = self._open.pop(index, None)
        fragments = self._inputs.pop(index, None)
        if body is None or fragments is None:
            return
        text = "".join(fragments)
        if not text.strip():
            body["input"] = {}
            return
        try:
            body["input"] = jsoncodec.loads_upstream(text)
        except (ValueError, RecursionError):
            body["input"] = {"_raw": text}   # kept, never dropped (as a tool call's bad arguments are)

    def extra(self) -> dict[str, Any]:
        """``metadata.extra`` of the answer: the blocks, under the key the whole answer uses."""
        for index in list(self._open):   # a block the stream never closed
            self.stop(index)
        return {"server_tool_blocks": self._blocks} if self._blocks else {}


def _add_content(content: list[dict[str, Any]], piece: Any) -> None:
    """One ``ToolResultBlockDelta``: text continues the text item before it (a text result comes in
    fragments); a ``json`` value is a whole item of its own."""
    if not isinstance(piece, dict):
        return
    text = piece.get("text")
    if isinstance(text, str):
        if content and set(content[-1]) == {"text"}:
            content[-1]["text"] += text
        else:
            content.append({"text": text})
    elif "json" in piece:
        content.append({"json": piece["json"]})
