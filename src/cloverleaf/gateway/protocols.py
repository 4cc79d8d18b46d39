"""What the gateway needs from the Engine: one call to one target, plus cost and estimates.

Written as a Protocol so the gateway's logic is tested with a small stub engine as well as
with ``cloverleaf._engine.Engine`` and the fake provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from .._types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    StreamEvent,
    Usage,
)


class EngineLike(Protocol):
    def resolve(self, model_id: str, *, api_key: str | None = None, base_url: str | None = None,
                max_retries: int | None = None) -> Any: ...

    async def achat(self, target: Any, req: ChatRequest) -> ChatResponse: ...

    def astream(self, target: Any, req: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aembed(self, target: Any, req: EmbeddingRequest) -> EmbeddingResponse: ...

    async def aimage(self, target: Any, req: ImageRequest) -> ImageResponse: ...

    def cost(self, target: Any, usage: Usage) -> float | None: ...

    def estimate_tokens(self, req: ChatRequest) -> int: ...
