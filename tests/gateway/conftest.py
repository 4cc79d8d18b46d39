"""Fixtures for gateway tests: a real Engine on the fake provider, a manual clock, a SQLite store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf._engine import Engine
from cloverleaf._types import ChatRequest, Message
from cloverleaf.gateway import Gateway, ManualClock

#: The fake provider is free; gateway tests price it at a nominal $1/M in, $2/M out to exercise budgets.
FAKE_PRICED = {"fake": ProviderSettings("fake", input_cost_per_1k=0.001, output_cost_per_1k=0.002)}


def chat_request(text: str = "hello gateway", **options: Any) -> ChatRequest:
    return ChatRequest(model="", messages=[Message.user(text)], **options)


class Harness:
    """Builds gateways over real Engines (fake provider) and closes them afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[tuple[Gateway, Engine]] = []

    def settings(self, *, routes: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
                 budgets: dict[str, Any] | None = None, breaker: dict[str, Any] | None = None,
                 models: list[ModelEntry] | None = None, store: dict[str, Any] | None = None,
                 providers: dict[str, Any] | None = None, max_retries: int = 0, env: dict[str, str] | None = None,
                 state: dict[str, Any] | None = None) -> Settings:
        # fake models are free by default; a nominal $1/M in, $2/M out lets budgets be exercised
        providers = {**FAKE_PRICED, **(providers or {})}
        return Settings(routes=routes or {}, limits=limits or {}, budgets=budgets or {}, breaker=breaker or {},
                        state=state or {},
                        models=list(models or []), providers=providers,
                        store=store or {"url": f"sqlite:///{self.tmp_path / 'gateway.db'}"},
                        max_retries=max_retries, env=env or {}, gateway=True, timeout=5.0, connect_timeout=2.0)

    def gateway(self, settings: Settings | None = None, *, clock: Any = None, **kwargs: Any) -> Gateway:
        settings = settings or self.settings(**kwargs)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=clock or ManualClock(autojump=True))
        self.made.append((gw, engine))
        return gw

    def close(self) -> None:
        for gw, engine in self.made:
            gw.close()
            engine.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def upstream(gw: Gateway) -> Any:
    """The fake provider's in-process upstream behind a gateway's engine."""
    return gw.engine.fake  # type: ignore[attr-defined]


def postgres_url() -> str | None:
    """The test PostgreSQL URL; with CI set and no URL, fail instead of skipping."""
    url = os.environ.get("CLOVERLEAF_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI is set but CLOVERLEAF_TEST_POSTGRES_URL is not: run scripts/services.sh first")
    return url

