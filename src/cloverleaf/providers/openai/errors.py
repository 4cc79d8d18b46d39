"""Map OpenAI-style error bodies to cloverleaf's error tree, by status AND error code.

Every OpenAI-compatible server answers errors with some variant of
``{"error": {"message", "type", "code", "param"}}``; a few flatten it (vLLM, Mistral:
``{"object": "error", "message", "type", "code"}``), OpenRouter puts the HTTP status in
``code`` and the upstream's words in ``metadata.raw``, and Groq/OpenRouter also send the
same object *inside* a 200 stream. One function reads all of them, so the non-stream and
the in-stream paths classify identically.

Classification order: the provider's ``code``/``type`` first (they are specific), then the
HTTP status. Two deliberate choices:

- ``insufficient_quota`` (and OpenRouter's 402 "insufficient credits") is a
  :class:`QuotaExceededError`, a :class:`RateLimitError` so callers that catch rate limits see
  it, but not retryable (a class attribute): waiting seconds does not refill a billing quota,
  so nobody burns retries on it, while the gateway may still fall back to another target.
- "context length" is recognised by code where the provider has one
  (``context_length_exceeded``; llama.cpp's llama-server names it in ``type``,
  ``exceed_context_size_error``, with "exceeds the available context size" in words) and otherwise only for a 400 whose message names the
  context window (vLLM and several compatible servers send no code) - status plus
  message, never message alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..._errors import (
    AuthenticationError,
    ContentFilterError,
    ContextWindowExceededError,
    NotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    error_class_for_status,
)
from ..._quota import SPENT_QUOTA_CODES

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "context_window_exceeded",
                            "exceed_context_size_error"})
_AUTH_CODES = frozenset({"invalid_api_key", "invalid_authentication", "unauthorized", "missing_api_key"})
_QUOTA_CODES = SPENT_QUOTA_CODES
_NOT_FOUND_CODES = frozenset({"model_not_found", "deploymentnotfound", "not_found", "not_found_error"})
#: ``invalid_prompt``: a reasoning model's safety check flagged the prompt ("Invalid prompt: your
#: prompt was flagged as potentially violating our usage policy"), a policy refusal, not a malformed request
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "responsibleaipolicyviolation",
                           "moderation_blocked", "content_policy", "invalid_prompt"})
_RATE_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "tokens", "requests"})
_SERVER_CODES = frozenset({"server_error", "internal_error", "overloaded", "service_unavailable"})
_CONTEXT_PHRASES = ("context length", "context window", "maximum context", "too many tokens", "prompt is too long",
                    "context size")


@dataclass(slots=True)
class ErrorInfo:
    """The fields of one OpenAI-style error object, whatever shape it came in."""

    message: str | None
    code: str | None
    type: str | None
    status: int | None  # a status carried in the body (OpenRouter ``code``, Groq ``status_code``)
    inner_code: str | None = None  # Azure ``innererror.code``
    param: str | None = None  # the request field at fault (``temperature``, ``messages``), when named

    @property
    def codes(self) -> set[str]:
        return {c.lower() for c in (self.code, self.type, self.inner_code) if c}


def error_info(payload: Any) -> ErrorInfo:
    """Read message/code/type from a decoded error body (``{"error": {...}}`` or flat)."""
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]
    if not isinstance(payload, dict):
        return ErrorInfo(str(payload)[:500] if payload else None, None, None, None)
    err = payload.get("error", payload)
    if isinstance(err, str):
        return ErrorInfo(err, None, None, None)
    if not isinstance(err, dict):
        return ErrorInfo(str(err)[:500], None, None, None)
    message = err.get("message") or payload.get("message") or payload.get("detail")
    if not isinstance(message, str) and message is not None:
        message = json.dumps(message)[:500]
    raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
    if isinstance(raw, str) and raw and raw not in (message or ""):
        message = f"{message}: {raw}" if message else raw
    code, status = err.get("code"), err.get("status_code")
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        status = status or int(code)
        code = None
    inner = err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    param = err.get("param")
    return ErrorInfo(
        message,
        str(code) if code else None,
        str(err.get("type")) if err.get("type") else None,
        int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
        str(inner_code) if inner_code else None,
        param[:200] if isinstance(param, str) and param else None,
    )


def classify(status: int, info: ErrorInfo) -> type[ProviderError]:
    """The error class for an HTTP status plus the provider's code fields."""
    codes = info.codes
    if codes & _CONTEXT_CODES:
        return ContextWindowExceededError
    if codes & _FILTER_CODES:
        return ContentFilterError
    if codes & _QUOTA_CODES or status == 402:
        return QuotaExceededError
    if codes & _AUTH_CODES:
        return AuthenticationError
    if codes & _NOT_FOUND_CODES:
        return NotFoundError
    if codes & _RATE_CODES:
        return RateLimitError
    if codes & _SERVER_CODES and status >= 500:
        return error_class_for_status(status)  # a 503 "server_error" is OpenAI's overloaded: OverloadedError
    if status in (400, 413) and info.message and any(p in info.message.lower() for p in _CONTEXT_PHRASES):
        return ContextWindowExceededError
    return error_class_for_status(status)


def is_quota_exhausted(status: int, info: ErrorInfo) -> bool:
    return bool(info.codes & _QUOTA_CODES) or status == 402


def hint_for(cls: type[ProviderError], key_env: tuple[str, ...]) -> str | None:
    """What the user should do next, appended to the provider's message."""
    if cls is AuthenticationError and key_env:
        # the shell's way first (the CLI and the server show this too), then Python's
        return f"check the API key in {key_env[0]} (calling from Python: the api_key= passed)"
    if cls is ContextWindowExceededError:
        return "shorten the conversation or pick a model with a larger context window"
    return None
