"""Secrets inside a model entry's other fields: shown masked, kept when the mask comes back.

A provider key has its own write-only field (``api_key``, answered as ``has_api_key``), but
operators also put credentials where the entry's other fields take them: a password in
``base_url`` (``https://svc:pw@proxy.internal/v1``), a key in its query (``?key=`` for a
Gemini-style endpoint, ``?api-key=`` for Azure and many OpenAI-compatible proxies), Bedrock's
``aws_secret_access_key`` or ``aws_session_token`` in ``additional_config``. The admin API and
the dashboard show those fields, so they show the secret parts as :data:`MASK`. Which query
parameters are secret is the one rule the whole package uses (:mod:`cloverleaf._secret_urls`:
any name containing ``key``, ``token``, ``secret``, ``password``, ``sig``, ``auth``, ...), so
what error messages redact is never shown here either.

Whoever reads an entry may send it back (a dashboard edit form, a script doing GET then PUT):
a field that comes back exactly as it was shown keeps the stored secret instead of storing the
mask. A base_url edited elsewhere (another path, another parameter) keeps each secret that
still comes back masked, as long as the URL still goes to the same scheme, host and port: a
mask sent towards another host keeps nothing (type the secret again), so editing the host
cannot send a stored secret somewhere new. Sending a new value replaces it as usual.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from .._secret_urls import is_secret_name, masked_url, masked_userinfo

MASK = "********"

#: additional_config keys whose values are credentials (matched on the lower-cased name). The
#: keys an entry may have are a closed set (``check_config_keys``), and these are its secrets:
#: ``aws_access_key_id`` names a key without being one and stays readable.
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|credential|private_key|api_?key|signature)")


def shown_url(url: str | None) -> str | None:
    """``url`` with its password and credential-carrying query values masked."""
    return masked_url(url, MASK) if url else url


def shown_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """``additional_config`` with credential values masked."""
    return {k: MASK if _SECRET_NAME.search(k.lower()) and v not in (None, "") else v
            for k, v in (config or {}).items()}


def kept_secrets(fields: dict[str, Any], existing: Any) -> dict[str, Any]:
    """``fields`` to store, with any field sent back as it was shown replaced by the stored value."""
    if existing is None:
        return fields
    out = dict(fields)
    stored_url = getattr(existing, "base_url", None)
    if isinstance(out.get("base_url"), str) and stored_url:
        out["base_url"] = kept_url(out["base_url"], stored_url)
    stored_config = dict(getattr(existing, "additional_config", None) or {})
    config = out.get("additional_config")
    if isinstance(config, dict) and stored_config:
        out["additional_config"] = {k: stored_config[k] if v == MASK and k in stored_config else v
                                    for k, v in config.items()}
    return out


def kept_url(sent: str, stored: str) -> str:
    """The base_url to store when ``sent`` replaces ``stored``: each part that came back as
    :data:`MASK` is the stored secret again, if ``sent`` still goes where ``stored`` went."""
    if sent == stored or MASK not in sent:
        return sent
    if sent == shown_url(stored):
        return stored
    try:
        new, old = urlsplit(sent), urlsplit(stored)
        same_place = (new.scheme.lower(), new.hostname, new.port) == (old.scheme.lower(), old.hostname, old.port)
    except ValueError:
        return sent
    if not same_place:
        return sent
    netloc = new.netloc
    if "@" in new.netloc and "@" in old.netloc and masked_userinfo(old.netloc, MASK) == new.netloc:
        netloc = old.netloc
    kept: dict[str, list[str]] = {}    # a secret parameter's stored name=value, by its name as written
    for part in re.split(r"[&;]", old.query) if old.query else ():
        name = part.partition("=")[0]
        if is_secret_name(unquote_plus(name)):
            kept.setdefault(name, []).append(part)
    query = []
    for part in re.split(r"([&;])", new.query) if new.query else ():   # separators kept as written
        name, _, value = part.partition("=")
        query.append(kept[name].pop(0) if value == MASK and kept.get(name) else part)
    return urlunsplit(new._replace(netloc=netloc, query="".join(query)))

