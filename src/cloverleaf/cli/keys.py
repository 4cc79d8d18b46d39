"""``cloverleaf keys``: create, list, change and revoke a running server's virtual keys through
its admin API (``/admin/keys``). No cloverleaf.toml is read: the master key comes from
``CLOVERLEAF_MASTER_KEY``, the server from ``--url`` or ``CLOVERLEAF_URL``.

``keys create`` and ``keys update`` take every field of the admin API's keys, each as an option
(:data:`OPTIONS`), and check the body they build by the API's own rules
(:mod:`cloverleaf.server.key_fields`) before sending it: the same values are refused in the same
words (``--rpm: must be at least 1`` where the API says ``rpm: must be at least 1``), as a usage
error. ``keys update`` sends only the options given (``PATCH /admin/keys/{id}``), so what is left
out stays as it was; ``none`` (``--budget none``, ``--rpm none``, ``--expires-at none``,
``--metadata none``...) and ``--all-models``, ``--no-project``, ``--no-local-only`` remove a limit
rather than set one."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .common import table, usage_error

#: Each field of the admin API's keys (:data:`~cloverleaf.server.key_fields.KEY_FIELDS`) -> the
#: option that gives it (``--local-only`` and ``--no-local-only`` give ``privacy``).
OPTIONS = {"name": "--name", "allowed_models": "--models", "budget": "--budget", "budget_period": "--budget-period",
           "rpm": "--rpm", "tpm": "--tpm", "expires_at": "--expires-at", "expires_in_seconds": "--expires-in-seconds",
           "expires_in_days": "--expires-in-days", "metadata": "--metadata", "privacy": "--local-only",
           "project": "--project"}
_UPDATE_EPILOG = ("Only the options given change; the rest stay as they are. Remove a limit with none "
                  "(--budget none, --rpm none, --tpm none, --budget-period none: total, --expires-at none or "
                  "--expires-in-days none: never expires, --metadata none: {}), --all-models, --no-project or "
                  "--no-local-only.")
_EXPIRES_AT_HELP = ("when the key expires: a UTC date or time (2027-01-31, 2027-01-31T18:00, or with an offset) "
                    "or unix seconds")
_METADATA_HELP = ("a JSON object kept with the key (replaced whole); '{\"role\": \"admin\"}' lets the key sign in "
                  "to the dashboard")


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = ("Talks to a running `cloverleaf serve` through its admin API: the master key comes from "
                "CLOVERLEAF_MASTER_KEY (the one the server was started with), the server from --url or "
                "CLOVERLEAF_URL. cloverleaf.toml is not read.")
    url_help = "server URL (default $CLOVERLEAF_URL or http://127.0.0.1:4000)"
    p.add_argument("--url", default=os.environ.get("CLOVERLEAF_URL", "http://127.0.0.1:4000"), help=url_help)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="create a virtual key (the secret is shown once)")
    lst = sub.add_parser("list", help="list virtual keys (never their secrets)")
    u = sub.add_parser("update", help="change a key's name, models or limits (the rest stay as they are)",
                       description="Change a virtual key: only the options given change.", epilog=_UPDATE_EPILOG)
    r = sub.add_parser("revoke", help="revoke a key")
    for action in (u, r):
        action.add_argument("key_id", type=_key_id, help="the key's id (key_..., as `keys list` shows it)")
    for action in (c, lst, u, r):  # `keys create --url U` as well as `keys --url U create`
        action.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    c.add_argument("--name", required=True, help="a name for people to know the key by")
    c.add_argument("--models", dest="allowed_models", type=_model_list,
                   help="comma-separated models or routes this key may use (default: all)")
    c.add_argument("--budget", type=_number, help="budget in USD")
    c.add_argument("--budget-period", help="what the budget is per: day, month or total (default: total)")
    c.add_argument("--rpm", type=_number, help="requests per minute")
    c.add_argument("--tpm", type=_number, help="tokens per minute")
    expiry = c.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in-days", type=_number, help="expire after this many days")
    expiry.add_argument("--expires-in-seconds", type=_number, help="expire after this many seconds")
    expiry.add_argument("--expires-at", type=_time, help=_EXPIRES_AT_HELP)
    c.add_argument("--metadata", type=_json, help=_METADATA_HELP)
    c.add_argument("--local-only", dest="privacy", action="store_const", const="local-only",
                   help="every call made with this key may only reach local targets (privacy = local-only)")
    c.add_argument("--project", help="every call made with this key runs as this project: its [budgets.NAME] "
                                     "scope = \"project\" budgets, and spend by project (default: none)")
    _add_update_arguments(u)


def _add_update_arguments(u: argparse.ArgumentParser) -> None:
    """``keys update``'s options: those of ``create``, each also a way back to no limit. Left
    out, an option is absent from the arguments (SUPPRESS), so it is not sent and stays as is."""
    keep = argparse.SUPPRESS
    u.add_argument("--name", default=keep, help="a new name for the key")
    models = u.add_mutually_exclusive_group()
    models.add_argument("--models", dest="allowed_models", type=_model_list, default=keep,
                        help="comma-separated models or routes this key may use from now on")
    models.add_argument("--all-models", dest="allowed_models", action="store_const", const=[], default=keep,
                        help="let the key use every model (removes --models)")
    u.add_argument("--budget", type=_or_none(_number), default=keep, metavar="USD|none",
                   help="budget in USD; none: no budget")
    u.add_argument("--budget-period", type=_or_none(str), default=keep, metavar="day|month|total|none",
                   help="what the budget is per; none: total")
    u.add_argument("--rpm", type=_or_none(_number), default=keep, metavar="N|none",
                   help="requests per minute; none: no limit")
    u.add_argument("--tpm", type=_or_none(_number), default=keep, metavar="N|none",
                   help="tokens per minute; none: no limit")
    expiry = u.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in-days", type=_or_none(_number), default=keep, metavar="DAYS|none",
                        help="expire this many days from now; none: never expire")
    expiry.add_argument("--expires-in-seconds", type=_or_none(_number), default=keep, metavar="SECONDS|none",
                        help="expire this many seconds from now; none: never expire")
    expiry.add_argument("--expires-at", type=_or_none(_time), default=keep, metavar="TIME|none",
                        help=_EXPIRES_AT_HELP + "; a time already past expires the key now; none: never expire")
    u.add_argument("--metadata", type=_or_none(_json), default=keep, metavar="JSON|none",
                   help=_METADATA_HELP + "; none: {}")
    privacy = u.add_mutually_exclusive_group()
    privacy.add_argument("--local-only", dest="privacy", action="store_const", const="local-only", default=keep,
                         help="every call made with this key may only reach local targets")
    privacy.add_argument("--no-local-only", dest="privacy", action="store_const", const="any", default=keep,
                         help="calls made with this key may reach any target again")
    project = u.add_mutually_exclusive_group()
    project.add_argument("--project", default=keep, help="every call made with this key runs as this project")
    project.add_argument("--no-project", dest="project", action="store_const", const=None, default=keep,
                         help="the key belongs to no project")


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type taking what ``parse`` takes, or ``none`` (any case): None, sent as null,
    which removes the limit."""
    def value_or_none(text: str) -> Any:
        if text.strip().lower() == "none":
            return None
        try:
            return parse(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, or none to remove the limit") from None

    value_or_none.__name__ = getattr(parse, "__name__", "value")   # argparse names it in "invalid ... value"
    return value_or_none


def run(name: str, args: argparse.Namespace) -> int:
    return _keys(args)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The admin API's body from the options given (for ``update`` only those; none at all is a
    usage error), checked by the API's own rules: a value it would refuse is a usage error in its
    words, before anything is sent."""
    if args.action == "create":
        body = {field: getattr(args, field) for field in OPTIONS if getattr(args, field, None) is not None}
    else:
        body = {field: getattr(args, field) for field in OPTIONS if hasattr(args, field)}
        if not body:
            usage_error("nothing to change: give at least one of --name, --models, --all-models, --budget, "
                        "--budget-period, --rpm, --tpm, --expires-in-days, --expires-in-seconds, --expires-at, "
                        "--metadata, --local-only, --no-local-only, --project, --no-project "
                        "(see `cloverleaf keys update --help`)")
    from ..server.errors import BadRequest
    from ..server.key_fields import key_fields

    try:
        key_fields(body, time.time(), creating=args.action == "create")
    except BadRequest as err:
        usage_error(_in_options(err.message))
    return body


def _in_options(message: str) -> str:
    """The admin API's message with its fields named as this command's options
    (``expires_in_days: must be above 0`` -> ``--expires-in-days: must be above 0``)."""
    field, sep, problem = message.partition(": ")
    field = field.partition("[")[0]    # allowed_models[3]: one of --models
    if sep and field in OPTIONS:
        message = f"{OPTIONS[field]}: {problem}"
    for name in sorted((n for n in OPTIONS if "_" in n), key=len, reverse=True):
        message = re.sub(rf"(?<![\w-]){name}\b", OPTIONS[name], message)
    return message


def _shown(ts: float | None) -> str:
    """An optional time from the admin API (epoch seconds) for a table: blank when unset."""
    import datetime as dt

    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _limits(key: dict[str, Any]) -> str:
    """What a key may do now, on one line (``keys update`` prints it after the change)."""
    budget, expires = key.get("budget"), key.get("expires_at")
    return "; ".join((f"models {','.join(key.get('allowed_models') or []) or 'all'}",
                      f"budget {'none' if budget is None else f'${budget} per {_period(key)}'}",
                      f"rpm {key.get('rpm') or 'none'}", f"tpm {key.get('tpm') or 'none'}",
                      f"privacy {key.get('privacy') or 'any'}", f"project {key.get('project') or 'none'}",
                      f"expires {_shown(expires) if expires is not None else 'never'}"))


def _period(key: dict[str, Any]) -> str:
    """What a key's budget is per, in words (``total``: ever)."""
    return str(key.get("budget_period") or "total")


