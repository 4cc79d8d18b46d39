"""Which models an Ollama server has said cannot think, so ``think`` is no longer sent to them.

Ollama answers ``think`` (true or a level) for a model without the thinking capability with a
400, ``{"error": "\\"llama3.1\\" does not support thinking"}`` (``ChatHandler`` in ollama's
``server/routes.go``: ``fmt.Sprintf("%q does not support thinking", req.Model)``), rather than
answering without thinking. Its OpenAI-compatible ``/v1/chat/completions`` turns ``reasoning_effort``
(or ``reasoning.effort``) other than ``"none"`` into that same ``think`` and relays the same 400 in
OpenAI's shape (``middleware/openai.go``, ``openai.NewError``): ``{"error": {"message": "\"llama3.1\"
does not support thinking", "type": "invalid_request_error", "param": null, "code": null}}``; both
shapes are recognised, for the native adapter and for the OpenAI adapter that reaches Ollama at
``/v1``. A client that asks every model for thinking (Claude Code through
``/v1/messages``; ``reasoning="low"`` set once for a set of models) then could not use such a
model at all.

Why learn from that 400 rather than ask ``/api/show`` for the model's capabilities first: a call
to a model that thinks (the usual case when thinking is asked for) costs nothing more, a model
without costs one refused request once per server and process, and no second endpoint (which an
Ollama-compatible server or a proxy may lack) has to answer. The memory is keyed by the server
and the model, since two servers may hold different models under one name, and is bounded: past
``MAX_MODELS`` the oldest is forgotten (it costs one more refusal, if it is asked again).
"""

from __future__ import annotations

import json
import re
import threading

from ..._http import HttpResponse
from ..base import generic_error_fields

#: How many (server, model) pairs are remembered.
MAX_MODELS = 512

#: Ollama's message, for the model name as it quoted it (Go's ``%q``).
_NO_THINKING = re.compile(r'("(?:[^"\\]|\\.)*") does not support thinking')


def says_no_thinking(refusal: HttpResponse, model: str) -> bool:
    """Whether ``refusal`` is Ollama's 400 for ``think`` sent to ``model`` without thinking: that
    exact message, naming that model (any other 400, and the same words about another model, are
    the caller's to see)."""
    if refusal.status != 400:
        return False
    message, _ = generic_error_fields(refusal)
    found = _NO_THINKING.fullmatch(message.strip()) if isinstance(message, str) else None
    if found is None:
        return False
    try:   # Go's %q of a model name reads back as a JSON string
        return bool(json.loads(found.group(1)) == model)
    except ValueError:
        return False


class NoThinkingModels:
    """The (server, model) pairs known to have no thinking, oldest forgotten first."""

    __slots__ = ("_known", "_lock")

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], None] = {}
        self._lock = threading.Lock()

    def has(self, server: str, model: str) -> bool:
        return (server, model) in self._known

    def add(self, server: str, model: str) -> None:
        with self._lock:
            if (server, model) in self._known:
                return   # (two calls refused at once)
            if len(self._known) >= MAX_MODELS:
                del self._known[next(iter(self._known))]
            self._known[(server, model)] = None
