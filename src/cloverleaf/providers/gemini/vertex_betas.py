"""The ``anthropic-beta`` names Claude on Vertex AI takes, and what a client's others become there.

Vertex AI takes Claude's beta features as Anthropic's API does, in the ``anthropic-beta`` header
(Anthropic's own Vertex client, ``anthropic.lib.vertex``, sends the header unchanged), but only
some of them, and it refuses the whole request when one name is not among them: a 400
``invalid_request_error`` "Unexpected value(s) `structured-outputs-2025-11-13` for the
`anthropic-beta` header". Claude Code sends a handful on every call (``claude-code-20250219``,
``prompt-caching-scope-2026-01-05``, ``effort-2025-11-24``...), so a ``/v1/messages`` client
routed to ``vertex/claude-...`` could make no call at all if they were passed on as sent.

So a client's names are filtered here (:func:`vertex_betas`): those Vertex AI takes go on, a
name Vertex AI has under another one is renamed (tool search: ``advanced-tool-use-2025-11-20`` on
Anthropic's API is ``tool-search-tool-2025-10-19`` on Vertex AI, per Anthropic's tool search
page), and the rest are dropped, each said in the debug log by the adapter. The list: Anthropic's
feature pages that name Vertex AI (tool search, 1M context, context editing and compaction,
interleaved thinking, computer use, Vertex AI's own web search page), cross-checked against
the names that clients and gateways found Vertex AI to accept or refuse (structured outputs,
code execution, the files API, fast mode, 128k output, fine-grained tool streaming and the
effort beta are refused). A name not listed is dropped rather than risked: one unknown name
fails the call, a dropped one only leaves its feature off.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The beta names Vertex AI takes for Claude, as they are sent.
VERTEX_BETAS = frozenset({
    "interleaved-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "compact-2026-01-12",
    "compact-2026-09-04",
    "tool-search-tool-2025-10-19",
    "web-search-2025-03-05",
    "computer-use-2024-10-22",
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "per-turn-control-2026-07-01",
    "thinking-binding-controls-2026-08-01",
    "thinking-display-updates-2026-08-18",
    "dangerous-tool-use-2026-09-03",
})

#: Anthropic API names whose feature Vertex AI takes under another name.
VERTEX_RENAMES = {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}


def vertex_betas(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the names to send to Vertex AI, each once and in order; the names dropped)."""
    kept: dict[str, None] = {}
    dropped: list[str] = []
    for name in names:
        name = VERTEX_RENAMES.get(name, name)
        if name in VERTEX_BETAS:
            kept[name] = None
        else:
            dropped.append(name)
    return list(kept), dropped
