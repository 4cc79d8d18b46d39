"""What an upstream's failure becomes for the caller, with what the call sent masked in it.

Providers echo a rejected key back ("Incorrect API key provided: sk-..."), in an error response
and just as well in an error that arrives inside a 200 (an OpenAI stream's ``data: {"error":
...}``, a JSON body holding ``error``, Anthropic's ``event: error``) or in the body a malformed
answer keeps. A direct call's error goes straight to the caller's logs, with no gateway record to
scrub it on the way (as ``traces`` does), so every error raised from an upstream's answer, its
status, its body or its stream, is scrubbed here with the same secrets.

A 3xx is an error too (:class:`~cloverleaf.RedirectError`): the transports never follow a
redirect, since the request carries the key, so the caller is told where the API went instead.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from ._errors import REDACTED, ProviderError, RedirectError, scrub, url_secrets
from ._http import HttpResponse
from ._resolve import Target
from ._secret_headers import header_secrets
from ._secret_urls import masked_url

_E = TypeVar("_E", bound=BaseException)


def call_secrets(target: Target) -> tuple[str, ...]:
    """What a call to ``target`` sends that its upstream could echo: the key, the credentials
    its base_url carries, and the secrets among its configured headers."""
    return (((target.api_key,) if target.api_key else ()) + url_secrets(target.cfg.base_url)
            + header_secrets(target.cfg.headers))


def scrubbed(target: Target, error: _E) -> _E:
    """``error``, raised from ``target``'s answer, with the call's secrets masked in place."""
    scrub(error, call_secrets(target))
    return error


def upstream_error(target: Target, resp: HttpResponse) -> ProviderError:
    """The adapter's error for an error response (any status but a 2xx), scrubbed."""
    if 300 <= resp.status < 400:
        return scrubbed(target, redirect_error(target, resp))
    return scrubbed(target, target.adapter.parse_error(resp, target.model))


def redirect_error(target: Target, resp: HttpResponse) -> ProviderError:
    """A 3xx as the caller can act on it (a :class:`RedirectError`): where the upstream says the
    API is, and the base_url that points there."""
    base_url = masked_url(target.cfg.base_url or "", REDACTED)
    location = resp.headers.get("location")
    if not location:
        message = (f"the upstream answered {resp.status}, a redirect, naming no Location; redirects are not followed "
                   f"(the key would go along), so check that base_url {base_url} is the API's address")
    else:
        try:
            moved = urljoin(resp.url, location) if resp.url else location   # a Location may be relative
        except ValueError:   # not a URL at all: shown as sent (masked)
            moved = location
        message = (f"the upstream answered {resp.status}, a redirect to {masked_url(moved, REDACTED)}; redirects are "
                   f"not followed (the key would go along), so set base_url to "
                   f"{masked_url(_base_url_for(moved, resp.url, target.cfg.base_url), REDACTED)} (it is {base_url})")
    return target.adapter.make_error(RedirectError, message, resp, model=target.model)


def _base_url_for(moved: str, sent: str, base_url: str | None) -> str:
    """The base_url whose request would have gone to ``moved``: ``moved`` less the path the call
    added to base_url (``/chat/completions``) when it ends with that path, else ``moved``."""
    try:
        to, sent_path = urlsplit(moved), urlsplit(sent).path
        base_path = urlsplit(base_url or "").path.rstrip("/")
    except ValueError:
        return moved
    added = sent_path[len(base_path):] if base_url and sent_path.startswith(base_path) else ""
    if not added.strip("/") or not to.path.endswith(added):
        return moved
    return urlunsplit(to._replace(path=to.path[: len(to.path) - len(added)], query="", fragment=""))
