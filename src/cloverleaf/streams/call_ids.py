"""Ids for tool calls an upstream sent without one, unique per answer.

Some OpenAI-compatible servers send a tool call with no id, or ``"id": ""`` (Gemini's
OpenAI-compatible endpoint). Whatever id we give it travels on: the client sends it back with
the call and its result, and a tool loop keeps every turn's calls in its history. An id made
from the call's position alone (``call_0``) repeats in the second turn, and then Anthropic
refuses the history on a fallback or a switch ("tool_use ids must be unique") and OpenAI cannot
tell which of two results answers which ``call_0``.

So a made-up id is the hash of something that belongs to one answer (its ``salt``) and the call's
index in it. The salt is the answer's id together with a mark of the conversation the answer
replies to, or a random token when the answer has no id. The answer's id alone is not enough:
servers reuse it. Ollama's ``/v1`` numbers its answers ``chatcmpl-`` and a random number below
999 (``middleware/openai.go``), so a tool loop of a few dozen turns likely holds two answers with
one id; vLLM takes the id from a client's ``X-Request-Id``, which a client may send unchanged on
every turn; any server that fills a constant id would give every turn the same ids. The mark
(:func:`history_mark`: how many messages came, and the ids of the tool calls among them) makes
two turns of one conversation differ even then: a later turn's history holds the earlier turn's
calls, which the earlier turn's history did not. The same answer to the same request gives the
same ids however its stream is split, and the whole-answer parser and the stream decoder make them
alike (both are given the request). ``call_`` and 24 hex digits fit every provider's id rules
(Anthropic's ``^[a-zA-Z0-9_-]+$``, at most 64 characters; Mistral's nine characters are mapped on
the way out by ``providers.openai.tool_ids``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from .._types import Message, ToolCall


def answer_salt(answer_id: Any = None, history: Sequence[Message] = ()) -> str:
    """What makes one answer's made-up call ids its own: the answer's id as the upstream sent
    it with the mark of ``history``, the messages it answers; or a random token for an answer
    that came without an id."""
    if isinstance(answer_id, str) and answer_id:
        return f"{answer_id}\x00{history_mark(history)}"
    return secrets.token_hex(8)


def history_mark(history: Sequence[Message]) -> str:
    """What tells the requests of one conversation apart, cheaply (no text or attachment is
    hashed): the number of messages and the ids of the tool calls in them. Any turn after one
    that called tools carries those calls; the turn that made them did not."""
    digest = hashlib.sha256(str(len(history)).encode())
    for message in history:
        for part in message.parts:
            if isinstance(part, ToolCall):
                digest.update(b"\x00" + part.id.encode())
    return digest.hexdigest()[:16]


def made_up_call_id(salt: str, index: int) -> str:
    """The id of the call at ``index`` of the answer ``salt`` stands for."""
    digest = hashlib.sha256(f"{salt}\x00{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"
