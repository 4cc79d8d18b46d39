"""One error tree for every provider, mapped in one place per adapter.

::

    CloverleafError
    ├── ConfigError                    bad or missing configuration (unknown provider/model, missing key)
    │   └── WorkflowError              a workflow file is invalid (every problem listed); nothing was sent
    ├── AttachmentError                an attachment was refused (SSRF rule, size, type) — nothing was sent
    ├── UnsupportedCapability          the provider cannot do this; names providers that can. Never retried
    │                                  and never rerouted.
    ├── BudgetExceeded                 a route/project/key budget would be overspent
    ├── PrivacyViolation               the privacy policy (local-only) refuses the target; nothing was sent
    ├── RateLimitExceeded              a local (gateway) rpm/tpm bucket is empty
    ├── CircuitOpen                    a target's breaker is open; rejected with no network call
    ├── AllTargetsFailed               every target of a route failed; ``attempts`` lists each
    ├── StreamInterrupted              a stream failed after it had produced output (no replay)
    ├── StructuredOutputError          the output is not valid for the requested schema (keeps .response)
    ├── StateUnavailable               the shared state (Redis) is unreachable; calls are refused, not unlimited
    ├── WorkflowFailed                 a workflow step failed; names the step and the run to resume
    ├── TransportError                 no HTTP response at all (``retryable`` is a class attribute)
    │   ├── ConnectError               refused / DNS; names the URL and what to start
    │   │   └── TLSError               the TLS handshake failed (not retried: it fails the same way)
    │   ├── RequestTimeout             a timeout (``TimeoutError`` is a compatible alias, see below)
    │   │   ├── ConnectTimeout         no connection within ``connect_timeout``
    │   │   └── ReadTimeout            no response head within ``first_byte_timeout``, no bytes within
    │   │                              ``idle_timeout``, or the call's ``timeout`` deadline passed
    │   ├── RemoteProtocolError        the upstream broke HTTP: dropped mid-answer, invalid response
    │   ├── InvalidURL                 the URL cannot be sent (scheme, port); never retried
    │   └── LocalProtocolError         the request cannot be sent as written (a header with a line
    │                                  break, a method the backend does not speak); never retried
    └── ProviderError                  the provider answered with an error
        ├── AuthenticationError        401/403, invalid key
        ├── PermissionDeniedError      403 that is not about the key
        ├── RateLimitError             429 (``retry_after`` seconds when the provider said)
        │   └── QuotaExceededError     billing quota or credits spent; not retryable
        ├── ContextWindowExceededError prompt too long for the model
        ├── ContentFilterError         blocked by the provider's safety filter
        ├── InvalidRequestError        400/422 — the request is wrong; never retried
        │   └── RequestTooLargeError   413: the body is over the provider's byte limit (attachments)
        ├── NotFoundError              404, usually an unknown model
        ├── RedirectError              3xx: the API is elsewhere (``Location``); not followed, not retried
        ├── ServerError                5xx (``OverloadedError`` for 503 and Anthropic's 529)
        │   ├── OverloadedError        busy: try later (``retry_after`` seconds when the provider said)
        │   └── InsufficientMemoryError  the model does not fit in the server's memory (Ollama); not
        │                              retried (another target may serve it)
        └── MalformedResponseError     2xx that could not be parsed (garbage, truncated stream)
            └── GenerationFailedError  2xx whose answer the provider says failed (finish_reason "error":
                │                      Gemini MALFORMED_FUNCTION_CALL, Bedrock malformed_tool_use)
                └── GenerationInterruptedError  the provider cut the answer short for want of
                                       capacity (DeepSeek insufficient_system_resource)

Adapters map by HTTP status and the provider's error ``code``/``type`` fields, never by
guessing from message text alone. ``retryable`` says whether the same call may succeed
later; the transport and the gateway both read it. It is a class attribute: an error's kind
decides it, never the place that raised it.

``RequestTimeout`` was called ``TimeoutError``; the old name stays importable
(``cloverleaf.TimeoutError`` and ``except cloverleaf.TimeoutError`` keep working) but is not
in ``cloverleaf.__all__``, so ``from cloverleaf import *`` no longer shadows the builtin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The text redaction lives in ._secret_text; these names are imported from here across the package.
from ._secret_text import REDACTED as REDACTED
from ._secret_text import redact as redact
from ._secret_text import url_secrets as url_secrets


class CloverleafError(Exception):
    """Base of every error cloverleaf raises."""

    retryable: bool = False
    #: Milliseconds the failed call spent waiting on providers (every attempt's time), set by
    #: the gateway when a call ends with this error: a server tells its own overhead apart
    #: from the upstream's with it (``x-cloverleaf-overhead-ms``). None when nothing was sent.
    upstream_ms: float | None = None
    #: For an error that broke a stream after its response began: what the call had used so far
    #: (a :class:`~cloverleaf._types.Usage` with ``reported`` False: the counts the upstream gave,
    #: the rest estimated from the text sent and received), set by the engine, so a gateway books
    #: no less than that. None otherwise.
    stream_usage: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as what it is (its class, ``args`` and attributes), not as a call to
        ``__init__``: most errors here take more than the message, and the default pickling
        (``cls(*args)``) failed to load them or wrapped the message again, so an error could not
        cross a process boundary (multiprocessing, ProcessPoolExecutor, celery). Covers every
        subclass, present and future."""
        return (_restore, (type(self), self.args), self.__dict__ or None)


