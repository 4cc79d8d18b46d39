"""The server's own settings: ``[server]`` in cloverleaf.toml, the environment, CLI flags.

::

    [server]
    host = "127.0.0.1"             # --host (a flag wins over the file, the file over these defaults)
    port = 4000                    # --port
    workers = 1                    # --workers
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
    cors_origins = []              # web origins whose pages may call the model APIs (.cors_origins; off when empty)

``CLOVERLEAF_CORS_ORIGINS`` (comma-separated), when set, replaces ``cors_origins``.

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
from .._setting_values import boolean, not_a_table, number, seconds, text, whole
from .cors_origins import cors_origins

_KEYS = {"host", "port", "max_body_mb", "allow_unauthenticated", "key_cache_seconds", "workers",
         "body_timeout_seconds", "http", "header_timeout_seconds", "keepalive_timeout_seconds", "max_connections",
         "heap_trim_seconds", "write_timeout_seconds", "cors_origins"}
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
    #: origins whose browser pages may call the model APIs; () leaves CORS out entirely (:mod:`.cors`)
    cors_origins: tuple[str, ...] = ()
    master_key: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, table: Mapping[str, Any], env: Mapping[str, str], **overrides: Any) -> ServerOptions:
        """Every number is checked as every table's are (``_setting_values``): ``max_body_mb =
        "abc"`` was a traceback, and ``max_body_mb = -1`` a server that refused every request."""
        if not isinstance(table, Mapping):
            raise ConfigError(not_a_table("[server]", table, "port = 4000"))
        unknown = set(table) - _KEYS
        if unknown:
            raise ConfigError(f"[server] unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        opts = cls(master_key=env.get("CLOVERLEAF_MASTER_KEY") or None,
                   encryption_key=env.get("CLOVERLEAF_ENCRYPTION_KEY") or None)
        if "host" in table:   # host = 5 was taken as the name "5"
            opts.host = text("[server] host", table["host"])
            if not opts.host.strip():   # read now (a flag no longer hides it): "" binds every interface
                raise ConfigError('[server] host is empty: give an address ("127.0.0.1", "0.0.0.0", "::1")')
        if "port" in table:
            # as --port: port 0 would bind a port the OS picks, while the startup line says 0
            opts.port = whole("[server] port", table["port"], minimum=1, maximum=65535)
        if "workers" in table:
            opts.workers = whole("[server] workers", table["workers"], minimum=1)
        if "max_body_mb" in table:
            # at least about a kilobyte: a smaller cap rounds to a few bytes and refuses every request
            opts.max_body_bytes = int(number("[server] max_body_mb", table["max_body_mb"], minimum=0.001,
                                             unit="megabytes") * 1024 * 1024)
        if "allow_unauthenticated" in table:
            opts.allow_unauthenticated = boolean("[server] allow_unauthenticated", table["allow_unauthenticated"])
        if "http" in table:
            opts.http = text("[server] http", table["http"])
        for name in ("body_timeout_seconds", "header_timeout_seconds", "keepalive_timeout_seconds",
                     "write_timeout_seconds"):
            if name in table:
                setattr(opts, name, seconds(f"[server] {name}", table[name]))
        for name in ("key_cache_seconds", "heap_trim_seconds"):   # 0: no key cache; never trim
            if name in table:
                setattr(opts, name, seconds(f"[server] {name}", table[name], zero=True))
        if "max_connections" in table:
            opts.max_connections = whole("[server] max_connections", table["max_connections"], minimum=1)
        opts.cors_origins = cors_origins(table, env)
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

