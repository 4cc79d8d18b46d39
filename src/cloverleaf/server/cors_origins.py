"""``[server] cors_origins`` / ``CLOVERLEAF_CORS_ORIGINS``: which web origins may call the model APIs
from a browser (:mod:`.cors` answers them).

Off by default: a gateway on loopback that answered every origin would let any website its user
visits spend through it. An operator names each web app's origin exactly, as the browser sends it
in ``Origin`` (``scheme://host[:port]``); ``"*"`` allows every origin and says so in README. The
entries are checked when the server starts, so a typo (a path, a trailing ``/``, a wildcard host)
is an error that names the entry and the form wanted, not a browser console full of CORS
failures. Each entry is kept as the browser would spell its origin (scheme and host in lower
case, no default port), so ``https://App.example.com:443`` matches what the browser sends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigError
from .._setting_values import text_list

ENV_VAR = "CLOVERLEAF_CORS_ORIGINS"
#: every origin (no credentials are ever allowed with it; README warns about it)
ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: a host name or IPv4 address as an origin carries it (an IPv6 one is in brackets, checked apart)
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_FORM = 'scheme://host[:port], e.g. "https://app.example.com" or "http://localhost:5173"'


def cors_origins(table: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    """The allowed origins: ``CLOVERLEAF_CORS_ORIGINS`` (comma-separated) when set and not empty,
    else ``[server] cors_origins``; ``()`` (CORS off) when neither is."""
    raw = env.get(ENV_VAR, "")
    if raw.strip():
        return _checked(ENV_VAR, [part.strip() for part in raw.split(",") if part.strip()])
    if "cors_origins" not in table:
        return ()
    where = "[server] cors_origins"
    return _checked(where, list(text_list(where, table["cors_origins"], '"https://app.example.com"')))


def _checked(where: str, entries: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for i, entry in enumerate(entries):
        origin = entry if entry == ANY_ORIGIN else normalized_origin(f"{where}[{i}]", entry)
        if origin not in out:
            out.append(origin)
    return tuple(out)


def normalized_origin(where: str, entry: str) -> str:
    """``entry`` as a browser serializes that origin, or a ConfigError saying what is wrong."""
    def refuse(why: str) -> ConfigError:
        return ConfigError(f"{where}: {entry[:200]!r} is not an origin ({why}); write {_FORM}, "
                           f'or "*" for every origin')

    if entry.strip() != entry or not entry:
        raise refuse("it is empty or has spaces around it")
    if "*" in entry:
        raise refuse("wildcards are not matched inside an origin: list each origin")
    try:
        parts = urlsplit(entry)
        port = parts.port
    except ValueError:
        raise refuse("its port is not a number from 1 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not entry.lower().startswith(f"{scheme}://"):
        raise refuse("it must begin with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise refuse("it holds a user name or password")
    if parts.path or parts.query or parts.fragment or entry.endswith(("?", "#")):
        raise refuse("an origin has no path, not even a trailing '/', and no query")
    host = (parts.hostname or "").lower()
    bracketed = parts.netloc.startswith("[")
    if not host or (not bracketed and not _HOST.fullmatch(host)):
        raise refuse("its host is missing or not a host name")
    if port == 0:
        raise refuse("its port is not a number from 1 to 65535")
    name = f"[{host}]" if bracketed else host
    return f"{scheme}://{name}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{name}:{port}"
