"""What an upstream's failure becomes for the caller, with what the call sent masked in it.

Providers echo a rejected key back ("Incorrect API key provided: sk-..."), in an error response
and just as well in an error that arrives inside a 200 (an OpenAI stream's ``data: {"error":
...}``, a JSON body holding ``error``, Anthropic's ``event: error``) or in the body a malformed
answer keeps. A direct call's error goes straight to the caller's logs, with no gateway record to
scrub it on the way (as ``traces`` does), so every error raised from an upstream's answer, its
status, its body or its stream, is scrubbed here with the same secrets.
"""

from __future__ import annotations

from typing import TypeVar

from ._errors import ProviderError, scrub, url_secrets
from ._http import HttpResponse
from ._resolve import Target

_E = TypeVar("_E", bound=BaseException)


def call_secrets(target: Target) -> tuple[str, ...]:
    """What a call to ``target`` sends that its upstream could echo: the key, and the
    credentials its base_url carries."""
    return ((target.api_key,) if target.api_key else ()) + url_secrets(target.cfg.base_url)


def scrubbed(target: Target, error: _E) -> _E:
    """``error``, raised from ``target``'s answer, with the call's secrets masked in place."""
    scrub(error, call_secrets(target))
    return error


def upstream_error(target: Target, resp: HttpResponse) -> ProviderError:
    """The adapter's error for an error response, scrubbed."""
    return scrubbed(target, target.adapter.parse_error(resp, target.model))
