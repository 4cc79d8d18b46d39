"""Reprs of configuration values that never show a credential.

Users print a ``Settings``, a ``ModelEntry`` or a ``ProviderConfig`` while debugging, and a
traceback renderer (``rich``, pytest's assertion rewriting, Sentry's captured locals) prints
them for them. The default dataclass repr showed every field raw: a store or Redis URL with its
password, a ``base_url`` with ``?api-key=``, ``additional_config``'s ``aws_secret_access_key``
or ``client_secret``, an ``Authorization`` header. :func:`masked_repr` is the dataclass repr
with those parts masked, by the package's one rule for what is secret
(:mod:`cloverleaf._secret_urls`, the rule error messages and the admin API use too):

- a mapping key named like a credential (``additional_config``'s ``client_secret`` or
  ``aws_session_token``, an ``Authorization`` header) shows :data:`REDACTED` instead of its text;
  the classes' own fields are not judged by name (``api_key_env`` names a variable, and
  ``key_problem`` says why a key fails): a secret field is declared ``repr=False``, and is
  shown only as set or not (``api_key=<set>``), which is what a reader debugging a missing key
  needs to know;
- any text holding ``://`` is shown as :func:`~cloverleaf._secret_urls.masked_url` shows it
  (the password of ``user:password@`` and credential-named query values masked), so the host,
  the database and the path stay readable;
- mappings, lists and tuples are walked; a nested dataclass brings its own repr (each of the
  package's config classes uses this one), so a ``Settings`` holding ``ModelEntry`` values is
  masked all the way down.

Numbers, booleans and None are shown even under a secret-looking name (``max_tokens``,
``key_cache_seconds``): they are never a credential, and they are what a reader looks for.
A ``repr=False`` field whose name is not a credential's (``Settings.env``, which holds the
whole environment) stays out, as in the dataclass repr.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._errors import REDACTED
from ._secret_urls import is_secret_name, masked_url

#: How a ``repr=False`` credential field that holds a value is shown.
SET = "<set>"
_PLAIN = (bool, int, float, type(None))


def shown(value: Any, name: str = "") -> Any:
    """``value`` as a repr may show it: what ``name`` (its field or key) or its own text marks as
    a credential masked, containers walked. Other values are returned as they are."""
    if isinstance(value, _PLAIN):
        return value
    if name and is_secret_name(name):
        return REDACTED if value not in ("", b"") else value
    if isinstance(value, str):
        return masked_url(value, REDACTED) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: shown(v, k if isinstance(k, str) else "") for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(shown(v) for v in value)
    return value


def masked_repr(obj: Any) -> str:
    """The dataclass repr of ``obj`` (``Name(field=value, ...)``) with every credential masked
    and each ``repr=False`` credential field shown only as set or not (see the module)."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.repr:
            parts.append(f"{f.name}={shown(value)!r}")
        elif is_secret_name(f.name):
            parts.append(f"{f.name}={SET if value else None}")
    return f"{type(obj).__qualname__}({', '.join(parts)})"


__all__ = ["REDACTED", "SET", "masked_repr", "shown"]
