"""What an error body says about trying again: read alike by the transport and the adapters.

OpenAI answers a spent quota with a 429 like a rate limit, told apart only by its body's
``code``/``type`` (``insufficient_quota``, ``billing_hard_limit_reached``, ``billing_not_active``);
OpenRouter says ``insufficient_credits`` and Anthropic ``billing_error``. The adapters' error mapping
makes these a :class:`~cloverleaf.QuotaExceededError` (not retryable), and the transport, which knows
no provider, must not spend its retries and backoff on them before the adapter sees the answer.
Likewise Ollama's 500 for a model that does not fit in memory and its 500 (from some versions) for
an input longer than the model's context (the next try fails the same way: the adapter makes it a
:class:`~cloverleaf.ContextWindowExceededError`), and Gemini's wait, said in the body (``google.rpc.RetryInfo`` ``retryDelay``) rather than in a
``Retry-After``: the SDK's own retries wait it out, as the gateway's do. One module (a neutral leaf
both read, as ``_http.parse_retry_after`` is), so the two cannot disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._http import sane_retry_after

#: ``error.code`` / ``error.type`` values (lower-cased) that mean the account's quota or credit is spent
#: (``billing_not_active``: OpenAI's 429 for an account whose billing is off; no wait turns it on).
SPENT_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "insufficient_credits",
                               "billing_error", "billing_not_active"})

#: Ollama's words when a model needs more memory than the machine has ("model requires more system
#: memory (12.5 GiB) than is available (4.0 GiB)"), its whole error: a 500 with no code.
MODEL_TOO_LARGE_WORDS = "requires more system memory"

#: Ollama's refusal of an input longer than the model's context: "the input length exceeds the
#: context length" (current versions) or "input exceeds maximum context length" (older).
_INPUT_TOO_LONG = re.compile(r"exceeds (the |maximum )?context length")

#: Bodies larger than this are not an error object worth reading for a code.
_MAX_BODY = 64 * 1024

_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)s\s*")


def _error_of(body: bytes | None) -> Any:
    """The error object of a body (``{"error": ...}``, a one-item list of that, or the fields flat);
    None when it is no JSON worth reading."""
    if not body or len(body) > _MAX_BODY:
        return None
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    return payload.get("error", payload)


def says_quota_spent(body: bytes | None) -> bool:
    """True when an error body (``{"error": {"code"|"type": ...}}``, or the same fields flat)
    names a spent quota."""
    err = _error_of(body)
    if not isinstance(err, dict):
        return False
    return any(isinstance(err.get(key), str) and err[key].lower() in SPENT_QUOTA_CODES for key in ("code", "type"))


def says_model_too_large(message: str | None) -> bool:
    """Does an error's message say the model does not fit in the memory available (Ollama)?"""
    return bool(message) and MODEL_TOO_LARGE_WORDS in str(message).lower()


def says_input_too_long(message: str | None) -> bool:
    """Does an error's message say the input is longer than the model's context (Ollama)?"""
    return bool(message) and _INPUT_TOO_LONG.search(str(message).lower()) is not None


def says_no_retry(status: int, body: bytes | None) -> bool:
    """True for an error answer no retry can help: a 429 naming a spent quota, or a 500 saying
    the model does not fit in memory or the input does not fit the model's context (only a 500's
    body is read: other answers cost nothing more)."""
    if status == 429:
        return says_quota_spent(body)
    if status == 500:
        err = _error_of(body)
        message = err.get("message") if isinstance(err, dict) else err
        return isinstance(message, str) and (says_model_too_large(message) or says_input_too_long(message))
    return False


def retry_info_delay(details: Any) -> float | None:
    """Seconds a Google error's ``details`` ask to wait (``google.rpc.RetryInfo`` ``retryDelay``:
    "57s", "1.5s"), None when they do not say (or name no usable wait: beyond a day)."""
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _SECONDS.fullmatch(str(detail.get("retryDelay", "")))
            if match:
                return sane_retry_after(float(match.group(1)))
    return None


def body_retry_delay(body: bytes | None) -> float | None:
    """The wait an error body asks for (Gemini's RetryInfo), None when it does not say."""
    err = _error_of(body)
    return retry_info_delay(err.get("details")) if isinstance(err, dict) else None
