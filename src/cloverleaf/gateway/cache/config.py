"""``[cache]``: what the response cache keeps, where, and for how long — parsed once.

::

    [cache]
    mode = "exact"               # "off" (default) | "exact" | "semantic"
    url = "memory"               # or "sqlite:///cache.db" | "redis://host:6379/0" | "redis+cluster://host:6379"
    ttl = 3600                   # seconds an answer stays valid
    max_entries = 10000          # size bound (least recently stored entries go first)
    shared = false               # true: one cache for every virtual key (default: per key)
    deterministic_only = true    # cache only temperature = 0 requests (set false to cache all)
    embedding_model = "simple/hash"   # semantic mode: the model that embeds the prompt
    similarity = 0.95            # semantic mode: the cosine similarity a hit needs

A route can turn it off or change it: ``[routes.NAME] cache = false``, ``cache_ttl = 600``,
``cache_deterministic_only = false``. A call can too: ``cache=False`` (neither read nor write),
``cache="refresh"`` (skip the lookup, store the new answer) in the SDK, and ``Cache-Control:
no-store`` / ``no-cache`` on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..._errors import REDACTED, ConfigError
from ..._secret_repr import masked_repr
from ..._secret_urls import masked_url
from ..._setting_values import boolean, not_a_table, number, seconds, text, whole
from ..redis_cluster import REDIS_PREFIXES

CacheMode = Literal["off", "exact", "semantic"]
MODES: tuple[str, ...] = ("off", "exact", "semantic")
DEFAULT_TTL = 3600.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_SIMILARITY = 0.95
_KEYS = {"mode", "url", "ttl", "max_entries", "shared", "deterministic_only", "embedding_model", "similarity",
         "prefix"}
ROUTE_KEYS = {"cache", "cache_ttl", "cache_deterministic_only"}


@dataclass(frozen=True, slots=True)
class CacheConfig:
    mode: CacheMode = "off"
    url: str = "memory"
    ttl: float = DEFAULT_TTL
    max_entries: int = DEFAULT_MAX_ENTRIES
    shared: bool = False
    deterministic_only: bool = True
    embedding_model: str | None = None
    similarity: float = DEFAULT_SIMILARITY
    prefix: str = "cloverleaf:cache:"

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True, slots=True)
class RouteCache:
    """A route's own cache settings (None: the ``[cache]`` table decides)."""

    enabled: bool | None = None
    ttl: float | None = None
    deterministic_only: bool | None = None


def parse_cache(table: Mapping[str, Any] | None) -> CacheConfig:
    table = table or {}
    if not isinstance(table, Mapping):
        raise ConfigError(not_a_table("[cache]", table, 'mode = "exact"'))
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"[cache]: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("mode", "url", "embedding_model", "prefix"):   # prefix = 5 was taken as the text "5"
        if table.get(key) is not None:
            text(f"[cache] {key}", table[key])
    mode = table.get("mode", "exact" if table else "off")
    if mode not in MODES:
        raise ConfigError(f"[cache] mode must be one of {', '.join(MODES)}, got {mode!r}")
    url = table.get("url") or "memory"
    if not (url == "memory" or url.startswith(("sqlite:///", *REDIS_PREFIXES))):
        raise ConfigError(f"[cache] url must be 'memory', 'sqlite:///path.db', 'redis://host:6379/0' or "
                          f"'redis+cluster://host:6379', got {masked_url(url, REDACTED)!r}")   # may hold a password
    embedding_model = table.get("embedding_model")
    if mode == "semantic" and not embedding_model:
        raise ConfigError("[cache] mode = \"semantic\" needs embedding_model = \"provider/model\" (e.g. "
                          "\"openai/text-embedding-3-small\", or \"simple/hash\" offline)")
    similarity = number("[cache] similarity", table.get("similarity", DEFAULT_SIMILARITY), above=True, maximum=1.0)
    return CacheConfig(
        mode=mode, url=url, ttl=seconds("[cache] ttl", table.get("ttl", DEFAULT_TTL)),
        max_entries=whole("[cache] max_entries", table.get("max_entries", DEFAULT_MAX_ENTRIES), minimum=1),
        shared=boolean("[cache] shared", table.get("shared", False)),
        deterministic_only=boolean("[cache] deterministic_only", table.get("deterministic_only", True)),
        embedding_model=embedding_model or None, similarity=similarity,
        prefix=table.get("prefix") or "cloverleaf:cache:",
    )


def parse_route_cache(where: str, table: Mapping[str, Any]) -> RouteCache:
    enabled = table.get("cache")
    ttl = table.get("cache_ttl")
    det = table.get("cache_deterministic_only")
    return RouteCache(
        enabled=None if enabled is None else boolean(f"{where} cache", enabled),
        ttl=None if ttl is None else seconds(f"{where} cache_ttl", ttl),
        deterministic_only=None if det is None else boolean(f"{where} cache_deterministic_only", det),
    )

