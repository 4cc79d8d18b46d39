"""Anthropic's server-side context editing (``context_management``) for every other provider.

A request may carry ``ChatRequest.context_management = {"edits": [...]}``: Claude Code sends a
``clear_thinking_*`` edit on every call. Anthropic's API, and Claude models on Bedrock, apply the
edits themselves, so their adapters send the field as given
(:meth:`~cloverleaf.providers.base.Adapter.takes_context_management`). For any other provider:

- a ``clear_thinking_*`` edit is dropped: those providers keep no thinking of earlier turns in
  the conversation the model reads, so clearing it asks for what already happens there (refusing
  it would refuse every Claude Code call routed to them);
- any other edit (``clear_tool_uses_*`` clears old tool results, so the model reads less) cannot
  be done faithfully, and sending the whole conversation instead would answer a different
  question: the call is refused before it is sent, a 400 naming the edit and the providers that
  apply it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ._errors import InvalidRequestError
from ._types import ChatRequest

if TYPE_CHECKING:
    from .providers.base import Adapter, ProviderConfig

#: Who applies context edits, for the refusal's message.
SUPPORTED_BY = "the anthropic provider and Claude models on bedrock"
#: Edits that are no-ops for a provider that keeps no thinking across turns.
_THINKING_EDITS = "clear_thinking_"


def for_target(req: ChatRequest, adapter: Adapter, model: str, cfg: ProviderConfig | None = None) -> ChatRequest:
    """``req`` as ``adapter`` can send it to ``model`` under ``cfg``: itself when there are no edits or the
    provider applies them; else without its thinking edits (raises InvalidRequestError when
    another kind of edit is asked for)."""
    edits = (req.context_management or {}).get("edits") or []
    if req.context_management is None or adapter.takes_context_management(model, cfg):
        return req
    for edit in edits:
        kind = edit.get("type") if isinstance(edit, dict) else None
        if not (isinstance(kind, str) and kind.startswith(_THINKING_EDITS)):
            raise InvalidRequestError(
                f"context_management edit {kind!r} is applied by the provider, and {adapter.name!r} (model "
                f"{model!r}) has no server-side context editing; it is supported by {SUPPORTED_BY}. Route the "
                "call to one of them or drop the edit", provider=adapter.name, model=model,
                code="unsupported_context_edit")
    return dataclasses.replace(req, context_management=None)
