"""A virtual key's fields and what each may hold: one set of rules for ``POST`` and ``PATCH
/admin/keys``, the dashboard's Keys form and ``cloverleaf keys create|update``, so that the three
accept the same values and refuse the same ones in the same words. The CLI checked its options
with rules of its own (``--rpm 1.5`` and ``--budget 2e12`` each said something else than the
API, or nothing before the server did) and lacked fields the API took; now it builds the same
body and checks it here before sending it.

Null (``none`` on the CLI) is the field's default: on ``POST`` the same as leaving it out, on
``PATCH`` the way back to it — no budget, no rpm or tpm, every model, never expires, no
project, privacy ``any``, ``metadata`` ``{}``, ``budget_period`` ``total``. The one exception
is ``name``: a key without one is a key nobody can tell apart, so null is refused (leave it out
on ``POST``; on ``PATCH`` a name is changed, not removed), as a blank one is.

No I/O and nothing from the server's extras (no SQLAlchemy, no Starlette): ``cloverleaf keys``
runs where only the SDK is installed. What only the store knows — the name's column length, the
project rule derived from the columns — the admin API passes in; the CLI leaves it to the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _jsoncodec as jsoncodec
from .fields import MAX_MODEL_CHARS, bad, get_dict, get_int, get_list, get_number, get_str

#: The fields of ``POST`` and ``PATCH /admin/keys``, in the order they are checked and listed.
KEY_FIELDS = ("name", "allowed_models", "budget", "budget_period", "rpm", "tpm", "expires_at",
              "expires_in_seconds", "expires_in_days", "metadata", "privacy", "project")
#: The ways of giving an expiry: one per request (each says the same thing).
EXPIRY_FIELDS = ("expires_at", "expires_in_seconds", "expires_in_days")
#: A virtual key's ``allowed_models``: at most this many names or patterns. Every call with the
#: key is checked against each, and every listing and key cache holds them all; a body of 200,000
#: names was stored as it came.
KEY_MODELS_MAX = 1_000
#: A virtual key's ``metadata``: at most this many bytes of JSON, as a trace's.
KEY_METADATA_BYTES = 16_384
BUDGET_MAX = 1e12
RATE_MAX = 1_000_000_000        # bounds keep numbers inside what every database column holds
FAR = 10_000 * 365 * 86400.0    # expiry: at most ~10,000 years from the epoch
PERIODS = ("day", "month", "total")
PRIVACIES = ("any", "local-only")


def key_fields(body: dict[str, Any], now: float, *, creating: bool,
               check_name: Callable[[str], str] | None = None,
               check_project: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The stored values of a key's fields from a ``POST`` (``creating``) or ``PATCH`` body, or
    a 400 naming the first field that is wrong and what to do. ``check_name`` and
    ``check_project``: the store's own rules for text it keeps (the admin API's; the CLI has
    none and leaves them to the server).

    An ``expires_at`` already past is a 400 on create — the key would be dead from birth, as
    ``expires_in_seconds: 0`` is refused — and accepted on update, where it expires the key now:
    a pause an operator undoes with a later ``expires_at`` or ``null`` (revoking is final)."""
    _only_key_fields(body)
    out: dict[str, Any] = {}
    if "name" in body:
        out["name"] = _name(body, creating, check_name)
    if "allowed_models" in body:
        out["allowed_models"] = _allowed_models(body)
    if "budget" in body:
        out["budget"] = get_number(body, "budget", "", minimum=0, maximum=BUDGET_MAX)
    if "budget_period" in body:
        period = get_str(body, "budget_period", "")
        if period is not None and period not in PERIODS:
            raise bad("budget_period", "expected 'day', 'month' or 'total' (null: total, what the key spends "
                                       "ever)")
        out["budget_period"] = None if period == "total" else period
    for name in ("rpm", "tpm"):
        if name in body:
            out[name] = get_int(body, name, "", minimum=1, maximum=RATE_MAX)
    out.update(_expiry(body, now, creating))
    if "metadata" in body:
        out["metadata"] = get_dict(body, "metadata", "") or {}
        if len(jsoncodec.dumps(out["metadata"])) > KEY_METADATA_BYTES:
            raise bad("metadata", f"must be at most {KEY_METADATA_BYTES} bytes of JSON; keep larger data elsewhere "
                                  "and store a reference to it here")
    if "privacy" in body:
        privacy = get_str(body, "privacy", "")
        if privacy is not None and privacy not in PRIVACIES:
            raise bad("privacy", "expected 'local-only' (every call with this key stays local), 'any' or null")
        out["privacy"] = None if privacy == "any" else privacy
    if "project" in body:   # null: the key belongs to no project
        project = get_str(body, "project", "")
        out["project"] = None if project is None or check_project is None else check_project(project)
    return out


