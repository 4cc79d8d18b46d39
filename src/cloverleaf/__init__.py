"""cloverleaf: one interface over every LLM provider, and a gateway in front of them.

    >>> import cloverleaf
    >>> cloverleaf.chat("fake/echo", "Hello").content
    'Hello'

This module is the public face and only re-exports. It imports the vocabulary (types,
errors) eagerly and everything else on first use, so ``import cloverleaf`` stays cheap
and never pulls in the gateway, the server, a database driver or a cloud SDK.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._errors import (
    AllTargetsFailed,
    AttachmentError,
    AuthenticationError,
    BudgetExceeded,
    CircuitOpen,
    CloverleafError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    ContentFilterError,
    ContextWindowExceededError,
    GenerationFailedError,
    GenerationInterruptedError,
    InsufficientMemoryError,
    InvalidRequestError,
    InvalidURL,
    LocalProtocolError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PrivacyViolation,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RateLimitExceeded,
    ReadTimeout,
    RedirectError,
    RemoteProtocolError,
    RequestTimeout,
    RequestTooLargeError,
    ServerError,
    StreamInterrupted,
    StructuredOutputError,
    TLSError,
    TransportError,
    UnsupportedCapability,
    WorkflowError,
    WorkflowFailed,
)

# The old name of RequestTimeout: importable (``except cloverleaf.TimeoutError`` works), but not
# in __all__, so ``from cloverleaf import *`` does not shadow the builtin TimeoutError.
from ._errors import TimeoutError as TimeoutError
from ._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Citation,
    Document,
    EmbeddingResponse,
    GeneratedImage,
    ImageResponse,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    Role,
    StreamEvent,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._client import AsyncClient, Client
    from ._config import Settings
    from ._options import ChatOptions, EmbedOptions, ImageOptions
    from ._provider import Provider
    from ._streaming import AsyncStream, Stream

from ._version import __version__ as __version__

_LAZY = {
    "Client": "cloverleaf._client",
    "AsyncClient": "cloverleaf._client",
    "Settings": "cloverleaf._config",
    "ModelEntry": "cloverleaf._config",
    "Capability": "cloverleaf._capabilities",
    "Capabilities": "cloverleaf._capabilities",
    "Provider": "cloverleaf._provider",
    "Stream": "cloverleaf._streaming",
    "AsyncStream": "cloverleaf._streaming",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloverleaf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


_lock = threading.Lock()
_default: Client | None = None
_default_async: dict[Any, AsyncClient] = {}


def default_client() -> Client:
    """The Client behind the module-level functions, built from the environment and
    ``cloverleaf.toml`` on first use."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from ._client import Client

                _default = Client()
    return _default


def default_async_client() -> AsyncClient:
    """One AsyncClient per running event loop (an async connection pool cannot be shared
    across loops).

    A client's pooled connections hold their loop, so a client is never let go by the loop
    dying alone: the first call on a new loop lets go of the clients of loops that have closed
    since, closing their sockets and their gateway's threads. Without that, each
    ``asyncio.run(cloverleaf.achat(...))`` left a client, its loop and an open upstream
    connection behind for good (and, with a gateway configured, its cleanup and store threads)."""
    import asyncio
    import weakref

    loop = asyncio.get_running_loop()
    global _default_async
    if not isinstance(_default_async, weakref.WeakKeyDictionary):
        _default_async = weakref.WeakKeyDictionary()  # type: ignore[assignment]
    client = _default_async.get(loop)
    if client is None:
        from ._client import AsyncClient

        for owner in [known for known in list(_default_async) if known.is_closed()]:
            finished = _default_async.pop(owner, None)
            if finished is not None:
                finished._close_after_its_loop()
        client = _default_async[loop] = AsyncClient()
    return client


def chat(model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> ChatResponse:
    """Send a chat request. ``messages`` is a prompt string or a list of messages."""
    return default_client().chat(model, messages, **options)


async def achat(model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> ChatResponse:
    return await default_async_client().chat(model, messages, **options)


def stream(model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> Stream:
    return default_client().stream(model, messages, **options)


def astream(model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> AsyncStream:
    return default_async_client().stream(model, messages, **options)


def embed(model: str | None, inputs: str | list[str], **options: Unpack[EmbedOptions]) -> EmbeddingResponse:
    return default_client().embed(model, inputs, **options)


async def aembed(model: str | None, inputs: str | list[str], **options: Unpack[EmbedOptions]) -> EmbeddingResponse:
    return await default_async_client().embed(model, inputs, **options)


def generate_image(model: str | None, prompt: str, **options: Unpack[ImageOptions]) -> ImageResponse:
    return default_client().generate_image(model, prompt, **options)


async def agenerate_image(model: str | None, prompt: str, **options: Unpack[ImageOptions]) -> ImageResponse:
    return await default_async_client().generate_image(model, prompt, **options)


def run_workflow(workflow: Any, inputs: Any = None, **options: Any) -> Any:
    """Run a workflow file (YAML/JSON path) or mapping; see :mod:`cloverleaf.workflows`."""
    from .workflows import run_workflow as run

    return run(workflow, inputs, **options)


async def arun_workflow(workflow: Any, inputs: Any = None, **options: Any) -> Any:
    from .workflows import arun_workflow as arun

    return await arun(workflow, inputs, **options)


def get_provider(name: str, *, model: str | None = None, **config: Any) -> Provider:
    """A provider bound to one model, in the registry style: ``get_provider("groq",
    model="llama-3.1-8b-instant").chat([Message(role=Role.USER, content="hi")])``."""
    from ._provider import Provider

    return Provider(name, model=model, **config)


__all__ = [
    "AllTargetsFailed", "AsyncClient", "AsyncStream", "Attachment", "AttachmentError", "AuthenticationError",
    "BudgetExceeded", "Capabilities", "Capability", "ChatRequest", "ChatResponse", "CircuitOpen", "Citation", "Client",
    "CloverleafError", "ConfigError", "ConnectError", "ConnectTimeout", "ContentFilterError",
    "ContextWindowExceededError", "Document", "EmbeddingResponse", "GeneratedImage", "GenerationFailedError",
    "GenerationInterruptedError", "ImageResponse", "InsufficientMemoryError", "InvalidRequestError", "InvalidURL",
    "LocalProtocolError",
    "MalformedResponseError", "Message",
    "ModelEntry", "NotFoundError", "OverloadedError", "PermissionDeniedError", "PrivacyViolation", "Provider",
    "ProviderError",
    "QuotaExceededError", "RateLimitError", "RateLimitExceeded", "ReadTimeout", "Reasoning", "ReasoningConfig", "RedirectError",
    "RemoteProtocolError", "RequestTimeout", "RequestTooLargeError", "ResponseFormat", "Role", "ServerError",
    "Settings", "Stream", "StreamEvent", "StreamInterrupted", "StructuredOutputError", "TLSError", "Text", "Tool",
    "ToolCall", "ToolChoice", "ToolResult", "TransportError", "UnsupportedCapability", "Usage", "WorkflowError",
    "WorkflowFailed", "achat", "aembed", "agenerate_image", "arun_workflow", "astream", "chat", "default_client",
    "run_workflow", "embed", "generate_image", "get_provider", "stream",
]
