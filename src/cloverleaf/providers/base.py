"""The adapter seam: a provider is a pair of pure translations, no I/O.

An adapter turns a provider-neutral request into an :class:`~cloverleaf._http.HttpRequest`
and a provider's :class:`~cloverleaf._http.HttpResponse` (or streamed bytes) back into
provider-neutral values. It never opens a socket, so sync and async callers share every
line of it, and it is tested by feeding it recorded bytes. The transport does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .._capabilities import Capabilities
from .._errors import (
    InvalidRequestError,
    MalformedResponseError,
    ProviderError,
    UnsupportedCapability,
    error_class_for_status,
)
from .._http import HttpRequest, HttpResponse, request_id, should_retry_hint
from .._ratelimit_reset import throttle_wait
from .._secret_repr import masked_repr
from .._types import Attachment

if TYPE_CHECKING:
    from .._types import (
        ChatRequest,
        ChatResponse,
        EmbeddingRequest,
        EmbeddingResponse,
        ImageRequest,
        ImageResponse,
        StreamEvent,
    )
    from .bearer import BearerSource
    from .spec import ProviderSpec


@dataclass(slots=True)
class ProviderConfig:
    """Everything needed to reach one provider: resolved once, reused for every call.

    ``name`` is the registry row (``groq``), ``kind`` the adapter (``openai``). Its repr never
    shows a secret (``api_key`` only as set or not; see :mod:`cloverleaf._secret_repr`), so a
    config never leaks one into a log or traceback.
    """

    name: str
    kind: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    #: Name of the environment variable the key came from (for error messages only).
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_retries: int | None = None
    #: The one operation ("chat", "embeddings", "images") a base_url given as a full endpoint URL
    #: (``.../v1/chat/completions``) serves; None for a root URL, which serves every operation.
    operation: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)


class StreamDecoder(Protocol):
    """Incremental decoder: bytes in (split anywhere), events out. No I/O.

    ``close()`` is called at end of input; it returns any final events and raises
    :class:`~cloverleaf.MalformedResponseError` if the stream ended mid-message.
    Errors sent inside the stream (Anthropic ``event: error``) raise a ProviderError from ``feed``.
    """

    def feed(self, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class Adapter:
    """Base class for provider adapters. Subclasses implement the operations they support;
    the defaults raise :class:`UnsupportedCapability` naming providers that can."""

    #: Adapter kind, the key in the registry's kind table.
    kind: ClassVar[str] = ""
    #: Capabilities of the native API; a registry row may narrow or widen them.
    default_capabilities: ClassVar[Capabilities] = Capabilities()
    #: The providers that support an operation, for error messages. The registry (which holds
    #: the rows, and imports this module) installs its lookup when it is imported; adapters are
    #: only built from registry rows, so it is always in place by then.
    supporting: ClassVar[Callable[[str], list[str]]] = staticmethod(lambda operation: [])
    #: The ``additional_config``/``extra`` keys this adapter reads; any other is a ConfigError at load.
    config_keys: ClassVar[frozenset[str]] = frozenset()
    #: Those of them that take only true or false (``store = "false"`` is true to Python).
    config_booleans: ClassVar[frozenset[str]] = frozenset()
    #: Operation -> the path this adapter appends to base_url for it. A base_url that already ends
    #: in one of them is a full endpoint URL, used as given for that operation only.
    operation_paths: ClassVar[dict[str, str]] = {}
    #: Trailing path segments users copy from the vendor's docs that the adapter appends itself
    #: (Gemini's ``.../v1beta/models``): dropped from a base_url.
    redundant_suffixes: ClassVar[tuple[str, ...]] = ()
    #: The API has a document block of its own (title, context, citations): the adapter encodes
    #: :class:`~cloverleaf.Document` parts itself. Otherwise the engine hands it their plain
    #: parts (``cloverleaf._documents``), and it never sees one.
    native_documents: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.name: str = spec.name
        self.capabilities: Capabilities = spec.capabilities or self.default_capabilities

    # -- chat ---------------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        raise self.unsupported("chat")

    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        raise self.unsupported("chat")

    def stream_decoder(self, req: ChatRequest) -> StreamDecoder:
        raise self.unsupported("streaming")

    # -- embeddings and images -----------------------------------------------------------
    # An operation the provider serves one item per HTTP call (Bedrock Titan embeddings,
    # Stability images) returns a list of requests from build_* and receives the list of
    # responses, in the same order, in parse_*.
    def takes_token_ids(self, cfg: ProviderConfig) -> bool:
        """Whether this provider's embeddings API takes token-id arrays (``EmbeddingRequest.token_ids``)."""
        return False

    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        raise self.unsupported("embeddings")

    def parse_embed(self, resp: HttpResponse | list[HttpResponse], req: EmbeddingRequest) -> EmbeddingResponse:
        raise self.unsupported("embeddings")

    def build_image(self, req: ImageRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        raise self.unsupported("image generation")

    def parse_image(self, resp: HttpResponse | list[HttpResponse], req: ImageRequest) -> ImageResponse:
        raise self.unsupported("image generation")

    # -- configuration -------------------------------------------------------------------
    def split_endpoint(self, base_url: str) -> tuple[str, str | None]:
        """(the root this adapter appends paths to, the operation a full endpoint URL pins or None).
        A query (Azure-style ``?api-version=...``) is kept on the root, where :func:`base_url_join`
        puts it back after the path."""
        url, query = split_query(base_url)
        root = url.rstrip("/")
        for suffix in self.redundant_suffixes:
            if root.endswith(suffix):
                root = root[: -len(suffix)]
        for operation, path in self.operation_paths.items():
            if root.endswith(path):
                return with_query(root[: -len(path)], query), operation
        return (with_query(root, query) if root != url.rstrip("/") else base_url), None

    def price_keys(self, model: str) -> list[str]:
        """Keys of the built-in price table this model may be listed under, most specific first.
        Adapters whose model ids carry a version or tag the price table omits add the stripped id."""
        return [f"{self.name}/{model}"]

    @property
    def reasoning_source(self) -> str:
        """The provider the reasoning this adapter produces carries (``Reasoning.provider``), by
        which it is later sent back only where it verifies (``_common.replayable_reasoning``):
        the row's name, except where a row serves two model families (Claude on Vertex AI)."""
        return self.name

    def underlying_model(self, model: str, cfg: ProviderConfig) -> str:
        """The model ``model`` runs, whose price and request rules apply: ``model`` itself, except
        where an id names something the user made (an Azure deployment), whose config can say."""
        return model

    def for_model(self, model: str) -> Adapter:
        """The adapter that speaks to ``model`` on this row: this one, except where one row serves
        two wire formats (Vertex AI's ``vertex`` row: Gemini, and Claude through the Messages API).
        The resolver asks once per target, so capabilities, prices and errors are that model's."""
        return self

    def price_factor(self, model: str, cfg: ProviderConfig) -> float:
        """How this config's endpoint bills ``model`` against the built-in price table's row:
        1.0, except where an endpoint carries a premium (Claude on a regional Vertex AI endpoint:
        1.1). A factor, not a price, because the price table imports the registry."""
        return 1.0

    def with_client_betas(self, cfg: ProviderConfig, betas: tuple[str, ...]) -> ProviderConfig:
        """``cfg`` for one call whose caller asked for beta features by name (a server's client
        sending ``anthropic-beta``). Only an API that has such features takes them (Anthropic's
        adapter); to every other one they mean nothing, and ``cfg`` is returned unchanged."""
        return cfg

    def takes_context_management(self, model: str, cfg: ProviderConfig | None = None) -> bool:
        """Does this API apply Anthropic's context edits (``ChatRequest.context_management``) for
        ``model`` (under ``cfg``, which can say what family a model id that names none is)? Those that do send the field on; for the rest the engine drops or refuses the
        edits first (:mod:`cloverleaf._context_edits`), so an adapter never sees one it cannot send."""
        return False

    def prepare_config(self, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """Complete a config from the environment once, when a target is resolved (e.g.
        Bedrock's region), so that build_* stay pure functions of (request, config)."""
        return cfg

    def bearer_source(self, cfg: ProviderConfig) -> BearerSource | None:
        """Where this config's calls get the short-lived bearer token they must carry (Vertex AI's
        Google credentials), or None when the config holds its own key. The engine asks it for a
        token through its transport and sets ``Authorization`` on what ``build_*`` returned, so
        an adapter that needs one still does no I/O (:mod:`.bearer`)."""
        return None

    # -- errors ------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        """Map an error response. Subclasses read the provider's code/type fields; this
        default maps by status and takes a ``message`` from common JSON shapes."""
        message, code = generic_error_fields(resp)
        cls = error_class_for_status(resp.status)
        return self.make_error(cls, message or f"HTTP {resp.status}", resp, model=model, code=code)

    def connect_hint(self, cfg: ProviderConfig) -> str | None:
        """What the user should start when the connection is refused (local servers)."""
        return self.spec.start_hint

    def resend_after(self, refusal: HttpResponse, req: ChatRequest, cfg: ProviderConfig) -> bool:
        """Whether the engine should build ``req`` anew and send it once more after the upstream
        refused it with ``refusal`` (an error status, before any answer): True only when this
        adapter learned from that refusal what its next build leaves out (Ollama: ``think``,
        for a model without thinking). Never for any other error, which the caller gets."""
        return False

    # -- helpers for subclasses ----------------------------------------------------------
    def require_inputs(self, req: ChatRequest) -> None:
        """Refuse attachment kinds this provider cannot take (the engine checks first; this
        keeps an adapter that shares an encoder with a more capable one honest on its own)."""
        for msg in req.messages:
            for part in msg.parts:
                if isinstance(part, Attachment):
                    caps = self.capabilities
                    allowed = {"image": caps.image_input, "pdf": caps.pdf_input, "audio": caps.audio_input}
                    if not allowed.get(part.type or "image", False):
                        raise self.unsupported(f"{part.type} input")

    def unsupported(self, operation: str) -> UnsupportedCapability:
        return UnsupportedCapability(self.name, operation, type(self).supporting(operation))

    def make_error(
        self,
        cls: type[ProviderError],
        message: str,
        resp: HttpResponse,
        *,
        model: str | None = None,
        code: str | None = None,
    ) -> ProviderError:
        return cls(
            message,
            provider=self.name,
            model=model,
            status=resp.status,
            body=resp.text,
            code=code,
            request_id=request_id(resp.headers),
            retry_after=throttle_wait(resp.status, resp.headers),
            should_retry=should_retry_hint(resp.headers),
        )

    def malformed(self, what: str, resp: HttpResponse | None = None, model: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(
            f"could not parse the provider's response: {what}",
            provider=self.name,
            model=model,
            status=resp.status if resp else None,
            body=resp.text if resp else None,
        )

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError:
        """A request this provider's API cannot express (raised before sending)."""
        return InvalidRequestError(message, provider=self.name, model=model)


def single(resp: HttpResponse | list[HttpResponse]) -> HttpResponse:
    """The one response of an operation built as a single request."""
    return resp[0] if isinstance(resp, list) else resp


def base_url_join(base_url: str, path: str) -> str:
    """``path`` appended to the base URL's path; a query the base carries (Azure-style
    ``?api-version=...``) stays at the end, after the path's own (it was appended to the
    query: ``/v1?api-version=2024/chat/completions``)."""
    base, base_query = split_query(base_url)
    path, path_query = split_query(path)
    joined = base.rstrip("/") + "/" + path.lstrip("/")
    return with_query(joined, "&".join(q for q in (path_query, base_query) if q))


def split_query(url: str) -> tuple[str, str]:
    """(the URL without its query, the query without its ``?``; "" when there is none)."""
    head, _, query = url.partition("?")
    return head, query


def with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


def generic_error_fields(resp: HttpResponse) -> tuple[str | None, str | None]:
    """(message, code) from the usual error JSON shapes, or the raw text."""
    try:
        data = resp.json()
    except ValueError:
        text = resp.text.strip()
        return (text[:500] or None), None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        return str(data)[:500], None
    err = data.get("error", data)
    if isinstance(err, str):
        return err, None
    if isinstance(err, dict):
        msg = err.get("message") or err.get("msg") or data.get("message")
        code = err.get("code") or err.get("type") or err.get("status")
        return (str(msg) if msg is not None else None), (str(code) if code is not None else None)
    return str(data.get("message") or data)[:500], None
