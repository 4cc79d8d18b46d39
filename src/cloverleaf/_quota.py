"""Which provider error codes mean a spent quota: waiting does not refill it.

OpenAI answers a spent quota with a 429 like a rate limit, told apart only by its body's
``code``/``type`` (``insufficient_quota``, ``billing_hard_limit_reached``); OpenRouter says
``insufficient_credits`` and Anthropic ``billing_error``. The adapters' error mapping makes these
a :class:`~cloverleaf.QuotaExceededError` (not retryable), and the transport, which knows no
provider, must not spend its retries and backoff on them before the adapter sees the answer.
One set of codes here (a neutral leaf both read, as ``_http.parse_retry_after`` is), so the two
cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

#: ``error.code`` / ``error.type`` values (lower-cased) that mean the account's quota or credit is spent.
SPENT_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "insufficient_credits",
                               "billing_error"})

#: Bodies larger than this are not an error object worth reading for a code.
_MAX_BODY = 64 * 1024


def says_quota_spent(body: bytes | None) -> bool:
    """True when an error body (``{"error": {"code"|"type": ...}}``, or the same fields flat)
    names a spent quota."""
    if not body or len(body) > _MAX_BODY:
        return False
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return False
    err = payload.get("error", payload)
    if not isinstance(err, dict):
        return False
    return any(isinstance(err.get(key), str) and err[key].lower() in SPENT_QUOTA_CODES for key in ("code", "type"))
