"""Which of a provider's configured ``headers`` values are secrets, to scrub from error text.

A provider row's ``headers`` often carry a credential besides ``api_key``: a gateway's key
(Portkey's ``x-portkey-api-key``, ``Helicone-Auth``, Cloudflare's ``cf-aig-authorization``), a
proxy's token. An upstream or a proxy that echoes the request's headers in an error put it into the
exception, the call record and a gateway client's error body, where only the ``api_key`` and the
URL's credentials were masked.

The rule errs on the side of hiding, but not of words. Under a header named as a credential
(:data:`~cloverleaf._http.SECRET_HEADERS`: ``authorization``, ``x-api-key``...; or one a part of
whose name is a credential's: ``x-portkey-api-key``, ``helicone-auth``) the value is a secret
whatever it is. Under any other header, a value is one when it is a single word (or the token of
``Bearer <token>``) of at least :data:`MIN_NAMED` characters if the header's name holds a credential's
word (``key``, ``token``, ``auth``...: :func:`cloverleaf._secret_urls.is_secret_name`), else
:data:`MIN_UNNAMED`, and is not something a setting looks like: a media type (``application/json``),
a URL, a plain lower-case word (``openai``, ``azure-openai``: Portkey's ``x-portkey-provider`` holds
"key" in its name). Headers known to carry settings (``content-type``, ``anthropic-beta``,
OpenRouter's ``HTTP-Referer``...) are skipped. Masking a setting would garble every message that
quotes it and protect nothing; a generated key or token has a digit or a capital. Of
``Bearer <token>`` the token is a secret on its own too, as an echo may quote only it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._http import SECRET_HEADERS
from ._secret_urls import is_secret_name

#: Headers whose values are settings, never credentials (lower-cased).
PLAIN_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "content-type", "content-encoding", "user-agent",
    "cache-control", "anthropic-version", "anthropic-beta", "openai-beta", "openai-organization",
    "openai-project", "http-referer", "referer", "x-title", "origin", "x-stainless-helper-method",
})
#: A value under a header not named like a credential counts from this many characters.
MIN_UNNAMED = 8
#: A value under a header whose name holds a credential's word counts from this many (as ``redact`` masks).
MIN_NAMED = 4

_MEDIA_TYPE = re.compile(r"(?:application|text|image|audio|video|multipart|font|model|message)/[\w.+-]+"
                         r"(?:\s*;.*)?", re.IGNORECASE)
#: Parts of a header's name (split at ``-``, ``_``, ``.``) that make it a credential's whatever its
#: value looks like: ``x-portkey-api-key``, ``helicone-auth``, ``x-proxy-password``.
_CREDENTIAL_PARTS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "pwd", "auth",
                               "authorization", "credential", "credentials", "signature", "cookie"})
#: A plain lower-case word (``openai``, ``azure-openai``, ``us-east``): a setting, not a generated secret.
_PLAIN_WORD = re.compile(r"[a-z]+(?:[-_.][a-z]+)*")
_SCHEMES = frozenset({"bearer", "basic", "token", "apikey", "api-key", "key"})


def header_secrets(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The values (and bare tokens) of ``headers`` to redact wherever an error quotes them."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if not isinstance(value, str) or lowered in PLAIN_HEADERS:
            continue
        words = value.split()
        token = words[1] if len(words) == 2 and words[0].lower() in _SCHEMES else None
        if lowered in SECRET_HEADERS or not _CREDENTIAL_PARTS.isdisjoint(re.split(r"[-_.]", lowered)):
            found.extend(c for c in (value.strip(), token or (words[-1] if words else "")) if len(c) >= MIN_NAMED)
            continue
        shortest = MIN_NAMED if is_secret_name(lowered) else MIN_UNNAMED
        if token is not None and _may_be_secret(token, shortest):
            found.extend((value.strip(), token))
        elif len(words) == 1 and _may_be_secret(words[0], shortest):
            found.append(words[0])
    return tuple(dict.fromkeys(found))


def _may_be_secret(word: str, shortest: int) -> bool:
    return (len(word) >= shortest and "://" not in word and not _MEDIA_TYPE.fullmatch(word)
            and not _PLAIN_WORD.fullmatch(word))
