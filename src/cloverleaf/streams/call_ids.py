"""Ids for tool calls an upstream sent without one, unique per answer.

Some OpenAI-compatible servers send a tool call with no id, or ``"id": ""`` (Gemini's
OpenAI-compatible endpoint). Whatever id we give it travels on: the client sends it back with
the call and its result, and a tool loop keeps every turn's calls in its history. An id made
from the call's position alone (``call_0``) repeats in the second turn, and then Anthropic
refuses the history on a fallback or a switch ("tool_use ids must be unique") and OpenAI cannot
tell which of two results answers which ``call_0``.

So a made-up id is the hash of something that belongs to one answer (its ``salt``: the answer's
id, or a random token when there is none) and the call's index in it. The same answer gives the
same ids however its stream is split, and the whole-answer parser and the stream decoder make
them alike. ``call_`` and 24 hex digits fit every provider's id rules (Anthropic's
``^[a-zA-Z0-9_-]+$``, at most 64 characters; Mistral's nine characters are mapped on the way out
by ``providers.openai.tool_ids``).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any


def answer_salt(answer_id: Any = None) -> str:
    """What makes one answer's made-up call ids its own: the answer's id as the upstream sent
    it, or a random token for an answer that came without one."""
    if isinstance(answer_id, str) and answer_id:
        return answer_id
    return secrets.token_hex(8)


def made_up_call_id(salt: str, index: int) -> str:
    """The id of the call at ``index`` of the answer ``salt`` stands for."""
    digest = hashlib.sha256(f"{salt}\x00{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"
