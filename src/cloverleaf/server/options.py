"""The server's own settings: ``[server]`` in cloverleaf.toml, the environment, CLI flags.

::

    [server]
    host = "127.0.0.1"             # --host
    port = 4000                    # --port
    max_body_mb = 20               # larger request bodies get 413 before they are read
    allow_unauthenticated = false  # see below
    key_cache_seconds = 60         # how long a cached key is trusted if the store cannot be asked
                                   # (changes reach every worker within 0.5 s while it can)
    body_timeout_seconds = 60      # a request body must arrive within this (else 408)
    http = "auto"                  # --http: the HTTP/1.1 server protocol, "h1" (ours, on httptools) or "uvicorn"
    header_timeout_seconds = 10    # a connection must send a whole request head within this (h1)
    keepalive_timeout_seconds = 5  # an idle keep-alive connection is closed after this
    write_timeout_seconds = 30     # a client that reads nothing of its answer for this long is cut off (h1)
    max_connections = 10000        # beyond it, idle connections are evicted, else 503 (h1; capped by the fd limit)
    heap_trim_seconds = 10         # hand memory freed after a peak back to the OS this often (glibc; 0: never)

Secrets come only from the environment, never from the file: ``CLOVERLEAF_MASTER_KEY``
(turns on the admin API and is itself a key with every permission) and
``CLOVERLEAF_ENCRYPTION_KEY`` (encrypts provider keys at rest; defaults to the master key).

Who may call the API (the secure default):

- a master key is set, or virtual keys exist: every request needs one of them
  (``Authorization: Bearer ...`` or ``x-api-key: ...``);
- neither: the API is open, but only to clients on the loopback interface, and the
  server refuses to *start* on a non-loopback address unless
  ``allow_unauthenticated = true`` says that an open gateway is really wanted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigError
from .._setting_values import boolean

_KEYS = {"host", "port", "max_body_mb", "allow_unauthenticated", "key_cache_seconds", "workers",
         "body_timeout_seconds", "http", "header_timeout_seconds", "keepalive_timeout_seconds", "max_connections",
         "heap_trim_seconds", "write_timeout_seconds"}
HTTP_CHOICES = ("auto", "h1", "uvicorn")


@dataclass(slots=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 4000
    workers: int = 1
    max_body_bytes: int = 20 * 1024 * 1024
    allow_unauthenticated: bool = False
    key_cache_seconds: float = 60.0
    body_timeout_seconds: float = 60.0
    http: str = "auto"
    header_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: float = 5.0
    write_timeout_seconds: float = 30.0
    max_connections: int = 10_000
    heap_trim_seconds: float = 10.0
    master_key: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, table: Mapping[str, Any], env: Mapping[str, str], **overrides: Any) -> ServerOptions:
        unknown = set(table) - _KEYS
        if unknown:
            raise ConfigError(f"[server] unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        opts = cls(master_key=env.get("CLOVERLEAF_MASTER_KEY") or None,
                   encryption_key=env.get("CLOVERLEAF_ENCRYPTION_KEY") or None)
        if "host" in table:
            opts.host = str(table["host"])
        if "port" in table:
            opts.port = _int("port", table["port"])
        if "workers" in table:
            opts.workers = max(1, _int("workers", table["workers"]))
        if "max_body_mb" in table:
            opts.max_body_bytes = int(float(table["max_body_mb"]) * 1024 * 1024)
        if "allow_unauthenticated" in table:
            opts.allow_unauthenticated = boolean("[server] allow_unauthenticated", table["allow_unauthenticated"])
        if "key_cache_seconds" in table:
            opts.key_cache_seconds = float(table["key_cache_seconds"])
        if "body_timeout_seconds" in table:
            opts.body_timeout_seconds = float(table["body_timeout_seconds"])
        if "http" in table:
            opts.http = str(table["http"])
        for name in ("header_timeout_seconds", "keepalive_timeout_seconds", "write_timeout_seconds"):
            if name in table:
                setattr(opts, name, _positive(name, table[name]))
        if "heap_trim_seconds" in table:
            opts.heap_trim_seconds = _positive("heap_trim_seconds", table["heap_trim_seconds"], zero=True)
        if "max_connections" in table:
            opts.max_connections = max(1, _int("max_connections", table["max_connections"]))
        for name, value in overrides.items():
            if value is not None:
                setattr(opts, name, value)
        if not 0 <= opts.port <= 65535:   # the socket layer would wrap 99999 to 34463 and serve there
            raise ConfigError(f"[server] port (--port) must be from 0 to 65535, got {opts.port}")
        if opts.http not in HTTP_CHOICES:
            raise ConfigError(f"[server] http must be one of {', '.join(HTTP_CHOICES)}, got {opts.http!r}")
        if opts.master_key is not None and len(opts.master_key) < 16:
            raise ConfigError("CLOVERLEAF_MASTER_KEY is too short: use at least 16 random characters "
                              "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return opts

    @property
    def encryption_material(self) -> str | None:
        return self.encryption_key or self.master_key

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _int(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[server] {name} must be an integer, got {value!r}") from None


def _positive(name: str, value: Any, zero: bool = False) -> float:
    """A number of seconds above 0 (``zero``: or 0, which turns the feature off)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[server] {name} must be a number of seconds, got {value!r}") from None
    if not (number > 0 or (zero and number == 0)):
        raise ConfigError(f"[server] {name} must be {'0 or more' if zero else 'more than 0'}, got {value!r}")
    return number
