"""Where a cache's or store's client really connects: the hosts its URL names, read as the driver reads it.

The privacy guard judges a place a local-only call's text is written (the response cache's
Redis, the Responses store's PostgreSQL) by the host its client will connect to. That host is
not always the URL's netloc: redis-py takes ``host`` and ``port`` from the query string
(``redis://?host=H&port=P``); libpq takes ``host`` (a comma-separated list, each a name, an
address or a socket directory) and ``hostaddr`` from the query (or from a ``conninfo`` string
there, which psycopg takes as its connection string), overriding the netloc, and when
the URL names none, from ``PGHOST``/``PGHOSTADDR``; a libpq service names its host in a file.
Reading the netloc alone called such a URL "a local socket" while the client went to a hosted
server. So the question is put to the drivers' own URL parsers (redis-py's
``ConnectionPool.from_url``, SQLAlchemy's PostgreSQL dialect), and what cannot be told is not
local: a destination nobody can name fails closed. Only a genuine socket (Redis ``unix://``, a
libpq socket directory, libpq's default when no host is set anywhere) or a file (SQLite) is
local without a host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: libpq without a host anywhere: a socket in its compiled-in directory; on Windows, localhost.
_LIBPQ_DEFAULT_HOST = "localhost" if os.name == "nt" else ""
_REDIS_DEFAULT = ("localhost", 6379)
_POSTGRES_PORT = 5432


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a URL's client connects. ``hosts``: the network hosts it may reach (every one must
    be local); ``local``: why it is local with no network host (a file, a socket, this
    process); ``unknown``: why it cannot be told (then it is not local)."""

    hosts: tuple[tuple[str, int], ...] = ()
    local: str = ""
    unknown: str = ""


def destination(url: str, environ: Mapping[str, str] | None = None) -> Destination | None:
    """Where the client of a cache or store ``url`` connects, or None when ``url`` is neither
    (an HTTP endpoint, such as a collector's: its own host is where it goes). ``environ``: the
    environment libpq reads (default: this process's)."""
    if url == "memory":
        return Destination(local="kept by this process")
    if url.startswith("sqlite"):
        return Destination(local="a file on this machine")
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        return _redis(url)
    if scheme in ("redis+cluster", "rediss+cluster"):   # the URL names one node; the Cluster names the rest
        return Destination(unknown="a Redis Cluster's nodes are the ones it announces, not the URL's")
    if scheme.startswith("postgres"):
        return _postgres(url, os.environ if environ is None else environ)
    return None


def _redis(url: str) -> Destination:
    try:
        from redis.asyncio import ConnectionPool, UnixDomainSocketConnection
    except ImportError:
        return Destination(unknown="the redis package, which reads this URL, is not installed")
    try:
        pool = ConnectionPool.from_url(url)
    except (ValueError, TypeError):
        return Destination(unknown="its URL cannot be parsed")   # not shown: it may hold a password
    kwargs: dict[str, Any] = pool.connection_kwargs
    if issubclass(pool.connection_class, UnixDomainSocketConnection):
        return Destination(local="a unix socket on this machine")
    host = str(kwargs.get("host") or _REDIS_DEFAULT[0])
    return Destination(hosts=((host, _port(kwargs.get("port"), _REDIS_DEFAULT[1])),))


def _postgres(url: str, environ: Mapping[str, str]) -> Destination:
    try:
        from sqlalchemy.engine import make_url

        if url.startswith(("postgres://", "postgresql://")):   # as the store opens it (psycopg 3)
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        parsed = make_url(url)
        params: Mapping[str, Any] = parsed.get_dialect()().create_connect_args(parsed)[1]
    except Exception:  # noqa: BLE001 - any parse failure: where it goes cannot be told
        return Destination(unknown="its URL cannot be read as a PostgreSQL URL")   # not shown: a password
    if params.get("conninfo"):
        # ?conninfo=host%3D... reaches psycopg.connect() as its connection string, which the
        # other query parameters override: read it as psycopg does
        try:
            from psycopg.conninfo import conninfo_to_dict

            inline = conninfo_to_dict(str(params["conninfo"]))
        except Exception:  # noqa: BLE001 - unreadable (or no psycopg): cannot be told
            return Destination(unknown="its conninfo cannot be read; name the host in the URL instead")
        params = {**inline, **{k: v for k, v in params.items() if k != "conninfo"}}
    service = params.get("service") or environ.get("PGSERVICE")
    if service:
        return Destination(unknown=f"it names the libpq service {str(service)!r}, whose host is in a service "
                                   "file cloverleaf does not read; name the host in the URL instead")
    hosts = _listed(params.get("host"), environ.get("PGHOST"))
    addresses = [a for a in _listed(params.get("hostaddr"), environ.get("PGHOSTADDR")) if a]
    ports = _listed(params.get("port"), environ.get("PGPORT"))
    found: list[tuple[str, int]] = []
    sockets = 0
    for i, host in enumerate(hosts or [_LIBPQ_DEFAULT_HOST]):
        host = host or _LIBPQ_DEFAULT_HOST
        if not host or host.startswith(("/", "@")) or os.path.isabs(host):
            sockets += 1    # a socket directory (an "@" name: Linux's abstract namespace)
            continue
        port = ports[i] if i < len(ports) else (ports[0] if len(ports) == 1 else "")
        found.append((host, _port(port, _POSTGRES_PORT)))
    found.extend((address, _POSTGRES_PORT) for address in addresses)   # libpq connects to these
    return Destination(hosts=tuple(found), local="a unix socket on this machine" if sockets and not found else "")


def _listed(value: Any, fallback: str | None) -> list[str]:
    """libpq's comma-separated list; from the environment only when the URL sets none."""
    text = fallback if value is None else value
    if text is None:
        return []
    return [part.strip() for part in str(text).split(",")]


def _port(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
