"""The Redis-backed response cache, shared by two processes: an answer one process paid
for is a hit in the other, exact and semantic; entries expire with their TTL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .openai_mock import OpenAIMock
from .redis_support import fresh_prefix, redis_url

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def worker(url: str, prefix: str, base_url: str, db: str, mode: str, prompt: str) -> None:
    """One process: ask once through a Client whose cache lives in Redis; print what happened."""
    import cloverleaf
    from cloverleaf._config import ProviderSettings, Settings

    cache = {"mode": mode, "url": url, "prefix": prefix, "shared": True}
    if mode == "semantic":
        cache |= {"embedding_model": "simple/hash", "similarity": 0.8}
    s = Settings(providers={"mock": ProviderSettings("mock", kind="openai", base_url=base_url, api_key_env="K")},
                 env={"K": "k"}, cache=cache, gateway=True, store={"url": f"sqlite:///{db}"})
    with cloverleaf.Client(s) as client:
        r = client.chat("mock/gpt-test", prompt, temperature=0)
    print(json.dumps({"content": r.content, "cache": r.metadata.extra.get("cache"),
                      "similarity": r.metadata.extra.get("cache_similarity")}))


def run_worker(tmp_path: Path, prefix: str, mock: OpenAIMock, mode: str, prompt: str, n: int) -> dict[str, object]:
    code = ("import sys; from tests.gateway.test_cache_redis import worker; "
            "worker(*sys.argv[1:7])")
    out = subprocess.run([sys.executable, "-c", code, redis_url(), prefix, mock.base_url, str(tmp_path / f"{n}.db"),
                          mode, prompt], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def mock() -> OpenAIMock:
    m = OpenAIMock()
    yield m  # type: ignore[misc]
    m.close()


def _cleanup(prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url())
    for key in r.scan_iter(match=prefix + "*"):
        r.delete(key)
    r.close()


def test_two_processes_share_exact_entries(tmp_path: Path, mock: OpenAIMock) -> None:
    prefix = fresh_prefix()
    try:
        first = run_worker(tmp_path, prefix, mock, "exact", "shared across replicas", 1)
        second = run_worker(tmp_path, prefix, mock, "exact", "shared across replicas", 2)
    finally:
        _cleanup(prefix)
    assert first["cache"] == "miss" and second["cache"] == "hit"
    assert first["content"] == second["content"] and mock.chats == 1


def test_two_processes_share_semantic_entries(tmp_path: Path, mock: OpenAIMock) -> None:
    prefix = fresh_prefix()
    try:
        run_worker(tmp_path, prefix, mock, "semantic", "What is the capital city of France?", 1)
        close = run_worker(tmp_path, prefix, mock, "semantic", "what is the capital city of france", 2)
    finally:
        _cleanup(prefix)
    assert close["cache"] == "hit" and float(close["similarity"]) >= 0.8  # type: ignore[arg-type]
    assert mock.chats == 1


def test_redis_backend_ttl_and_bound() -> None:
    import asyncio

    from cloverleaf.gateway.cache.backends import RedisBackend

    prefix = fresh_prefix()

    async def run() -> None:
        backend = RedisBackend(redis_url(), max_entries=2, prefix=prefix)
        try:
            await backend.put("a", b"1", ttl=0.2)
            await backend.put("b", b"2", ttl=30)
            await backend.put("c", b"3", ttl=30)      # past the bound: "a" (the oldest) goes
            assert await backend.get("a") is None and await backend.get("c") == b"3"
            await backend.add_vector("s", "b", [1.0, 0.0], ttl=30)
            await backend.put("d", b"4", ttl=0.1)
            await backend.add_vector("s", "d", [0.0, 1.0], ttl=0.1)
            await asyncio.sleep(0.3)
            assert await backend.get("d") is None
            assert [k for k, _ in await backend.vectors("s")] == []   # "b" was trimmed, "d" expired
        finally:
            await backend.aclose()

    try:
        asyncio.run(run())
    finally:
        _cleanup(prefix)


def host_in_query(url: str) -> str:
    """The same Redis with its host named the other way redis-py reads: ``redis://?host=H&port=P&db=N``."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    db = parts.path.lstrip("/") or "0"
    return f"{parts.scheme}://{auth + '@' if auth else ''}?host=localhost&port={parts.port or 6379}&db={db}"


@pytest.mark.parametrize("form", ["netloc", "query"])
def test_a_local_only_call_never_caches_its_answer_in_a_redis_that_is_not_local(tmp_path: Path,
                                                                               mock: OpenAIMock, form: str) -> None:
    """A hosted Redis would hold a local-only call's answer: such a call skips the cache (it is
    answered by the model each time and nothing is written). Here the cache reaches the real
    Redis through ``localhost`` while the privacy resolver says ``localhost`` is public; the
    host is named in the URL's netloc or, as redis-py also reads it, in its query string
    (``redis://?host=localhost&port=P``: no netloc host, and still not a local socket)."""
    import redis

    import cloverleaf
    from cloverleaf._config import ProviderSettings, Settings

    prefix = fresh_prefix()
    remote_looking = redis_url().replace("127.0.0.1", "localhost") if form == "netloc" else host_in_query(redis_url())
    settings = Settings(providers={"vllm": ProviderSettings("vllm", base_url=mock.base_url)},
                        cache={"mode": "exact", "url": remote_looking, "prefix": prefix, "deterministic_only": False},
                        gateway=True, store={"url": f"sqlite:///{tmp_path / 's.db'}"}, max_retries=0)
    r = redis.Redis.from_url(redis_url())
    try:
        with cloverleaf.Client(settings) as client:
            # the model is on 127.0.0.1 (local); only localhost, the cache's host, looks public
            client.engine.privacy.resolver = lambda host, port: (["93.184.216.34"] if host == "localhost"
                                                                 else ["127.0.0.1"])
            for _ in range(2):
                resp = client.chat("vllm/m", "my private diary", privacy="local-only")
                assert "cache" not in resp.metadata.extra
            assert mock.chats == 2
            assert list(r.scan_iter(match=prefix + "*")) == []          # nothing of it in that Redis
            hits = [client.chat("vllm/m", "a public note").metadata.extra.get("cache") for _ in range(2)]
            assert hits == ["miss", "hit"] and mock.chats == 3     # without the policy the cache works
    finally:
        _cleanup(prefix)
        r.close()
