"""The test Redis: its URL (skip locally when absent, fail under CI) and a private key prefix per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cloverleaf.gateway.state.redis import RedisState


def redis_url() -> str:
    """The test Redis URL (``source scripts/services.sh``); skips without one, fails under CI."""
    url = os.environ.get("CLOVERLEAF_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI is set but CLOVERLEAF_TEST_REDIS_URL is not: run scripts/services.sh first")
        pytest.skip("CLOVERLEAF_TEST_REDIS_URL is not set (source scripts/services.sh)")
    return url


def fresh_prefix() -> str:
    """A key prefix no other test uses, so tests never see each other's keys."""
    return f"cloverleaf-test:{uuid.uuid4().hex}:"


@asynccontextmanager
async def redis_state(prefix: str | None = None, url: str | None = None) -> AsyncIterator[RedisState]:
    """A RedisState under its own prefix (on the test Redis, or ``url``: a test cluster's); every
    key it made is deleted afterwards."""
    from cloverleaf.gateway.state.redis import RedisState

    state = RedisState(url or redis_url(), prefix=prefix or fresh_prefix())
    try:
        yield state
    finally:
        await state.clear()
        await state.aclose()


async def keys_under(prefix: str) -> list[str]:
    """Every key the server holds under ``prefix`` (read with a separate client)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url(), decode_responses=True)
    try:
        return sorted([k async for k in client.scan_iter(match=prefix + "*")])
    finally:
        await client.aclose()


def wait_for(client: object, key: str, seconds: float = 180.0) -> bool:
    """Pop one item from the list ``key``, waiting up to ``seconds`` (in short blocking reads:
    the test Redis drops a connection whose read is idle for 5 s)."""
    for _ in range(max(1, int(seconds / 2))):
        if client.blpop([key], timeout=2):  # type: ignore[attr-defined]
            return True
    return False


class OwnRedis:
    """A redis-server of the test's own, without persistence, to stop (an outage) and start
    again (a Redis that comes back empty) — what the shared test Redis must not be put through."""

    def __init__(self) -> None:
        redis_url()   # the same skip-or-fail rule as the shared server
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self._binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen([self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):     # up to 5 s to accept connections
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                if self._proc.poll() is not None:
                    break
                time.sleep(0.01)
        self.stop()
        pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
