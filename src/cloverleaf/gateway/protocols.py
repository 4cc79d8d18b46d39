"""What the gateway needs from the Engine, and from a target the Engine resolved.

Written as Protocols so the gateway's logic runs on a small stub engine
(``tests/gateway/test_stub_engine.py``) as well as on ``cloverleaf._engine.Engine`` and the fake
provider: the gateway reads nothing of the engine that is not named here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from .._pricing import ModelPrice
from .._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    StreamEvent,
    Usage,
)


@runtime_checkable
class Target(Protocol):
    """A resolved place to send a call, as the gateway reads it (``cloverleaf._engine.Target``
    is one). The engine gets it back unchanged in ``achat``/``astream``/...: to the gateway it
    is a handle with a price, a provider name and a key to scrub from error text. (Beyond this,
    read only where present: the Engine's ``cfg``, ``spec`` and ``trace_headers``, for an
    attempt's own settings, its spans' provider and server, and the trace headers it sends; and
    ``model``, the id sent to the provider, whose image rule a budget's bound uses.)"""

    @property
    def provider(self) -> str: ...

    @property
    def price(self) -> ModelPrice | None: ...

    @property
    def context_window(self) -> int | None:
        """Its context window, known even where its price is not (a registry entry's)."""

    @property
    def api_key(self) -> str | None: ...


@runtime_checkable
class EngineLike(Protocol):
    """One call to one target, plus cost and estimates. ``target`` in the calls is what
    :meth:`resolve` returned (typed ``Any`` there: an engine accepts only its own targets)."""

    def resolve(self, model_id: str, *, api_key: str | None = None, base_url: str | None = None,
                max_retries: int | None = None, timeout: float | None = None) -> Target: ...

    async def achat(self, target: Any, req: ChatRequest) -> ChatResponse: ...

    def astream(self, target: Any, req: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aembed(self, target: Any, req: EmbeddingRequest) -> EmbeddingResponse: ...

    async def aimage(self, target: Any, req: ImageRequest) -> ImageResponse: ...

    def cost(self, target: Any, usage: Usage) -> float | None: ...

    #: ``media`` given: the attachments are appended to it, not estimated (the gateway bounds them per target)
    def estimate_tokens(self, req: ChatRequest, media: list[Attachment] | None = None) -> int: ...

    #: fills ``resp.parsed`` by the rule the engine applies to its own answers (for a cache hit)
    def parse_structured(self, req: ChatRequest, resp: ChatResponse) -> None: ...
