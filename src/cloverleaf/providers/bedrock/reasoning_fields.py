"""Reasoning and Claude's context edits, as each model family on Converse takes them.

Converse has no shared reasoning switch: each family is asked through
``additionalModelRequestFields`` in its own words (:func:`reasoning_fields`). Claude takes
``thinking`` and ``output_config.effort`` by the same rules as on Anthropic's API
(``claude_rules``): adaptive thinking for 4.6 and later when asked, and for any request on Opus
4.7 and later, which refuse a budget. gpt-oss takes ``reasoning_effort``, Qwen
``reasoning_config``, Nova ``reasoningConfig``; DeepSeek and Kimi always reason, and
``reasoning=0`` asks none of them for reasoning. Effort and budget translate through the shared
table in ``_common``. A model cloverleaf does not know how to ask is a clear error naming the
escape hatch (``extra_body={"additionalModelRequestFields": {...}}``), rather than a silent
answer without reasoning.

Claude's budget is left out of a tool loop whose last assistant turn lost its signed thinking
(:func:`final_assistant` gives ``claude_rules.history_allows_thinking`` what it reads), and of a
request that forces a tool, which the model would refuse. Anthropic's context edits
(``ChatRequest.context_management``) reach Claude on Bedrock too, as Anthropic's own fields with
their ``anthropic_beta`` (:func:`with_context_management`).

A leaf of the package's request side: the adapter imports it; it needs of its adapter only what
:class:`_Host` names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..._types import ChatRequest
from .._common import effort_for_budget
from ..claude_rules import BlockKind, output_effort

if TYPE_CHECKING:
    from ..._errors import InvalidRequestError


class _Host(Protocol):
    """What the reasoning fields need of their adapter (a protocol keeps the import one way)."""

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError: ...


#: The beta Claude on Bedrock needs to apply ``context_management`` (in ``anthropic_beta``).
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"


def reasoning_fields(host: _Host, req: ChatRequest, budget: int | None, *, adaptive: bool,
                     claude: bool) -> dict[str, Any]:
    """The ``additionalModelRequestFields`` that ask ``req.model`` for the reasoning ``req``
    asks for. ``budget``: a Claude model's thinking budget, already fitted to its rules (None:
    off); ``adaptive``: adaptive thinking instead (Claude 4.6 and later; all Opus 4.7 and later
    take, a budget being a 400), steered by ``output_config.effort`` as on Anthropic's API."""
    rc = req.reasoning
    assert rc is not None
    model = req.model.lower()
    if claude:
        fields: dict[str, Any] = {}
        if adaptive:
            fields["thinking"] = {"type": "adaptive"}
        elif budget is not None:
            fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
        effort = output_effort(req, adaptive=adaptive)
        if effort is not None:
            fields["output_config"] = {"effort": effort}
        return fields
    if rc.budget_tokens == 0 and rc.effort is None:
        return {}   # reasoning=0: no reasoning (it was switched on at "medium")
    effort = rc.effort or (effort_for_budget(rc.budget_tokens) if rc.budget_tokens else "medium")
    if "openai." in model:
        return {"reasoning_effort": "low" if effort == "minimal" else effort}
    if "qwen." in model:
        return {"reasoning_config": effort}
    if "nova" in model:
        return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort":
                                    "low" if effort == "minimal" else effort}}
    if any(name in model for name in ("deepseek.", "moonshot", "kimi")):
        return {}  # these models always reason; there is nothing to switch on
    raise host.invalid(
        f"cloverleaf does not know how to ask {req.model} for reasoning on Bedrock; pass the model's own "
        "fields as extra_body={'additionalModelRequestFields': {...}}", req.model)


def with_context_management(config: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Claude's context edits as Bedrock takes Anthropic's own fields: ``context_management`` in
    ``additionalModelRequestFields`` (the caller's own extras win), with its beta added to any
    ``anthropic_beta`` they name."""
    betas = fields.get("anthropic_beta")
    names = [betas] if isinstance(betas, str) else [*betas] if isinstance(betas, list) else []
    if CONTEXT_MANAGEMENT_BETA not in names:
        names.append(CONTEXT_MANAGEMENT_BETA)
    return {"context_management": config, **fields, "anthropic_beta": names}


def final_assistant(messages: list[dict[str, Any]]) -> list[BlockKind] | None:
    """The block kinds of the conversation's last assistant turn, for ``history_allows_thinking``."""
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None:
        return None
    return [("thinking" if "reasoningContent" in b else "tool_use" if "toolUse" in b else "other")
            for b in last["content"]]


__all__ = ["CONTEXT_MANAGEMENT_BETA", "final_assistant", "reasoning_fields", "with_context_management"]
