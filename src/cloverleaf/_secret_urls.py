"""Which names carry a credential, and a URL shown with those parts masked.

One rule for every place that shows a URL or a ``name=value`` pair: the admin API and the
dashboard (a model entry's ``base_url``), a CLI dry run, ``doctor``, error messages and logs
(:func:`cloverleaf._secret_text.redact` masks query values by the same words). Two lists used to
disagree: errors redacted ``api-key=...`` while the admin API showed it, because the API
masked only a few exact names (``key``, ``token``, ...).

A name is a credential's when, lower-cased with ``-`` read as ``_``, it *contains* one of
:data:`SECRET_WORDS`: ``api-key``, ``x-api-key``, ``X-Amz-Signature``, ``access_token``,
``password``, ``sig`` (a SAS URL), ``code`` (Azure Functions), ``session``. Matching a part of
the name, not a list of whole names, errs on the side of hiding: a parameter that only looks
like one (``keyword=``) is masked too, which costs a look at the stored value, never a leak.
What a base_url usually carries besides (``api-version``, ``alt``, ``region``, ``deployment``)
does not match and stays readable.

In a URL the credentials are the password of ``user:password@`` (or a bare ``token@``, which
is how some proxies take a key) and the values of credential-named query parameters; the rest
of the URL is kept byte for byte, so the shown URL says exactly what is stored around them.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

#: Parts of a name that mark its value as a credential (see the module).
SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "pwd", "sig", "signature", "credential", "auth",
                "code", "session")
#: The words as a regular expression (case-insensitive), for :func:`cloverleaf._secret_text.redact`.
SECRET_WORD_PATTERN = "(?:" + "|".join(SECRET_WORDS) + ")"
_SECRET_WORD = re.compile(SECRET_WORD_PATTERN)


def is_secret_name(name: str) -> bool:
    """Does a query parameter (or header, or setting) of this name carry a credential?"""
    return bool(_SECRET_WORD.search(name.lower().replace("-", "_")))


def masked_userinfo(netloc: str, mask: str) -> str:
    """``netloc`` with the password of its ``user:password@`` masked (a bare ``token@``
    masked whole); a netloc without ``@`` unchanged."""
    if "@" not in netloc:
        return netloc
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{mask}@{host}" if colon else f"{mask}@{host}"


def masked_query(query: str, mask: str) -> str:
    """``query`` with each credential-named parameter's value replaced by ``mask``; every other
    byte as it was (no re-encoding of the parameters around them)."""
    if not query:
        return query
    out = []
    for part in re.split(r"([&;])", query):   # ``;`` separates parameters too (an older form)
        name, eq, value = part.partition("=")
        out.append(f"{name}={mask}" if eq and value and is_secret_name(unquote_plus(name)) else part)
    return "".join(out)


def masked_url(url: str, mask: str) -> str:
    """``url`` as it may be shown: credentials masked (see the module). A URL that cannot be
    taken apart is ``mask`` whole: it may hold a password where a parser would not see it."""
    try:
        parts = urlsplit(url)
        parts.port   # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return mask
    # a fragment is never sent, but an OAuth-style ``#access_token=...`` is still a credential
    return urlunsplit(parts._replace(netloc=masked_userinfo(parts.netloc, mask),
                                     query=masked_query(parts.query, mask), fragment=masked_query(parts.fragment, mask)))


__all__ = ["SECRET_WORDS", "SECRET_WORD_PATTERN", "is_secret_name", "masked_query", "masked_url", "masked_userinfo"]