#: What the server's key ids look like (``key_`` and hex; a little wider, never "/", ".", "?" or "%").
_KEY_ID = re.compile(r"key_[A-Za-z0-9_-]{1,60}")


def _key_id(text: str) -> str:
    """A virtual key's id, refused otherwise: it goes into the admin URL, where ``../models/x``
    (resolved as a path) revoked nothing and DELETED the model entry ``x`` instead, and
    ``key_abc?x`` revoked ``key_abc``."""
    if not _KEY_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a key id: ids look like key_0123456789abcdef "
                                         "(see `cloverleaf keys list`)")
    return text


def _model_list(text: str) -> list[str]:
    """``--models``: the names in a comma-separated list, at least one. ``--models ","`` (or a
    blank value from an unset variable) sent an empty list, and the key was made for every model:
    the opposite of what a restriction was given for."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        raise argparse.ArgumentTypeError(f"{text!r} names no model; list models or routes (e.g. --models "
                                         "'smart,fake/*'), or leave --models out for a key that may use all")
    return models


def _number(text: str) -> int | float:
    """A number as JSON would carry it (``5`` an integer, ``1.5`` and ``nan`` not): whether it
    fits the field is :mod:`~cloverleaf.server.key_fields`'s to say, in the admin API's words."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:80]!r}") from None


