"""Where cached answers live: one process's memory, a SQLite file, or a Redis shared by
every replica. One small interface, so the cache logic above never branches on it.

Every backend bounds itself: entries expire after their TTL and, past ``max_entries``, the
oldest stored go first. Semantic mode keeps a vector per entry, grouped by scope (model and
parameters), so a lookup compares only against prompts that could share an answer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from array import array
from collections import OrderedDict
from typing import Any

from ..._errors import REDACTED, ConfigError
from ..._secret_urls import masked_url
from ..redis_cluster import REDIS_PREFIXES, cache_shard_prefix, cache_shards, cluster_url, open_cluster
from ..sqlite_wal import enable_wal

Vector = list[float]


class CacheBackend(ABC):
    """Values are bytes (the JSON codec's) for SQLite and Redis; the memory backend keeps the
    answer objects themselves, so a hit there decodes nothing."""

    @abstractmethod
    async def get(self, key: str) -> Any: ...

    @abstractmethod
    async def put(self, key: str, blob: Any, ttl: float) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Drop the entry ``key`` (one that cannot be served); no error when it is gone."""

    @abstractmethod
    async def add_vector(self, scope: str, key: str, vector: Vector, ttl: float) -> None: ...

    @abstractmethod
    async def vectors(self, scope: str) -> list[tuple[str, Vector]]:
        """The live vectors stored under ``scope``, with the entry key each belongs to."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass


def open_backend(url: str, *, max_entries: int, prefix: str) -> CacheBackend:
    if url == "memory":
        return MemoryBackend(max_entries)
    if url.startswith("sqlite:///"):
        return SqliteBackend(url.removeprefix("sqlite:///"), max_entries)
    if url.startswith(REDIS_PREFIXES):
        return RedisBackend(url, max_entries, prefix)
    raise ConfigError(f"[cache] url {masked_url(url, REDACTED)!r} is not supported; use memory, sqlite:///path.db or "
                      "redis://host:6379/0")


def pack(vector: Vector) -> bytes:
    return array("f", vector).tobytes()


def unpack(blob: bytes) -> Vector:
    out = array("f")
    out.frombytes(blob)
    return out.tolist()


# --------------------------------------------------------------------------- memory
class MemoryBackend(CacheBackend):
    """Per process. Everything runs on the event loop: no locks, no threads."""

    def __init__(self, max_entries: int, clock: Any = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._vectors: dict[str, dict[str, Vector]] = {}
        self._scope_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Any:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            self._drop(key)
            return None
        return found[1]

    async def put(self, key: str, blob: Any, ttl: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + ttl, blob)
        while len(self._entries) > self._max:
            self._drop(next(iter(self._entries)))

    async def delete(self, key: str) -> None:
        self._drop(key)

    async def add_vector(self, scope: str, key: str, vector: Vector, ttl: float) -> None:
        if key in self._entries:
            self._vectors.setdefault(scope, {})[key] = vector
            self._scope_of[key] = scope

    async def vectors(self, scope: str) -> list[tuple[str, Vector]]:
        now = self._clock()
        live = []
        for key, vec in list(self._vectors.get(scope, {}).items()):
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                self._drop(key)
            else:
                live.append((key, vec))
        return live

    def _drop(self, key: str) -> None:
        self._entries.pop(key, None)
        scope = self._scope_of.pop(key, None)
        if scope is not None:
            vecs = self._vectors.get(scope)
            if vecs is not None:
                vecs.pop(key, None)
                if not vecs:
                    del self._vectors[scope]


# --------------------------------------------------------------------------- SQLite
class SqliteBackend(CacheBackend):
    """A SQLite file (WAL), so answers survive restarts and several processes on one host
    share them. Work runs on a worker thread: a lookup is a local file read, not a network
    round trip, but it must not block the event loop."""

    def __init__(self, path: str, max_entries: int, clock: Any = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        enable_wal(self._db.cursor(), wait_s=10)   # workers starting together share this file
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS cache_entries (key TEXT PRIMARY KEY, blob BLOB NOT NULL, "
                         "expires REAL NOT NULL, stored REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS cache_entries_stored ON cache_entries (stored)")
        self._db.execute("CREATE TABLE IF NOT EXISTS cache_vectors (scope TEXT NOT NULL, key TEXT NOT NULL, "
                         "vector BLOB NOT NULL, PRIMARY KEY (scope, key))")

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    async def get(self, key: str) -> bytes | None:
        rows = await asyncio.to_thread(self._run, "SELECT blob FROM cache_entries WHERE key = ? AND expires > ?",
                                       (key, self._clock()))
        return bytes(rows[0][0]) if rows else None

    def _put(self, key: str, blob: bytes, ttl: float) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?, ?)", (key, blob, now + ttl, now))
                self._db.execute("DELETE FROM cache_entries WHERE expires <= ?", (now,))
                excess = self._db.execute("SELECT COUNT(*) FROM cache_entries").fetchone()[0] - self._max
                if excess > 0:
                    self._db.execute("DELETE FROM cache_entries WHERE key IN "
                                     "(SELECT key FROM cache_entries ORDER BY stored LIMIT ?)", (excess,))
                self._db.execute("DELETE FROM cache_vectors WHERE key NOT IN (SELECT key FROM cache_entries)")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    async def put(self, key: str, blob: bytes, ttl: float) -> None:
        await asyncio.to_thread(self._put, key, blob, ttl)

    def _delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
            self._db.execute("DELETE FROM cache_vectors WHERE key = ?", (key,))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def add_vector(self, scope: str, key: str, vector: Vector, ttl: float) -> None:
        await asyncio.to_thread(self._run, "INSERT OR REPLACE INTO cache_vectors VALUES (?, ?, ?)",
                                (scope, key, pack(vector)))

    async def vectors(self, scope: str) -> list[tuple[str, Vector]]:
        rows = await asyncio.to_thread(
            self._run, "SELECT v.key, v.vector FROM cache_vectors v JOIN cache_entries e ON e.key = v.key "
                       "WHERE v.scope = ? AND e.expires > ?", (scope, self._clock()))
        return [(key, unpack(bytes(blob))) for key, blob in rows]

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- Redis
# put: store the entry with its TTL, index it by time, and trim the index past the bound
# (the oldest entries and their vectors go) — atomically, so replicas never race the trim.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, k in ipairs(old) do redis.call('DEL', ARGV[6] .. k) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return excess
"""


#: The longest a Redis cache operation may wait (connect, or an answer).
REDIS_TIMEOUT_SECONDS = 1.0


class RedisBackend(CacheBackend):
    """Shared by every process and replica that names the same Redis and prefix.

    On a Redis Cluster (``redis+cluster://``) each entry goes to one of ``CACHE_SHARDS`` shards by
    its key (``prefix{N}e:<key>``, beside that shard's own index ``prefix{N}index``), so the put
    script's keys share a slot while the entries spread over the Cluster's nodes; each shard keeps
    ``max_entries / CACHE_SHARDS`` entries, the oldest going first within it (a cache of fewer
    than ``CACHE_SHARDS`` entries has one shard per entry: the shards never hold more than the bound)."""

    def __init__(self, url: str, max_entries: int, prefix: str) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the Redis cache needs the redis package: pip install 'cloverleaf[redis]'") from exc
        self._aioredis = aioredis
        self._cluster_url = cluster_url(url, "[cache]")
        self._url = self._cluster_url or url
        # a shard's bound is its share, and never less than one: so never more shards than entries
        self._shards = cache_shards(max_entries)
        self._max = max_entries if self._cluster_url is None else max_entries // self._shards
        self._prefix = prefix
        self._index = f"{prefix}index"
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        self._put_script = aioredis.Redis().register_script(_PUT)

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for stale in [other for other in self._clients if other.is_closed()]:
                    del self._clients[stale]
                # a cache answers in a millisecond or not at all: a hung Redis (SIGSTOP, a full
                # network buffer) may hold a call at most this long, never the OS's minutes
                opener = self._aioredis.Redis.from_url if self._cluster_url is None else open_cluster
                client = self._clients[loop] = opener(
                    self._url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
            return client

    def _home(self, key: str) -> str:
        """What an entry's key and its index's key start with (a shard's hash tag on a Cluster)."""
        return self._prefix if self._cluster_url is None else cache_shard_prefix(self._prefix, key, self._shards)

    def _entry(self, key: str) -> str:
        return f"{self._home(key)}e:{key}"

    def _index_of(self, key: str) -> str:
        return self._index if self._cluster_url is None else f"{self._home(key)}index"

    async def get(self, key: str) -> bytes | None:
        blob = await self._client().get(self._entry(key))
        return bytes(blob) if blob is not None else None

    async def put(self, key: str, blob: bytes, ttl: float) -> None:
        home = self._home(key)
        await self._put_script(keys=[f"{home}e:{key}", self._index_of(key)],
                               args=[blob, max(1, int(ttl * 1000)), time.time(), key, self._max,
                                     f"{home}e:"], client=self._client())

    async def delete(self, key: str) -> None:
        """The entry and its place in the index (its vector goes when a lookup finds it dead)."""
        pipe = self._client().pipeline(transaction=True)
        pipe.delete(self._entry(key))
        pipe.zrem(self._index_of(key), key)
        await pipe.execute()

    async def add_vector(self, scope: str, key: str, vector: Vector, ttl: float) -> None:
        name = f"{self._prefix}v:{scope}"
        pipe = self._client().pipeline(transaction=True)
        pipe.hset(name, key, pack(vector))
        pipe.pexpire(name, max(1, int(ttl * 1000)))
        await pipe.execute()

    async def vectors(self, scope: str) -> list[tuple[str, Vector]]:
        client = self._client()
        name = f"{self._prefix}v:{scope}"
        found = await client.hgetall(name)
        if not found:
            return []
        keys = [k.decode() if isinstance(k, bytes) else k for k in found]
        alive = await client.exists(*[self._entry(k) for k in keys]) if len(keys) == 1 else None
        if alive is not None:
            live = keys if alive else []
        else:
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.exists(self._entry(k))
            live = [k for k, ok in zip(keys, await pipe.execute(), strict=True) if ok]
        dead = set(keys) - set(live)
        if dead:
            await client.hdel(name, *dead)
        by_key = {(k.decode() if isinstance(k, bytes) else k): v for k, v in found.items()}
        return [(k, unpack(bytes(by_key[k]))) for k in live]

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
