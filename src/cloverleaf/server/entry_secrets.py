"""Secrets inside a model entry's other fields: shown masked, kept when the mask comes back.

A provider key has its own write-only field (``api_key``, answered as ``has_api_key``), but
operators also put credentials where the entry's other fields take them: a password in
``base_url`` (``https://svc:pw@proxy.internal/v1``), a key in its query (``?key=`` for a
Gemini-style endpoint), Bedrock's ``aws_secret_access_key`` or ``aws_session_token`` in
``additional_config``. The admin API and the dashboard show those fields, so they show the
secret parts as :data:`MASK`.

Whoever reads an entry may send it back (a dashboard edit form, a script doing GET then PUT):
a field that comes back exactly as it was shown keeps the stored secret instead of storing the
mask. Sending a new value replaces it as usual.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "********"

#: additional_config keys whose values are credentials (matched on the lower-cased name)
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|credential|private_key|api_?key|signature)")
#: query parameters that carry a key (Gemini's ``?key=``, SAS-style ``sig``)
_SECRET_QUERY = frozenset({"key", "api_key", "apikey", "token", "access_token", "sig", "signature", "code"})


def shown_url(url: str | None) -> str | None:
    """``url`` with its password and key-carrying query values masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK   # an unparseable URL may still hold a password: show none of it
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in _SECRET_QUERY else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


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
    if "base_url" in out and stored_url and out["base_url"] != stored_url and out["base_url"] == shown_url(stored_url):
        out["base_url"] = stored_url
    stored_config = dict(getattr(existing, "additional_config", None) or {})
    config = out.get("additional_config")
    if isinstance(config, dict) and stored_config:
        out["additional_config"] = {k: stored_config[k] if v == MASK and k in stored_config else v
                                    for k, v in config.items()}
    return out