def _time(text: str) -> float:
    """``--expires-at``: unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    import datetime as dt

    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date or time such as 2027-01-31 or 2027-01-31T18:00Z, or unix "
                                         f"seconds, got {text[:80]!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _json(text: str) -> Any:
    """``--metadata``: JSON text (that it is an object is checked with the other fields)."""
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}); give an object such as '{{\"team\": \"search\"}}'"
                                         ) from None


def _keys(args: argparse.Namespace) -> int:
    import httpx

    body = _body(args) if args.action in ("create", "update") else {}   # a usage error before anything else
    master = os.environ.get("CLOVERLEAF_MASTER_KEY")
    if not master:
        raise SystemExit("error: set CLOVERLEAF_MASTER_KEY to the server's master key to manage virtual keys")
    headers = {"authorization": f"Bearer {master}"}
    if not args.url.startswith(("http://", "https://")):
        raise SystemExit(f"error: --url {args.url!r} needs its scheme: http://{args.url}")
    base = args.url.rstrip("/") + "/admin/keys"
    keys: list[dict[str, Any]] = []
    try:
        with httpx.Client(timeout=30) as http:
            if args.action == "create":
                r = http.post(base, json=body, headers=headers)
            elif args.action == "list":
                r, keys = _every_key(http, base, headers, args.url)
            elif args.action == "update":
                r = http.patch(f"{base}/{quote(args.key_id, safe='')}", json=body, headers=headers)
            else:
                r = http.delete(f"{base}/{quote(args.key_id, safe='')}", headers=headers)
    except httpx.ConnectError:
        raise SystemExit(f"error: could not connect to {args.url}; start the server with `cloverleaf serve`, or "
                         "give its address with --url (or $CLOVERLEAF_URL)") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:     # a dropped connection, a timeout, a malformed --url
        raise SystemExit(f"error: no answer from {args.url} ({type(exc).__name__}: {exc}); --url must be a "
                         "running `cloverleaf serve`") from None
    data = _admin_answer(r, args.url, {"create": ("id", "key"), "list": ("data",), "update": ("id",)}
                         .get(args.action, ()))
    if args.action == "create":
        print(f"created key {data['id']} ({data.get('name')})"
              + (f" in project {data['project']}" if data.get("project") else ""))
        print(f"secret: {data['key']}")
        print("store it now: it is shown only once", file=sys.stderr)
    elif args.action == "list":
        table(("id", "name", "models", "privacy", "project", "budget", "spent", "rpm", "tpm", "expires", "revoked"),
              [(k["id"], k.get("name"), ",".join(k.get("allowed_models") or []) or "all", k.get("privacy") or "any",
                k.get("project") or "-",
                "" if k.get("budget") is None else f"{k['budget']}/{_period(k)}", k.get("spent"), k.get("rpm"), k.get("tpm"),
                _shown(k.get("expires_at")), _shown(k.get("revoked_at")))
               for k in keys])
    elif args.action == "update":
        print(f"updated key {data['id']} ({data.get('name')})"
              + (f" in project {data['project']}" if data.get("project") else ""))
        print(_limits(data))
    else:
        print(f"revoked key {args.key_id}")
    return 0


def _every_key(http: Any, base: str, headers: dict[str, str], url: str) -> tuple[Any, list[dict[str, Any]]]:
    """Every key, page after page (``GET /admin/keys`` answers a page and the ``next`` to go on
    from): the last answer, and the keys of all pages. A server from before pages answers them
    all at once, without ``next``."""
    keys: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    while True:
        r = http.get(base, headers=headers, params=params)
        if r.status_code >= 400:
            return r, keys
        data = _admin_answer(r, url, ("data",))
        keys.extend(data["data"])
        following = data.get("next")
        if not following:
            return r, keys
        params = {"after": following}


def _admin_answer(r: Any, url: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The admin API's JSON object, or a message: an error status with the server's own words,
    and anything that is not the admin API (a web page, another service) said plainly."""
    try:
        data = r.json()
    except ValueError:
        data = None
    if r.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        msg = error.get("message") if isinstance(error, dict) else None
        raise SystemExit(f"error: {r.status_code}: {msg or r.text[:300]}")
    if not isinstance(data, dict) or any(k not in data for k in required):
        kind = r.headers.get("content-type") or "no content type"
        raise SystemExit(f"error: {url} did not answer as cloverleaf's admin API (HTTP {r.status_code}, {kind}); "
                         "--url must be a running `cloverleaf serve`")
    return data

