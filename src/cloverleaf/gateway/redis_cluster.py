"""Redis Cluster for the shared state and the response cache: how a URL asks for it, and how keys
are named so every Lua script's keys live in one hash slot.

A Cluster (ElastiCache or MemoryDB in cluster mode, Memorystore Cluster, a self-run one) splits
keys over 16,384 slots held by several primaries, and runs a script or a transaction only when
all its keys hash to one slot (else ``CROSSSLOT``); a plain client pointed at one node gets
``MOVED`` for keys another node holds. So a Cluster is named by its own scheme,
``redis+cluster://host:port`` (``rediss+cluster://`` for TLS): redis-py's ``RedisCluster``
then learns the slot map from that node and sends each command to the node that holds it.

Key layout on a Cluster (single-node Redis keeps its names, byte for byte):

- The state's keys all carry one hash tag, the prefix itself (``{cloverleaf:}w:...``), because
  one call's admission is one script over its rate-limit windows, its budget counters and the
  shared breaker table together: nothing smaller than "all of this deployment's state" is a set
  that no script crosses. So the state lives on one primary. That is the price of admitting a
  call atomically (never overspending across replicas), and a small one: the state is a few
  small keys per active key and target, two short scripts per call — one primary serves
  hundreds of thousands of those a second. Other deployments (other prefixes) land elsewhere.
- The cache's entries, which are the bulk of the bytes, are spread over ``CACHE_SHARDS`` tags
  (fewer for a cache of fewer entries: :func:`cache_shards`), each shard with its own index
  bounded at its share of ``max_entries``, so the shards together never hold more.

A plain ``redis://`` URL that reaches a Cluster node is refused when the server starts (and by
``cloverleaf doctor``), saying which URL to use, instead of failing every call with a 503.
"""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigError

#: The schemes that ask for a Cluster client, and the scheme redis-py reads in their place.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
#: Every scheme a ``[state]`` or ``[cache]`` Redis URL may use.
REDIS_PREFIXES = ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")
#: How many tags the cache's entries are spread over on a Cluster.
CACHE_SHARDS = 16


def cluster_url(url: str, table: str) -> str | None:
    """The URL ``RedisCluster.from_url`` takes for a ``redis+cluster://`` one; None for a
    single-node URL. A Cluster has database 0 only, so ``/1`` is a configuration error."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        return None
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigError(f"{table} url: a Redis Cluster has only database 0; drop '{parts.path}' from the URL")
    return urlunsplit(parts._replace(scheme=scheme))


def one_slot_prefix(prefix: str) -> str:
    """``prefix`` as a hash tag, so every key that starts with it hashes to one slot: the tag is
    the text between the key's first ``{`` and the next ``}``, and both lie inside this prefix
    (an empty tag, or one cut short by a ``}`` in the prefix, still ends inside it)."""
    inner = prefix if prefix and not prefix.startswith("}") else "cloverleaf" + prefix
    return "{" + inner + "}"


def cache_shard_prefix(prefix: str, key: str, shards: int = CACHE_SHARDS) -> str:
    """The prefix of a cache entry and of its shard's index on a Cluster: ``prefix{N}``, N from
    the entry's key (one of ``shards``), so an entry and the index its put script trims share a slot."""
    return f"{prefix}{{{zlib.crc32(key.encode()) % shards}}}"


def cache_shards(max_entries: int) -> int:
    """How many shards a cache of ``max_entries`` is spread over: :data:`CACHE_SHARDS`, or fewer
    for a smaller cache, since each shard holds at least one entry and a cache of 5 spread over 16
    shards held 16 entries. Replicas of one cache give it the same ``max_entries``, so they agree."""
    return max(1, min(CACHE_SHARDS, max_entries))


def open_cluster(url: str, **options: Any) -> Any:
    """A ``redis.asyncio.cluster.RedisCluster`` for a URL from :func:`cluster_url`."""
    from redis.asyncio.cluster import RedisCluster

    return RedisCluster.from_url(url, **options)


def cluster_hint(exc: BaseException) -> str:
    """What to do when a single-node client met a Cluster (its error says MOVED or CROSSSLOT);
    '' for any other error."""
    text = str(exc)
    if text.startswith(("MOVED ", "ASK ", "CROSSSLOT")) or type(exc).__name__ in ("ClusterCrossSlotError",
                                                                                "MovedError", "AskError"):
        return "; this Redis is a Cluster: use redis+cluster://host:port (rediss+cluster:// for TLS)"
    return ""


async def refuse_cluster_node(client: Any, where: str, table: str) -> None:
    """Raise ConfigError when a single-node client's server is a Cluster node: its scripts would
    fail with CROSSSLOT or MOVED on every call. A server whose INFO has no cluster section (or
    refuses INFO) is taken as single-node."""
    try:
        info = await client.info("cluster")
    except Exception:  # noqa: BLE001 - a managed Redis may rename INFO; the first call then tells
        return
    _refuse(info, where, table)


def refuse_plain_urls_to_a_cluster(urls: dict[str, str], timeout: float = 2.0) -> None:
    """Before ``cloverleaf serve`` listens: a ``[state]`` or ``[cache]`` ``redis://`` URL (table →
    URL) that reaches a Cluster node is a ConfigError, said as plainly as a typo is. A Redis that
    does not answer is left to the server's own start-up warning (it may come up later)."""
    for table, url in urls.items():
        if not url.startswith(("redis://", "rediss://")):
            continue
        import redis

        parts = urlsplit(url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "prefix"])
        where = urlunsplit(parts._replace(netloc=f"{parts.hostname or 'localhost'}:{parts.port or 6379}", query=""))
        try:
            client = redis.Redis.from_url(urlunsplit(parts._replace(query=query)), socket_timeout=timeout,
                                          socket_connect_timeout=timeout)
            try:
                info = client.info("cluster")
            finally:
                client.close()
        except (redis.RedisError, ValueError, OSError):
            continue
        _refuse(info, where, table)


def _refuse(info: Any, where: str, table: str) -> None:
    if str(info.get("cluster_enabled", "0")) != "1":
        return
    parts = urlsplit(where)
    scheme = "rediss+cluster" if parts.scheme == "rediss" else "redis+cluster"
    node = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    raise ConfigError(f"{table} url {where} is a Redis Cluster node; a plain Redis client cannot use a "
                      f"Cluster (its keys span several nodes): set {table} url = \"{scheme}://{node}\" "
                      "(with your credentials, if any) instead")