def _only_key_fields(body: dict[str, Any]) -> None:
    """A 400 naming a field a key does not have, and the ones it has: a field the API does not
    read would otherwise be dropped, and the key made without what it was sent for."""
    for name in body:
        if name not in KEY_FIELDS:
            err = bad(name, f"not a field of a virtual key; remove it (a key's fields are {', '.join(KEY_FIELDS)})")
            err.code = "unknown_field"
            raise err


def _name(body: dict[str, Any], creating: bool, check_name: Callable[[str], str] | None) -> str:
    name = get_str(body, "name", "")
    if name is None:
        raise bad("name", "null is not a name: give the key a name people can tell it apart by (e.g. \"ci-bot\")"
                          + (", or leave name out" if creating else "; a key's name is changed, never removed"))
    if not name.strip():   # as `keys create --name " "` is refused
        raise bad("name", "is blank: give the key a name people can tell it apart by (e.g. \"ci-bot\")")
    return name if check_name is None else check_name(name)


def _allowed_models(body: dict[str, Any]) -> list[str]:
    """The key's models: names or ``*`` patterns a call's model could match — each 1 to
    ``MAX_MODEL_CHARS`` characters without NUL, as a request's ``model`` must be (a longer one
    matched no call) — and at most ``KEY_MODELS_MAX`` of them (every call is checked against each).
    Empty or null: every model."""
    models = get_list(body, "allowed_models", "") or []
    if not all(isinstance(m, str) and m for m in models):
        raise bad("allowed_models", "expected an array of model or route names ('fake/*' patterns allowed)")
    if len(models) > KEY_MODELS_MAX:
        raise bad("allowed_models", f"at most {KEY_MODELS_MAX} names or patterns (this has {len(models)}); "
                                    "use a pattern such as 'openai/*' for a family of models")
    for i, model in enumerate(models):
        if "\x00" in model or len(model) > MAX_MODEL_CHARS:
            raise bad(f"allowed_models[{i}]", f"must be at most {MAX_MODEL_CHARS} characters without NUL "
                                              "(\\u0000), as a request's model is: no call could match it")
    return list(models)


def _expiry(body: dict[str, Any], now: float, creating: bool) -> dict[str, Any]:
    """``expires_at`` from whichever of the three ways it was given. Two of them in one body was
    last-one-wins, silently (``expires_at`` and ``expires_in_days`` together kept the days)."""
    given = [name for name in EXPIRY_FIELDS if name in body]
    if len(given) > 1:
        raise bad(given[1], f"give only one of {', '.join(given)}: each sets when the key expires")
    if not given:
        return {}
    name = given[0]
    if name == "expires_at":
        at = get_number(body, "expires_at", "", minimum=0, maximum=FAR)
        if creating and at is not None and at <= now:
            raise bad("expires_at", f"is in the past ({at:.0f}; the server's time is {now:.0f}, unix seconds): "
                                    "the key would never work; give a later time, or expires_in_days / "
                                    "expires_in_seconds")
        return {"expires_at": at}
    unit = 1.0 if name == "expires_in_seconds" else 86400.0
    amount = get_number(body, name, "", minimum=0, maximum=FAR / unit)
    if amount == 0:
        raise bad(name, "must be above 0: a key that expires now has already expired (revoke a key to end it "
                        "now, or give expires_at)")
    return {"expires_at": None if amount is None else now + amount * unit}


__all__ = ["EXPIRY_FIELDS", "KEY_FIELDS", "KEY_METADATA_BYTES", "KEY_MODELS_MAX", "key_fields"]
