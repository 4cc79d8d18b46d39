"""The gateway on a stub engine: it needs nothing of the Engine but ``gateway.protocols``.

The stub has no provider, no transport and no adapter; it implements ``EngineLike`` and hands
out targets that implement ``Target``. Fallback, cost and the call record work on it exactly as
on the real Engine, which is what keeps the protocol true (and the real Engine is checked
against the same protocol).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import QuotaExceededError, ServerError
from cloverleaf._pricing import ModelPrice
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    StreamEvent,
    Text,
    Usage,
)
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.protocols import EngineLike, Target

from .conftest import chat_request


@dataclass
class StubTarget:
    provider: str
    model: str
    price: ModelPrice | None = ModelPrice(input=1.0, output=2.0, context_window=1000)
    api_key: str | None = "stub-secret"
    context_window: int | None = 1000


class StubEngine:
    """Answers from memory; any target on provider ``down`` fails with a 503."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def resolve(self, model_id: str, *, api_key: str | None = None, base_url: str | None = None,
                max_retries: int | None = None, timeout: float | None = None) -> StubTarget:
        provider, _, model = model_id.partition("/")
        return StubTarget(provider, model)

    async def achat(self, target: StubTarget, req: ChatRequest) -> ChatResponse:
        self.calls.append(f"{target.provider}/{target.model}")
        if target.provider == "down":
            raise ServerError("stub upstream is down (stub-secret)", provider=target.provider, status=503)
        if target.provider == "broke":
            raise QuotaExceededError("insufficient_quota", provider=target.provider, status=429)
        return ChatResponse([Text(f"stub says {req.messages[-1].content}")], target.model, target.provider,
                            finish_reason="stop", usage=Usage(input_tokens=10, output_tokens=5))

    async def astream(self, target: StubTarget, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def aembed(self, target: StubTarget, req: EmbeddingRequest) -> EmbeddingResponse:
        raise NotImplementedError

    async def aimage(self, target: StubTarget, req: ImageRequest) -> ImageResponse:
        raise NotImplementedError

    def cost(self, target: StubTarget, usage: Usage) -> float | None:
        return target.price.cost(usage) if target.price else None

    def estimate_tokens(self, req: ChatRequest, media: list[Attachment] | None = None) -> int:
        return 10

    def parse_structured(self, req: ChatRequest, resp: ChatResponse) -> None:
        """Its answers are plain text: nothing to validate."""


def test_the_engine_and_the_stub_both_keep_the_protocols() -> None:
    assert isinstance(StubEngine(), EngineLike)
    assert isinstance(StubTarget("p", "m"), Target)
    engine = Engine(Settings(env={}))
    assert isinstance(engine, EngineLike)
    assert isinstance(engine.resolve("fake/echo"), Target)
    engine.close()


async def test_the_gateway_falls_back_and_prices_on_a_stub_engine(tmp_path: Path) -> None:
    settings = Settings(routes={"r": {"targets": ["down/a", "up/b"]}}, gateway=True, env={}, max_retries=0,
                        store={"url": f"sqlite:///{tmp_path / 'stub.db'}"})
    stub = StubEngine()
    gw = Gateway(settings, stub, clock=ManualClock(autojump=True))
    try:
        resp = await gw.achat("r", chat_request("hello"))
        assert resp.content == "stub says hello" and stub.calls == ["down/a", "up/b"]
        assert resp.metadata.target == "up/b" and resp.cost == ModelPrice(1.0, 2.0).cost(resp.usage)
        [failed, _] = resp.metadata.attempts
        assert isinstance(failed.error, ServerError) and "stub-secret" not in str(failed.error)
    finally:
        await gw.aclose()



async def test_a_spent_quota_falls_back_at_once_instead_of_being_retried(tmp_path: Path) -> None:
    settings = Settings(routes={"r": {"targets": ["broke/a", "up/b"]}}, gateway=True, env={}, max_retries=2,
                        store={"url": f"sqlite:///{tmp_path / 'stub.db'}"})
    stub = StubEngine()
    gw = Gateway(settings, stub, clock=ManualClock(autojump=True))
    try:
        resp = await gw.achat("r", chat_request("hello"))
        assert resp.metadata.target == "up/b" and stub.calls == ["broke/a", "up/b"]  # no retry of broke/a
    finally:
        await gw.aclose()
