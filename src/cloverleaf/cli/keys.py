"""``cloverleaf keys``: create, list, change and revoke a running server's virtual keys through
its admin API (``/admin/keys``). No cloverleaf.toml is read: the master key comes from
``CLOVERLEAF_MASTER_KEY``, the server from ``--url`` or ``CLOVERLEAF_URL``.

``keys update`` sends only the options given (``PATCH /admin/keys/{id}``), so what is left out
stays as it was; ``none`` (``--budget none``, ``--rpm none``, ``--expires-in-days none``) and
``--all-models``, ``--no-project``, ``--no-local-only`` remove a limit rather than set one."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .common import at_least_one, finite_number, table, usage_error

#: What ``keys update`` may change: its destination in the arguments -> the admin API's field.
UPDATABLE = {"name": "name", "models": "allowed_models", "budget": "budget", "rpm": "rpm", "tpm": "tpm",
             "expires_in_days": "expires_in_days", "privacy": "privacy", "project": "project"}
_UPDATE_EPILOG = ("Only the options given change; the rest stay as they are. Remove a limit with none "
                  "(--budget none, --rpm none, --tpm none, --expires-in-days none: never expires), "
                  "--all-models, --no-project or --no-local-only.")


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
    c.add_argument("--name", required=True, type=_key_name, help="a name for people to know the key by")
    c.add_argument("--models", type=_model_list,
                   help="comma-separated models or routes this key may use (default: all)")
    c.add_argument("--budget", type=finite_number, help="budget in USD")
    c.add_argument("--rpm", type=at_least_one, help="requests per minute")
    c.add_argument("--tpm", type=at_least_one, help="tokens per minute")
    c.add_argument("--expires-in-days", type=_positive, help="expire after this many days")
    c.add_argument("--local-only", action="store_true",
                   help="every call made with this key may only reach local targets (privacy = local-only)")
    c.add_argument("--project", help="every call made with this key runs as this project: its [budgets.NAME] "
                                     "scope = \"project\" budgets, and spend by project (default: none)")
    _add_update_arguments(u)


def _add_update_arguments(u: argparse.ArgumentParser) -> None:
    """``keys update``'s options: those of ``create``, each also a way back to no limit. Left
    out, an option is absent from the arguments (SUPPRESS), so it is not sent and stays as is."""
    keep = argparse.SUPPRESS
    u.add_argument("--name", type=_key_name, default=keep, help="a new name for the key")
    models = u.add_mutually_exclusive_group()
    models.add_argument("--models", type=_model_list, default=keep,
                        help="comma-separated models or routes this key may use from now on")
    models.add_argument("--all-models", dest="models", action="store_const", const=[], default=keep,
                        help="let the key use every model (removes --models)")
    u.add_argument("--budget", type=_or_none(finite_number), default=keep, metavar="USD|none",
                   help="budget in USD; none: no budget")
    u.add_argument("--rpm", type=_or_none(at_least_one), default=keep, metavar="N|none",
                   help="requests per minute; none: no limit")
    u.add_argument("--tpm", type=_or_none(at_least_one), default=keep, metavar="N|none",
                   help="tokens per minute; none: no limit")
    u.add_argument("--expires-in-days", type=_or_none(_positive), default=keep, metavar="DAYS|none",
                   help="expire this many days from now; none: never expire")
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


def _update_body(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body: the options given, and only those; none at all is a usage error."""
    body = {field: getattr(args, dest) for dest, field in UPDATABLE.items() if hasattr(args, dest)}
    if not body:
        usage_error("nothing to change: give at least one of --name, --models, --all-models, --budget, --rpm, "
                    "--tpm, --expires-in-days, --local-only, --no-local-only, --project, --no-project "
                    "(see `cloverleaf keys update --help`)")
    return body


def _shown(ts: float | None) -> str:
    """An optional time from the admin API (epoch seconds) for a table: blank when unset."""
    import datetime as dt

    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _limits(key: dict[str, Any]) -> str:
    """What a key may do now, on one line (``keys update`` prints it after the change)."""
    budget, expires = key.get("budget"), key.get("expires_at")
    return "; ".join((f"models {','.join(key.get('allowed_models') or []) or 'all'}",
                      f"budget {'none' if budget is None else f'${budget}'}",
                      f"rpm {key.get('rpm') or 'none'}", f"tpm {key.get('tpm') or 'none'}",
                      f"privacy {key.get('privacy') or 'any'}", f"project {key.get('project') or 'none'}",
                      f"expires {_shown(expires) if expires is not None else 'never'}"))


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


def _key_name(text: str) -> str:
    """A key's name, refused when blank: a key listed without a name is one nobody can tell apart."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the key a name (e.g. --name ci-bot)")
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


def _positive(text: str) -> float:
    """A finite number above 0 (a key that expires at once is of no use)."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of days above 0, got {text!r}")
    return value


def _keys(args: argparse.Namespace) -> int:
    import httpx

    changes = _update_body(args) if args.action == "update" else {}   # a usage error before anything else
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
                body: dict[str, Any] = {"name": args.name}
                if args.models is not None:
                    body["allowed_models"] = args.models
                for field in ("budget", "rpm", "tpm", "expires_in_days"):
                    if getattr(args, field) is not None:
                        body[field] = getattr(args, field)
                if args.local_only:
                    body["privacy"] = "local-only"
                if args.project is not None:   # the server checks the name (a 400 saying the rule)
                    body["project"] = args.project
                r = http.post(base, json=body, headers=headers)
            elif args.action == "list":
                r, keys = _every_key(http, base, headers, args.url)
            elif args.action == "update":
                r = http.patch(f"{base}/{quote(args.key_id, safe='')}", json=changes, headers=headers)
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
                k.get("project") or "-", k.get("budget"), k.get("spent"), k.get("rpm"), k.get("tpm"),
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