def _restore(cls: type[CloverleafError], args: tuple[Any, ...]) -> CloverleafError:
    """An error unpickled: made without its ``__init__`` (its attributes follow as its state)."""
    error = cls.__new__(cls, *args)
    error.args = args
    return error


class ConfigError(CloverleafError):
    pass


class WorkflowError(ConfigError):
    """A workflow file or its inputs are invalid; ``problems`` lists each one (``where: what``)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n  ".join(self.problems)
        super().__init__(f"workflow {source} is invalid ({len(self.problems)} problem"
                         f"{'s' if len(self.problems) != 1 else ''}):\n  {lines}")


class WorkflowFailed(CloverleafError):
    """A step of a workflow run failed. ``step`` names it, ``run_id`` is what to resume
    (``cloverleaf run FILE --resume RUN_ID``, or ``run_workflow(..., resume=RUN_ID)``), ``cause``
    is the step's error."""

    def __init__(self, message: str, *, run_id: str, step: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step
        self.cause = cause


#: How much of a client's value an error quotes (a media type or format holds a few dozen characters).
QUOTE_CHARS = 60


def clipped(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` quoted for an error message: its repr when short, else its first ``limit``
    characters and its length. A client's attachment field can hold a payload (a data URL missing
    its comma puts the base64 in the media type): quoted whole it made a 600 KB 400 and landed in
    the trace store."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text)} characters)"


class AttachmentError(CloverleafError):
    """An attachment was refused. ``rule`` names the check that failed (``private-address``,
    ``too-large``, ``scheme``, ``timeout``, ...); ``detail`` says which address or limit."""

    def __init__(self, message: str, *, rule: str = "invalid", detail: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.detail = detail if detail is None or len(detail) <= QUOTE_CHARS * 2 else clipped(detail)


class UnsupportedCapability(CloverleafError):
    """The provider cannot do ``operation``; ``alternatives`` lists providers that can."""

    def __init__(self, provider: str, operation: str, alternatives: list[str] | None = None, hint: str | None = None) -> None:
        self.provider = provider
        self.operation = operation
        self.alternatives = list(alternatives or [])
        msg = f"provider {provider!r} does not support {operation}"
        if self.alternatives:
            msg += f"; providers that do: {', '.join(self.alternatives)}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)


class BudgetExceeded(CloverleafError):
    """A budget would be overspent; or, with ``unpriced``, it could not be kept: those targets
    have no price, so nothing bounds what a call to them spends (a budget fails closed). With
    ``unsized``, the same for a request with an attachment whose size is unknown before the call
    (a document, audio or video by URL), sent to targets whose context window is unknown. With
    ``images`` as well, the call generates images, whose prices are the image table's alone."""

    def __init__(self, scope: str, limit: float, spent: float, requested: float = 0.0, *,
                 reserved: float = 0.0, unpriced: tuple[str, ...] = (), unsized: tuple[str, ...] = (),
                 images: bool = False) -> None:
        """``requested``: what this call would reserve (the most it can cost); ``reserved``: what
        other calls in flight hold already."""
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.requested = requested
        self.reserved = reserved
        self.unpriced = unpriced
        self.unsized = unsized
        if unsized:
            message = (f"budget {scope!r} applies to this call, but it sends a document, audio or video by URL, "
                       "whose size is unknown until it is read, to "
                       f"{', '.join(repr(t) for t in unsized)}, whose context window is unknown, so nothing bounds "
                       "what it would spend: send the attachment's bytes (inline, or a local file) so its size "
                       "counts, or give the model its context_window (a [[models]] entry), or call it without "
                       "this budget")
        elif unpriced and images:
            message = (f"budget {scope!r} applies to this call, but {', '.join(repr(t) for t in unpriced)} "
                       f"{'has' if len(unpriced) == 1 else 'have'} no image price, so what the call would spend "
                       "cannot be counted: use an image model the built-in image prices list (gpt-image-1, "
                       "gpt-image-1-mini, gpt-image-1.5, dall-e-2, dall-e-3, Imagen 3 and 4, Nova Canvas, Titan "
                       "Image, Stability on Bedrock) or call it without this budget")
        elif unpriced:
            message = (f"budget {scope!r} applies to this call, but {', '.join(repr(t) for t in unpriced)} "
                       f"{'has' if len(unpriced) == 1 else 'have'} no price, so what the call would spend cannot "
                       "be counted: give the model its price (a [[models]] entry's input_cost_per_1k and "
                       "output_cost_per_1k) or call it without this budget")
        else:
            held, wait = "", "wait for it to reset"
            if reserved > 0:
                held, wait = f" + ${reserved:.6f} reserved by calls in flight", "wait for those calls to end or for it to reset"
            message = (f"budget {scope!r} exhausted: spent ${spent:.6f}{held} of ${limit:.6f}, and this call "
                       f"needs up to ${requested:.6f}; raise the budget or {wait}")
        super().__init__(message)


class PrivacyViolation(CloverleafError):
    """The privacy policy refuses where this call would go, before any byte leaves.

    ``policy`` is the policy in force (``"local-only"``), ``rule`` says which setting imposed
    it (``"[privacy] default"``, ``"key 'k_1'"``, ``"data class 'confidential'"``...),
    ``targets`` lists every refused target with the reason, as ``(target, reason)``.
    """

    def __init__(self, policy: str, rule: str, targets: list[tuple[str, str]], *, route: str | None = None,
                 where: str | None = None) -> None:
        self.policy = policy
        self.rule = rule
        self.targets = list(targets)
        self.route = route
        self.where = where
        refused = "; ".join(f"{t} ({why})" for t, why in self.targets) or "no target"
        verdict = f"every target of {route!r} is refused" if route and len(self.targets) > 1 else "refused"
        super().__init__(
            f"{where + ': ' if where else ''}privacy policy {policy!r} (set by {rule}) {verdict}: {refused}. Under {policy!r} a call may only "
            "reach a local provider (ollama, lmstudio, vllm, localai, local/simple embeddings, fake) or a "
            "[[models]] entry with is_public = false, whose base_url is on this machine or your own network")


class RateLimitExceeded(CloverleafError):
    """A local rate limit (requests or tokens per minute) has no room; ``retry_after`` in seconds."""

    retryable = True

    def __init__(self, scope: str, kind: str, retry_after: float | None = None, *,
                 requested: float | None = None, limit: float | None = None, hint: str = "") -> None:
        """``requested`` and ``limit``: this call alone needs more than the whole limit, so no
        wait would let it through (not retryable; ``retry_after`` is None); ``hint``: what it
        counted, when that is not obvious from the request."""
        self.scope = scope
        self.kind = kind
        self.retry_after = retry_after
        self.never_fits = requested is not None
        if self.never_fits:
            self.retryable = False
            super().__init__(f"this request needs about {requested:,.0f} tokens, more than {scope!r} may use in "
                             f"any minute ({kind} {limit:,.0f}){hint}; no wait lets it through: shorten the "
                             "prompt, lower max_tokens, or raise the limit")
            return
        when = f"; retry in {retry_after:.2f}s" if retry_after is not None else ""
        super().__init__(f"rate limit {kind} for {scope!r} exhausted{when}")


class CircuitOpen(CloverleafError):
    retryable = True

    def __init__(self, target: str, retry_after: float | None = None) -> None:
        self.target = target
        self.retry_after = retry_after
        super().__init__(f"circuit open for {target!r} after repeated failures; not calling it"
                         + (f" for another {retry_after:.1f}s" if retry_after else ""))


@dataclass(slots=True)
class Attempt:
    """One try at one target, as reported by :class:`AllTargetsFailed` and traces."""

    target: str
    error: BaseException | None
    latency_ms: float
    status: int | None = None

    def describe(self) -> str:
        what = f"{type(self.error).__name__}: {self.error}" if self.error else "ok"
        return f"{self.target} ({self.latency_ms:.0f} ms): {what}"


class AllTargetsFailed(CloverleafError):
    def __init__(self, route: str, attempts: list[Attempt]) -> None:
        self.route = route
        self.attempts = attempts
        lines = "\n  ".join(a.describe() for a in attempts) or "(no target could be tried)"
        super().__init__(f"all targets of {route!r} failed:\n  {lines}")

    @property
    def last_error(self) -> BaseException | None:
        return self.attempts[-1].error if self.attempts else None


class StreamInterrupted(CloverleafError):
    """The stream broke after output reached the caller; it is not retried (no repeated text)."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.stream_usage = getattr(cause, "stream_usage", None)


class StructuredOutputError(CloverleafError):
    """The model's output is not valid JSON for the requested schema. ``response`` keeps
    the whole reply (text, usage, cost) so nothing is lost."""

    def __init__(self, message: str, *, response: Any = None) -> None:
        super().__init__(message)
        self.response = response


class StateUnavailable(CloverleafError):
    """The shared state backend (Redis) could not be reached: limits and breakers cannot be
    enforced, so the call is refused rather than let through unlimited."""

    retryable = True


class TransportError(CloverleafError):
    retryable = True

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """No connection: refused, unknown host, unreachable. Names the URL and, for a local
    server, what to start."""


class TLSError(ConnectError):
    """The TLS handshake failed (certificate, protocol). Trying again fails the same way."""

    retryable = False


class RequestTimeout(TransportError):
    """A timeout: the base of :class:`ConnectTimeout` and :class:`ReadTimeout`."""


class ConnectTimeout(RequestTimeout):
    """No connection within ``connect_timeout`` seconds."""


class ReadTimeout(RequestTimeout):
    """The upstream took the request and went quiet: no response head within
    ``first_byte_timeout``, no bytes within ``idle_timeout``, or the call's deadline passed.
    The transport does not send the same call to the same target again (that would double
    the wait); the gateway falls back to the next target, and a caller may try later."""


#: The old name of :class:`RequestTimeout`, kept so ``except cloverleaf.TimeoutError`` works.
TimeoutError = RequestTimeout


class RemoteProtocolError(TransportError):
    """The upstream broke HTTP: the connection dropped before or during the answer, or the
    response could not be parsed as HTTP/1.1."""


class InvalidURL(TransportError):
    """The URL cannot be sent: not ``http://``/``https://``, no host, a bad port."""

    retryable = False


class LocalProtocolError(TransportError):
    """The request cannot be sent as written: a header holding a line break or a character
    HTTP/1.1 cannot carry, or a method the chosen backend does not speak."""

    retryable = False


class ProviderError(CloverleafError):
    """The provider answered with an error. ``body`` is the (size-capped) response text."""

    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        body: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        param: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status if status is not None else self.default_status
        self.body = body[:4000] if body else body
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        #: the upstream's ``x-should-retry`` (None: it did not say): overrides ``retryable``
        #: for the gateway's same-target retry, as the SDK's transport follows it
        self.should_retry = should_retry
        #: The request field the provider names as at fault (OpenAI's ``param``: ``temperature``,
        #: ``messages``), None when it names none: a gateway passes it on to its client.
        self.param = param
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        where = self.provider or "provider"
        status = f" {self.status}" if self.status else ""
        code = f" [{self.code}]" if self.code else ""
        model = f" (model {self.model})" if self.model else ""
        return f"{where}{status}{code}{model}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
        }


class AuthenticationError(ProviderError):
    default_status = 401


class PermissionDeniedError(ProviderError):
    default_status = 403


class RateLimitError(ProviderError):
    default_status = 429
    retryable = True


class QuotaExceededError(RateLimitError):
    """The account's billing quota or credits are spent (OpenAI ``insufficient_quota``, a 402).
    A :class:`RateLimitError` so code catching rate limits sees it, but not retryable: waiting
    seconds does not refill a quota (the gateway may still fall back to another target)."""

    default_status = 429
    retryable = False


class ContextWindowExceededError(ProviderError):
    default_status = 400


class ContentFilterError(ProviderError):
    """The provider's content filter refused the prompt or cut the answer.

    ``innererror``: what the provider said tripped it, when it said (Azure OpenAI), in Azure's
    shape: ``{"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"violence":
    {"filtered": True, "severity": "high"}, ...}}`` (no ``code`` for a cut answer). Only each
    category's verdict is kept; None when the provider named none."""

    default_status = 400
    innererror: dict[str, Any] | None = None


class InvalidRequestError(ProviderError):
    default_status = 400


class RequestTooLargeError(InvalidRequestError):
    """413: the request body is over the provider's size limit (Anthropic ``request_too_large``),
    usually attachments; not the context window, which counts tokens. Sending it again fails the
    same way; a provider that takes larger bodies may not (the gateway may fall back)."""

    default_status = 413


class NotFoundError(ProviderError):
    default_status = 404


class RedirectError(ProviderError):
    """The upstream answered with a redirect (301, 302, 307, 308: an http->https move, a moved
    deployment). Never followed: the request carries the key, which must not go to wherever a
    ``Location`` points. Not retryable, as the same request is redirected again; the message
    names the status and the ``Location`` (credentials in it masked) and says to set base_url there."""


class ServerError(ProviderError):
    default_status = 500
    retryable = True


class OverloadedError(ServerError):
    """The provider is busy, not broken: a 503 (OpenAI's "overloaded, slow down", Bedrock's
    ServiceUnavailableException, Gemini's UNAVAILABLE) or Anthropic's 529, often with a
    Retry-After that ``retry_after`` keeps for the caller (the server passes it on)."""

    default_status = 529


class InsufficientMemoryError(ServerError):
    """The provider cannot load the model: it needs more memory than the machine has (Ollama's 500
    "model requires more system memory (12.5 GiB) than is available (4.0 GiB)"). Not retryable: the
    next try fails the same way, after making the server try to load the model again; a route falls
    back to its next target. Free memory, or pick a smaller model or quantisation."""

    retryable = False


class MalformedResponseError(ProviderError):
    """The provider said 2xx but sent something we cannot parse (or a stream that broke off)."""

    retryable = True


class GenerationFailedError(MalformedResponseError):
    """The provider said 2xx but that the generation itself failed: our ``finish_reason``
    ``"error"`` (Gemini's ``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``,
    ``TOO_MANY_TOOL_CALLS``, and ``OTHER``/``NO_IMAGE`` with nothing said; Bedrock's ``malformed_tool_use``, ``malformed_model_output``). Raised
    rather than returned, because the answer is empty or broken and reads like a normal one
    otherwise; the message carries the provider's own words (Gemini's ``finishMessage``).
    Retryable: the model samples again, and the next answer is usually well formed. The provider
    bills such an answer, so the gateway books its usage and cost and does not try again itself
    (another attempt would bill again beyond what the call reserved): a server client gets a 502,
    which the official SDKs retry, each time as a call with its own reservation."""

    #: What did arrive (a ChatResponse, usually empty, with its usage and cost), for a caller
    #: that wants to look.
    response: Any = None


class GenerationInterruptedError(GenerationFailedError):
    """The provider stopped the answer part-way for want of capacity, not because of anything
    the model wrote: DeepSeek's ``finish_reason`` ``insufficient_system_resource`` ("the
    request is interrupted due to insufficient resource of the inference system"). What came
    reads like a complete answer, so it is raised. Billed as a :class:`GenerationFailedError`
    is (the provider reports, and charges, the tokens it produced: ``response`` keeps them with
    their cost, and the gateway books them); unlike one, it says the target is short of
    capacity, so it counts against the target's circuit breaker, which lets the next calls go
    to a route's other targets while the provider recovers."""


def billed_answer(exc: BaseException) -> Any:
    """The answer the provider billed behind ``exc`` — its ``usage``, ``cost`` and ``provider`` —
    when ``exc`` is (or was caused by) a :class:`GenerationFailedError`; else None. Everything
    that books a failed call's spend (the gateway's ledger, the server's metrics) asks here, so
    they agree on what was billed."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, GenerationFailedError):
            return seen.response
        seen = seen.__cause__ or seen.__context__
    return None


def error_class_for_status(status: int) -> type[ProviderError]:
    """The default mapping from an HTTP status; adapters refine it with error codes."""
    if status in (401,):
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 413:
        return RequestTooLargeError
    if status == 429:
        return RateLimitError
    if status in (503, 529):
        return OverloadedError
    if status >= 500:
        return ServerError
    if status == 408:
        return ServerError
    return InvalidRequestError


def scrub(error: BaseException, secrets: Iterable[str] = ()) -> None:
    """Redact secrets from an error in place, so every later reader sees clean text
    (:func:`._secret_text.redact` on its message, body and first argument)."""
    secrets = tuple(secrets)
    if isinstance(error, ProviderError):
        error.message = redact(error.message, secrets) or ""
        error.body = redact(error.body, secrets)
    if error.args and isinstance(error.args[0], str):
        error.args = (redact(error.args[0], secrets), *error.args[1:])
