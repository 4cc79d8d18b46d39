"""Secrets in free text: provider keys, bearer tokens and URL passwords masked wherever an
error's text (or any other text that reaches a client, a log, a call record or a span) may
quote them.

Providers like to echo a rejected key back ("Incorrect API key provided: sk-..."), and an
upstream's error may quote its own database or proxy URL with the password in it. The shapes
of a key are matched (:data:`_KEY_SHAPES`), and so is a URL's ``user:password@``
(:data:`_URL_PASSWORD`); the secrets a caller knows (a configured key, a ``base_url``'s
credentials: :func:`url_secrets`) are replaced as written. In a URL's query every parameter
named like a credential is masked by the same words the admin API masks a ``base_url`` with
(:mod:`._secret_urls`). :func:`cloverleaf._errors.scrub` applies this to an error in place.

A leaf: it imports nothing of the package but :mod:`._secret_urls`, so the error tree and
everything else can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._secret_urls import SECRET_WORD_PATTERN

#: Anything shaped like a provider key or a bearer token: providers like to echo a rejected key
#: back ("Incorrect API key provided: sk-..."), and an error's text reaches logs, call records
#: and spans. (``api_key=...``, a placeholder in a hint, is left alone.) In a URL's query (after
#: ``?`` or ``&``) every parameter named like a credential (:mod:`._secret_urls`: ``password=``,
#: ``sig=``, ``x-api-key=``, ...) is redacted too: the rule the admin API masks base_urls with.
_KEY_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{10,}|gsk_[A-Za-z0-9]{8,}|xai-[A-Za-z0-9]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-.=:+/]{8,}|(?i:(?:api[-_]?key|key|token)=)(?!\.\.\.)[^&\s\"']+"
    r"|(?<=[?&])(?i:[\w.%+-]*" + SECRET_WORD_PATTERN + r"[\w.%+-]*=)(?!\.\.\.)[^&#\s\"']+"
    # an echoed "Authorization: Basic <base64 of user:password>" (a base_url's credentials): base64
    # of 8+ characters holding a capital, a digit or +/= (so "basic requirements" is left alone)
    r"|(?i:basic)\s+(?=[A-Za-z0-9+/]*[A-Z0-9+/=])(?:[A-Za-z0-9+/]{4}){2,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
    r"(?![A-Za-z0-9+/=]))"
)
REDACTED = "<redacted>"
#: The password of a URL's ``user:password@`` anywhere in a text (``postgresql://u:PW@db``,
#: ``redis://:PW@cache``): an upstream's error may quote its own database or proxy URL, and the
#: text reaches the client, call records, spans and logs. The scheme and user stay readable.
#: The match starts at ``://`` (a scheme's character before it), not at the scheme: a pattern
#: starting at the scheme tried each word of a long ``a.b.c...`` or ``a-b-c...`` run to its end,
#: seconds for 40 KB and hours for a megabyte, on the event loop. The password runs to the
#: authority's last ``@``, as URL parsers read it: ``u:p@ss@db`` has the password ``p@ss``.
_URL_PASSWORD = re.compile(r"(?<=[A-Za-z0-9+.-])(://[^\s/?#@:]*:)[^\s/?#]+(?=@)")


def redact(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """``text`` with each of ``secrets`` (4 characters or more) and anything shaped like a key,
    a token or a URL's password replaced by :data:`REDACTED`."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(REDACTED, _URL_PASSWORD.sub(rf"\1{REDACTED}", text))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials a URL carries (``https://user:password@host``) in every form an upstream
    could echo them: the password as written and decoded, and the ``Basic`` header value the
    transport builds from them."""
    if not url or "@" not in url:
        return ()
    from base64 import b64encode
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return ()
    if password is None:
        return ()
    pair = f"{unquote(username or '')}:{unquote(password)}".encode()
    return (password, unquote(password), b64encode(pair).decode("ascii"))


__all__ = ["REDACTED", "redact", "url_secrets"]
