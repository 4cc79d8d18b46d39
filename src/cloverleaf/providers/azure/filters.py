"""What Azure's content filter said tripped it, kept so a caller can see which category did.

Azure OpenAI refuses a filtered prompt with a 400 whose ``error.innererror`` is
``{"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"violence": {"filtered":
true, "severity": "high"}, "jailbreak": {"filtered": false, "detected": false}, ...}}``, and cuts
a completion the filter stops with ``finish_reason: "content_filter"``, the choice's
``content_filter_results`` (the same per-category verdicts) saying why. Both become a
:class:`~cloverleaf.ContentFilterError` whose ``innererror`` holds them in the 400's shape, which
the gateway's OpenAI-compatible error relays as Azure sends it.

Only the verdicts are kept: a category name (an identifier) and its ``filtered``, ``detected``
(booleans) and ``severity`` (``safe``, ``low``, ``medium``, ``high``). Everything else an entry can
hold is dropped, since it is text of the upstream's choosing that could quote anything: the
filter's own ``error`` message, a custom blocklist's ids, a protected-material citation.
"""

from __future__ import annotations

import re
from typing import Any

#: a category name or an error code as Azure writes them (``self_harm``, ``ResponsibleAIPolicyViolation``)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SEVERITIES = frozenset({"safe", "low", "medium", "high"})
#: at most this many categories are kept (Azure has about ten)
MAX_CATEGORIES = 32


def verdicts(results: Any) -> dict[str, dict[str, Any]] | None:
    """Each category's verdict from a ``content_filter_result(s)`` object, or None when it holds none."""
    if not isinstance(results, dict):
        return None
    kept: dict[str, dict[str, Any]] = {}
    for name, entry in results.items():
        if len(kept) >= MAX_CATEGORIES:
            break
        if not (isinstance(name, str) and _NAME.fullmatch(name) and isinstance(entry, dict)):
            continue
        verdict = {key: entry[key] for key in ("filtered", "detected") if isinstance(entry.get(key), bool)}
        severity = entry.get("severity")
        if isinstance(severity, str) and severity in _SEVERITIES:
            verdict["severity"] = severity
        if verdict:
            kept[name] = verdict
    return kept or None


def refusal_details(payload: Any) -> dict[str, Any] | None:
    """The ``innererror`` of Azure's 400 for a filtered prompt, verdicts only (None without one)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    inner = error.get("innererror") if isinstance(error, dict) else None
    if not isinstance(inner, dict):
        return None
    out: dict[str, Any] = {}
    code = inner.get("code")
    if isinstance(code, str) and _NAME.fullmatch(code):
        out["code"] = code
    found = verdicts(inner.get("content_filter_result"))
    if found:
        out["content_filter_result"] = found
    return out or None


def tripped(details: dict[str, Any] | None) -> str:
    """The categories the filter stopped, for a message (``violence (high), hate``), or ''."""
    found = (details or {}).get("content_filter_result") or {}
    return ", ".join(f"{name} ({v['severity']})" if "severity" in v else name
                     for name, v in found.items() if v.get("filtered"))
