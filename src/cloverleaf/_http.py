"""The two values that cross the I/O seam: what an adapter wants sent, and what came back.

Adapters build an :class:`HttpRequest` and parse an :class:`HttpResponse`; only
``cloverleaf.transport`` turns one into the other. Keeping these plain (no httpx types)
is what lets every adapter be tested by feeding it recorded bytes, with no server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _jsoncodec as jsoncodec

#: Header names whose values are secrets: redacted in --dry-run output, traces and errors.
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization", "cookie",
     "x-amz-security-token", "ocp-apim-subscription-key"}
)


@dataclass(slots=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    #: True when the response is an incremental stream to feed to a decoder.
    stream: bool = False
    #: Per-request timeout override in seconds (None: the transport's default).
    timeout: float | None = None
    #: At most this many seconds, retries included, to the response head (None: no such cap):
    #: what is left of a gateway call's deadline. Unlike ``timeout`` it never bounds the body,
    #: so a stream whose head came in time runs on ``idle`` between its pieces.
    head_timeout: float | None = None
    #: A local-only call's check of the address its connection reached, ``(ip, where)``,
    #: raising :class:`~cloverleaf.PrivacyViolation` (``PrivacyGuard.check_peer``): the
    #: transports run it once connected and before writing any byte. None: no check.
    peer_check: Callable[[str, str], None] | None = None

    def __repr__(self) -> str:  # headers redacted, body summarised: a repr must never leak a key
        size = len(self.body) if self.body is not None else 0
        return f"HttpRequest({self.method} {self.url}, headers={self.redacted_headers()!r}, {size} bytes)"

    def json(self) -> Any:
        """The body decoded as JSON (tests and --dry-run use this)."""
        return jsoncodec.loads(self.body) if self.body else None

    def redacted_headers(self) -> dict[str, str]:
        return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()}


@dataclass(slots=True)
class HttpResponse:
    status: int
    #: Lower-cased header names.
    headers: dict[str, str]
    body: bytes
    url: str = ""

    def json(self) -> Any:
        """The upstream's body as JSON, a lone surrogate in it as U+FFFD (``loads_upstream``)."""
        return jsoncodec.loads_upstream(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def is_success(status: int) -> bool:
    """A 2xx: the only status whose body is the answer. Any other is an error, a 3xx too:
    redirects are never followed (the key would go wherever they point), so one is reported."""
    return 200 <= status < 300


def json_body(payload: dict[str, Any]) -> bytes:
    """Serialise a request body once, compactly (no spaces: fewer bytes on the wire)."""
    return jsoncodec.dumps(payload)


#: Response headers kept on ``ChatResponse.metadata.headers``: useful, never secret.
KEPT_RESPONSE_HEADERS = (
    "x-request-id", "request-id", "x-amzn-requestid", "apim-request-id", "openai-processing-ms",
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-tokens-remaining",
    "retry-after", "openai-model", "x-groq-id",
)


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in KEPT_RESPONSE_HEADERS if k in headers}


def request_id(headers: dict[str, str]) -> str | None:
    for name in ("x-request-id", "request-id", "x-amzn-requestid", "apim-request-id", "x-groq-id"):
        if name in headers:
            return headers[name]
    return None


def should_retry_hint(headers: dict[str, str]) -> bool | None:
    """The upstream's own ``x-should-retry`` (OpenAI, Anthropic): True/False when it says, else
    None. The SDK's transport and the gateway's fallback loop both follow it."""
    hint = headers.get("x-should-retry")
    return True if hint == "true" else False if hint == "false" else None


#: A Retry-After beyond this is no hint at all (``inf``, ``1e999``, a date years ahead): nobody
#: waits that long, and such a number breaks whatever does arithmetic with it.
MAX_RETRY_AFTER_HINT_SECONDS = 86_400.0


def sane_retry_after(seconds: float | None) -> float | None:
    """``seconds`` when it is a usable wait (finite, at most a day; negative counts as now),
    else None: no hint."""
    if seconds is None or not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER_HINT_SECONDS:
        return None
    return max(0.0, seconds)


def parse_retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (OpenAI), ``retry-after`` seconds or HTTP date.
    A value that is not a usable wait (non-finite, beyond a day) is no hint: None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return sane_retry_after(float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return sane_retry_after(float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare (an HTTP date): not imported up front

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return sane_retry_after(when.timestamp() - time.time())
