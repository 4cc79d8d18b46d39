"""Bedrock errors, mapped in one place: by exception type first, then by HTTP status.

Bedrock names every failure with an exception type: the ``x-amzn-errortype`` response header
(``ValidationException:http://internal.amazon.com/...``), ``__type`` in some JSON bodies, or
``:exception-type`` on an event-stream frame (lower camel case there: ``throttlingException``).
The body is ``{"message": ...}`` (``{"Message": ...}`` from the API-key front end).
Bedrock has no separate type for an over-long prompt: it is a ValidationException whose message
says so, the one case where the message text decides (``ContextWindowExceededError``).
"""

from __future__ import annotations

import re

from ..._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    error_class_for_status,
)
from ..._http import HttpResponse
from ...streams.eventstream import EventMessage

#: Bedrock exception type -> our error class.
ERROR_TYPES: dict[str, type[ProviderError]] = {
    "ValidationException": InvalidRequestError,
    "AccessDeniedException": PermissionDeniedError,
    "UnrecognizedClientException": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "IncompleteSignatureException": AuthenticationError,
    "MissingAuthenticationTokenException": AuthenticationError,
    "ResourceNotFoundException": NotFoundError,
    "ThrottlingException": RateLimitError,
    "ServiceQuotaExceededException": RateLimitError,
    "ModelNotReadyException": ServerError,
    "ServiceUnavailableException": OverloadedError,  # its 503: busy, try again later
    "InternalServerException": ServerError,
    "ModelTimeoutException": ServerError,
    "ModelErrorException": ServerError,
    "ModelStreamErrorException": ServerError,
}
#: The exception types that say the signing keys are expired or unknown to AWS.
STALE_KEY_ERRORS = frozenset({"ExpiredTokenException", "UnrecognizedClientException"})
#: How a ValidationException says the prompt does not fit the model, in each vendor's words:
#: Claude's "prompt is too long" and "input length and `max_tokens` exceed context limit", Bedrock's
#: "Input is too long for requested model" and "too many total text bytes", Nova's "Input Tokens
#: Exceeded: Number of input tokens exceeds maximum length", Llama's and Mistral's "maximum context
#: length" (the same list AWS's Strands agents SDK reads as a context-window overflow).
_TOO_LONG = re.compile(r"too long|too many (input |total text )?(tokens|bytes)|context (length|window|limit)"
                       r"|maximum context|input tokens exceed", re.I)


def error_class(etype: str, status: int, message: str) -> type[ProviderError]:
    """The class for exception type ``etype`` (or, if unknown, HTTP ``status``; 0 = none)."""
    cls = ERROR_TYPES.get(etype) or (error_class_for_status(status) if status else ServerError)
    if cls is InvalidRequestError and _TOO_LONG.search(message):
        return ContextWindowExceededError
    return cls


#: Bedrock's own words for three failures whose fix is not in the message, and what to add.
_ON_DEMAND = re.compile(r"on-demand throughput", re.I)
_CLOCK = re.compile(r"Signature (expired|not yet current)", re.I)
_NO_MODEL_ACCESS = re.compile(r"(don.t|do not) have access to the model", re.I)


def explained(etype: str, message: str, model: str | None) -> str:
    """``message`` with what to do added, where Bedrock's words leave the caller guessing: a
    model that must be called through a cross-region inference profile (which id to write), a
    model the account has not been given access to (where to enable it), and a signature refused
    for the clock (SigV4 allows five minutes of skew: the machine's clock, not the keys, is wrong)."""
    if etype == "ValidationException" and _ON_DEMAND.search(message):
        example = f"us.{model}" if model and not model.startswith("arn:") and "." in model else "us.<model id>"
        return (f"{message} (write the model as its cross-region inference profile id, such as bedrock/{example}; "
                "eu., apac. or global. for other geographies)")
    if etype == "AccessDeniedException" and _NO_MODEL_ACCESS.search(message):
        return (f"{message} (enable access to this model for the account in this region in the Bedrock console's "
                "Model access page, and check the IAM policy allows bedrock:InvokeModel on it)")
    if etype == "InvalidSignatureException" and _CLOCK.search(message):
        return (f"{message} (this machine's clock is more than 5 minutes off AWS's: sync it, e.g. with NTP; "
                "the credentials are not at fault)")
    return message


def error_fields(resp: HttpResponse) -> tuple[str, str]:
    """(message, exception type) of an error response; the type is "" when Bedrock gave none."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    message = data.get("message") or data.get("Message") or resp.text.strip()[:500] or f"HTTP {resp.status}"
    raw_type = resp.header("x-amzn-errortype") or str(data.get("__type") or "")
    return str(message), raw_type.split(":")[0].rsplit("#")[-1]


def stream_error(msg: EventMessage, *, provider: str, model: str | None) -> ProviderError:
    """The error an event-stream ``exception`` (or ``error``) frame reports."""
    name = str(msg.headers.get(":exception-type") or msg.headers.get(":error-code") or "")
    etype = name[:1].upper() + name[1:]
    try:
        data = msg.json()
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    message = explained(etype, str(data.get("message") or msg.headers.get(":error-message") or etype
                                   or "stream error"), model)
    status = data.get("originalStatusCode")  # modelStreamErrorException carries the model's own status
    cls = error_class(etype, status if isinstance(status, int) else 0, message)
    return cls(message, provider=provider, model=model, code=etype or None,
               body=msg.payload.decode("utf-8", "replace"))
