"""The admin API under ``/admin``, guarded by ``CLOVERLEAF_MASTER_KEY`` (off without it).

::

    GET/POST          /admin/models              registry entries (provider api_key is write-only)
    GET/PUT/PATCH/DELETE /admin/models/{name}
    GET/POST          /admin/keys                virtual keys (the secret is in the POST answer only);
                      GET pages: ?limit (1000 by default, at most 5000)&after=<the previous page's next>
    GET/PATCH         /admin/keys/{id}
    POST or DELETE    /admin/keys/{id}/revoke, /admin/keys/{id}   revoke (the row stays, for spend records)
    GET/POST          /admin/traces, GET /admin/traces/{id}, POST /admin/traces/{id}/complete
                      (in :mod:`.admin_traces`)
    GET               /admin/spend?by=model|provider|route|day|key|project[&since&until]
    GET               /admin/breakers[?state=open|half_open|closed&limit=N]   the noteworthy first, with a total

A provider ``api_key`` sent to ``/admin/models`` is encrypted before it reaches the store
and never returned (responses say ``"has_api_key": true``); credentials inside ``base_url`` and
``additional_config`` are shown masked (:mod:`.entry_secrets`). Entries from cloverleaf.toml
are listed with ``"source": "config"`` and are read-only here. The file is the source of truth:
an entry stored before the file named it too is ignored (:meth:`.Backend.install` warns), so
GET answers the file's, PUT and PATCH are a 409, and DELETE removes the stored one.

``PUT`` replaces an entry, but for its stored provider key: what ``GET`` shows holds no key, so
a script doing GET then PUT would otherwise delete it. The key changes only when ``api_key`` is
sent: a new key replaces it, ``""`` or ``null`` removes it. ``POST`` creates an entry in one
insert, so of several requests for one name exactly one gets a 201 and the others a 409.
An entry's ``provider`` is a built-in provider or one of cloverleaf.toml's ``[providers]``.
Every text field is checked against its column (:mod:`.admin_text`), so a value PostgreSQL
would refuse is a 400 naming the field on every store.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._errors import ConfigError
from ..gateway.store.keyset import Place, cursor_of, parse_cursor
from ..providers.registry import check_config_keys, kind_of, provider_names
from .admin_text import (
    ENTRY_NAME_CHARS,
    ENTRY_TEXT_CHARS,
    KEY_ID_CHARS,
    KEY_NAME_CHARS,
    check_text,
    get_text,
    storable,
)
from .backend import noteworthy_breakers
from .entry_secrets import kept_secrets, shown_config, shown_url
from .errors import ApiError, BadRequest, NotFound
from .fields import (
    Shape,
    bad,
    check_fields,
    get_bool,
    get_dict,
    get_int,
    get_number,
    query_int,
)
from .http_io import json_response
from .key_fields import key_fields
from .keys import VirtualKeys, public_view
from .projects import check_project
from .state import Handler, ServerState, endpoint

_ENTRY_NUMBERS = ("input_cost_per_1k", "output_cost_per_1k", "cached_input_cost_per_1k", "cache_write_cost_per_1k",
                  "cache_write_1h_cost_per_1k")
_BIG = 1_000_000_000          # bounds keep numbers inside what every database column holds
#: Breakers listed by default, and at most: a target is made for every model name callers try
BREAKERS_LISTED, MAX_BREAKERS_LISTED = 500, 10_000
BREAKER_STATES = ("open", "half_open", "closed")
#: Keys listed by default, and at most, per page of ``GET /admin/keys``, oldest first: a page
#: holds every key of most gateways, and one past it ends with a ``next`` to continue from
KEYS_LISTED, MAX_KEYS_LISTED = 1000, 5000


def admin_route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An admin route: the master key and the store are checked before ``handler`` runs;
    errors come back in the OpenAI error shape (the CLI and scripts read ``error.message``)."""

    async def checked(request: Request, st: ServerState) -> Response:
        await st.auth.authenticate_admin(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if st.backend.store is None:
            raise ApiError("the admin API needs the gateway store, which is not available", status=503,
                           kind="overloaded", code="store_unavailable")
        return await handler(request, st)

    checked.__name__ = checked.__qualname__ = handler.__name__
    return endpoint("openai", api="admin")(checked)


def only_params(request: Request, *known: str) -> None:
    """A 400 naming a query parameter the endpoint does not read: ``/admin/spend?key=...`` and
    ``/admin/keys?name=ci-bot`` answered every key's spend and every key, as if filtered, and an
    operator took the whole for the part asked about."""
    for name in request.query_params:
        if name not in known:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise BadRequest(f"{name}: unknown query parameter for {request.url.path}; {takes}", param=name,
                             code="unknown_parameter")


def page_after(raw: str | None) -> Place | None:
    """The ``after`` of a listing's page: the ``next`` of the page before it (:mod:`.keyset`);
    anything else is a 400 saying where cursors come from."""
    if raw is None:
        return None
    place = parse_cursor(raw)
    if place is None:
        raise BadRequest("after: not a cursor of this listing; pass the 'next' of the previous page as it was "
                         "given (leave 'after' out for the first page)", param="after", code="invalid_cursor")
    return place


# --------------------------------------------------------------------------- model entries


def _entry_view(row: Any, source: str = "admin") -> dict[str, Any]:
    return {
        "name": row.name, "identifier": row.identifier, "provider": row.provider, "base_url": shown_url(row.base_url),
        "api_key_env": row.api_key_env, "has_api_key": bool(getattr(row, "api_key_encrypted", None)
                                                            or getattr(row, "api_key", None)),
        "is_public": row.is_public, "input_cost_per_1k": row.input_cost_per_1k,
        "output_cost_per_1k": row.output_cost_per_1k, "cached_input_cost_per_1k": row.cached_input_cost_per_1k,
        "cache_write_cost_per_1k": row.cache_write_cost_per_1k,
        "cache_write_1h_cost_per_1k": row.cache_write_1h_cost_per_1k,
        "context_window": row.context_window, "additional_config": shown_config(row.additional_config),
        "data_retention_days": row.data_retention_days, "source": source,
    }


ENTRY_FIELDS = frozenset({"name", *ENTRY_TEXT_CHARS, *_ENTRY_NUMBERS, "context_window", "data_retention_days",
                          "is_public", "additional_config", "api_key"})


def entry_providers(st: ServerState) -> list[str]:
    """The providers a model entry may name: the built-in ones and cloverleaf.toml's ``[providers]``
    (a ``[providers.mylab]`` with ``kind = "openai"`` serves entries made here as it serves the file's)."""
    return sorted(set(provider_names()) | set(st.backend.settings.providers))


#: What GET answers beside an entry's fields, accepted back and dropped: a script sends back what
#: GET returned (README: "sending back what GET returned keeps the key").
_ENTRY_VIEW_ONLY: dict[str, Shape] = {"has_api_key": "boolean", "source": ("admin", "config")}


def _entry_fields(body: dict[str, Any], *, partial: bool, providers: Collection[str]) -> dict[str, Any]:
    check_fields(body, ENTRY_FIELDS, _ENTRY_VIEW_ONLY)
    out: dict[str, Any] = {}
    for name, chars in ENTRY_TEXT_CHARS.items():
        if name in body:
            out[name] = get_text(body, name, chars, required=name in ("identifier", "provider"))
    for name in _ENTRY_NUMBERS:
        if name in body:
            out[name] = get_number(body, name, "", minimum=0, maximum=1e9)
    if "context_window" in body:
        out["context_window"] = get_int(body, "context_window", "", minimum=1, maximum=_BIG)
    if "data_retention_days" in body:
        out["data_retention_days"] = get_int(body, "data_retention_days", "", minimum=0, maximum=1_000_000)
    if "is_public" in body:
        out["is_public"] = bool(get_bool(body, "is_public", ""))
    if "additional_config" in body:
        out["additional_config"] = get_dict(body, "additional_config", "") or {}
    if "api_key" in body:   # encrypted into a text column of any length; NUL is refused all the same
        out["api_key"] = get_text(body, "api_key", None)
    for required in ("identifier", "provider"):
        if (not partial or required in out) and not out.get(required):
            raise bad(required, "required: a non-empty string")
    provider = out.get("provider")
    if provider is not None and provider not in providers:
        raise bad("provider", f"unknown provider {provider!r}; known: {', '.join(sorted(providers))} "
                              "(or define it under [providers] in cloverleaf.toml)")
    return out


#: How :func:`_save_entry` writes: ``create`` a new entry only (409 when the name is taken);
#: ``replace`` it (PUT: fields not sent are reset, but for the stored provider key); ``merge``
#: into it (PATCH, the dashboard's form: fields not sent are kept).
CREATE, REPLACE, MERGE = "create", "replace", "merge"


async def _save_entry(st: ServerState, name: str, fields: dict[str, Any], existing: Any = None, *,
                      how: str = MERGE) -> Any:
    from ..gateway.store.records import ModelEntryRow

    refuse_config_entry(st, name)   # a stored entry of that name would be ignored
    values: dict[str, Any] = {"name": name}
    if existing is not None and how == MERGE:
        values = {f: getattr(existing, f) for f in ModelEntryRow.__dataclass_fields__}
    elif existing is not None and how == REPLACE:   # GET shows no key, so a GET-then-PUT must not drop it
        values["api_key_encrypted"] = existing.api_key_encrypted
    api_key = fields.pop("api_key", ...)
    values.update(fields)
    if api_key is ... and values.get("api_key_encrypted") and existing is not None:
        _key_stays_where_it_went(existing, values)
    if api_key is not ...:
        if api_key and st.box is None:
            raise ApiError("cannot store a provider key: no encryption key (CLOVERLEAF_ENCRYPTION_KEY)", status=503,
                           kind="overloaded", code="no_encryption_key")
        values["api_key_encrypted"] = st.box.encrypt(api_key) if api_key and st.box else None
    row = ModelEntryRow(**values)
    if row.additional_config:   # the same load-time rule as a [[models]] entry in cloverleaf.toml
        custom = {n: ps.kind for n, ps in st.backend.settings.providers.items()}
        try:
            check_config_keys(row.provider, kind_of(row.provider, custom), row.additional_config, "this entry")
        except ConfigError as exc:
            raise bad("additional_config", str(exc)) from None
    key = (api_key or None) if api_key is not ... else ("stored" if values.get("api_key_encrypted") else None)
    problem = st.backend.unservable(row, key)
    if problem is not None:
        raise bad("provider", f"the gateway could not call this entry: {problem}")
    store = st.backend.store
    saved = await asyncio.to_thread(store.create_model_entry if how == CREATE else store.upsert_model_entry, row)
    if saved is None:
        raise ApiError(f"model entry {name!r} exists; PUT or PATCH /admin/models/{name} to change it",
                       status=409, kind="invalid_request", code="conflict")
    st.backend.install(saved)
    return saved


def _key_stays_where_it_went(existing: Any, values: dict[str, Any]) -> None:
    """A 400 when a change would send the entry's stored provider key somewhere it did not go:
    another provider, or a ``base_url`` on another scheme, host or port. Whoever edits an entry
    never sees its key, so moving the entry must not hand the key to a server of their choosing
    (a mistyped host too): the key is sent again with the move, or removed (``"api_key": ""``)."""
    before = (existing.provider, _origin(existing.base_url))
    after = (values.get("provider"), _origin(values.get("base_url")))
    if before != after:
        raise bad("api_key", "this entry has a stored provider key and the change sends its calls to another "
                             "provider or host: send the key again with the change (\"api_key\": \"...\"), or "
                             "remove it (\"api_key\": \"\")")


def _origin(url: Any) -> tuple[str, str | None, int | None] | None:
    """Where a base_url's requests go (scheme, host, port); None for the provider's own default."""
    if not url:
        return None
    try:
        parts = urlsplit(str(url))
        return parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return "", str(url), None


def refuse_config_entry(st: ServerState, name: str, change: str = "change it in the file, or give this entry "
                                                                   "another name") -> None:
    """A 409 when cloverleaf.toml defines ``name``: that entry is the one served, and read-only here."""
    if st.backend.settings.model_entry(name) is not None:
        raise ApiError(f"model entry {name!r} comes from cloverleaf.toml and is read-only here: {change}",
                       status=409, kind="invalid_request", code="config_entry_read_only")


def entry_views(st: ServerState, rows: list[Any]) -> list[dict[str, Any]]:
    """The entries as they are served: the stored ones, then cloverleaf.toml's, which win over a
    stored one of the same name (that one is ignored, so it is not listed)."""
    configured = list(st.backend.settings.models)
    names = {e.name for e in configured}
    return [_entry_view(r) for r in rows if r.name not in names] + [_entry_view(e, "config") for e in configured]


def _name_ok(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > ENTRY_NAME_CHARS:
        raise bad("name", f"required: a non-empty model name of at most {ENTRY_NAME_CHARS} characters")
    return check_text(name, "name", ENTRY_NAME_CHARS)


async def _stored_entry(st: ServerState, name: str) -> Any:
    """The stored entry named ``name`` (None: none; a name no entry could have is not looked up)."""
    if not storable(name, ENTRY_NAME_CHARS):
        return None
    return await asyncio.to_thread(st.backend.store.get_model_entry, name)


@admin_route
async def list_models(request: Request, st: ServerState) -> Response:
    only_params(request)
    rows = await asyncio.to_thread(st.backend.store.list_model_entries)
    return json_response({"data": entry_views(st, rows)})


@admin_route
async def create_model(request: Request, st: ServerState) -> Response:
    body = await st.read_json(request)
    name = _name_ok(body.get("name"))
    fields = _entry_fields(body, partial=False, providers=entry_providers(st))
    row = await _save_entry(st, name, fields, how=CREATE)   # a taken name is a 409 from the insert itself
    return json_response(_entry_view(row), status=201)


@admin_route
async def get_model(request: Request, st: ServerState) -> Response:
    name = request.path_params["name"]
    entry = st.backend.settings.model_entry(name)   # the file's wins over a stored one (which is ignored)
    if entry is not None:
        return json_response(_entry_view(entry, "config"))
    row = await _stored_entry(st, name)
    if row is None:
        raise NotFound(f"no model entry {name!r}", code="model_not_found")
    return json_response(_entry_view(row))


@admin_route
async def update_model(request: Request, st: ServerState) -> Response:
    name = _name_ok(request.path_params["name"])
    body = await st.read_json(request)
    if body.get("name") is not None:
        _name_ok(body["name"])  # the path names the entry; a name in the body must still be one
    refuse_config_entry(st, name)   # before "no entry to update": GET shows it
    existing = await asyncio.to_thread(st.backend.store.get_model_entry, name)
    partial = request.method == "PATCH"
    if partial and existing is None:
        raise NotFound(f"no model entry {name!r} to update; POST /admin/models creates one",
                       code="model_not_found")
    fields = kept_secrets(_entry_fields(body, partial=partial, providers=entry_providers(st)), existing)
    row = await _save_entry(st, name, fields, existing, how=MERGE if partial else REPLACE)
    return json_response(_entry_view(row))


@admin_route
async def delete_model(request: Request, st: ServerState) -> Response:
    name = request.path_params["name"]
    # a stored entry cloverleaf.toml also defines is deleted too: it is ignored, and this is how it goes
    if not storable(name, ENTRY_NAME_CHARS) or not await asyncio.to_thread(st.backend.store.delete_model_entry, name):
        refuse_config_entry(st, name, "remove it from the file")
        raise NotFound(f"no model entry {name!r}", code="model_not_found")
    st.backend.uninstall(name)
    return json_response({"deleted": name})


# --------------------------------------------------------------------------- virtual keys


def _keys(st: ServerState) -> VirtualKeys:
    assert st.keys is not None  # admin_route checked the store, and keys exist whenever it does
    return st.keys


async def _stored_key(st: ServerState, key_id: str) -> Any:
    """The virtual key ``key_id`` (None: none; an id no key could have is not looked up)."""
    return await _keys(st).get(key_id) if storable(key_id, KEY_ID_CHARS) else None


def _key_fields(body: dict[str, Any], now: float, *, creating: bool = False) -> dict[str, Any]:
    """A key's fields from a POST (``creating``) or PATCH body, by the rules every surface shares
    (:mod:`.key_fields`), with the store's own for the text it keeps."""
    return key_fields(body, now, creating=creating, check_name=lambda name: check_text(name, "name", KEY_NAME_CHARS),
                      check_project=lambda project: check_project(project, "project"))


async def _key_view(st: ServerState, row: Any) -> dict[str, Any]:
    return (await _key_views(st, [row]))[0]


async def _key_views(st: ServerState, rows: list[Any]) -> list[dict[str, Any]]:
    """The keys as the admin API shows them, each with a budget with what it spent in its
    current period. One writer flush and one batched ledger read for all of them, not one of
    each per key: under traffic a flush waits for the writer's round trip, so a listing of a
    few thousand keys with budgets took seconds, and grew with every key."""
    views = [public_view(r) for r in rows]
    budgeted = [(view, r) for view, r in zip(views, rows, strict=True) if r.budget is not None]
    usages = getattr(st.backend.store, "budget_usages", None)
    if not budgeted or usages is None:
        for view, _ in budgeted:
            view["spent"] = None
        return views
    from ..gateway.budget import period_key

    now = time.time()
    wanted = [(f"key:{r.id}", period_key(r.budget_period, now)) for _, r in budgeted]

    def read() -> dict[tuple[str, str], tuple[float, float]]:
        st.backend.store.flush()   # the spend of calls answered a moment ago
        return usages(wanted)  # type: ignore[no-any-return]

    found = await asyncio.to_thread(read)
    for (view, _), pair in zip(budgeted, wanted, strict=True):
        view["spent"] = round(float(found[pair][0]), 6)
    return views


@admin_route
async def list_keys(request: Request, st: ServerState) -> Response:
    only_params(request, "include_revoked", "limit", "after")
    raw = request.query_params.get("include_revoked", "true")
    if raw not in ("true", "false"):
        raise BadRequest("include_revoked: expected 'true' or 'false'", param="include_revoked")
    include = raw == "true"
    limit = query_int(request.query_params.get("limit"), "limit", KEYS_LISTED, 1, MAX_KEYS_LISTED)
    after = page_after(request.query_params.get("after"))
    rows = await _keys(st).list(include_revoked=include, after=after, limit=limit + 1)
    following = cursor_of(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return json_response({"data": await _key_views(st, rows[:limit]), "next": following})


@admin_route
async def create_key(request: Request, st: ServerState) -> Response:
    body = await st.read_json(request)
    row, secret = await _keys(st).create(**_key_fields(body, time.time(), creating=True))
    view = await _key_view(st, row)
    view["key"] = secret
    view["note"] = "store this key now: it is shown only once and kept only as a hash"
    return json_response(view, status=201)


@admin_route
async def get_key(request: Request, st: ServerState) -> Response:
    row = await _stored_key(st, request.path_params["key_id"])
    if row is None:
        raise NotFound(f"no virtual key {request.path_params['key_id']!r}", code="key_not_found")
    view = await _key_view(st, row)
    return json_response(view)


@admin_route
async def update_key(request: Request, st: ServerState) -> Response:
    key_id = request.path_params["key_id"]
    body = await st.read_json(request)
    fields = _key_fields(body, time.time())
    stored = await _stored_key(st, key_id)
    if stored is None:
        raise NotFound(f"no virtual key {key_id!r}", code="key_not_found")
    if stored.revoked_at is not None:   # a 200 here read as "the key works again with these limits"
        raise ApiError(f"virtual key {key_id} is revoked, and revoking is final: nothing was changed; create a new "
                       "key (POST /admin/keys) with the limits you want", status=409, kind="invalid_request",
                       code="key_revoked")
    row = await _keys(st).update(key_id, **fields)
    view = await _key_view(st, row)
    return json_response(view)


@admin_route
async def revoke_key(request: Request, st: ServerState) -> Response:
    key_id = request.path_params["key_id"]
    row = await _stored_key(st, key_id)
    if row is None:
        raise NotFound(f"no virtual key {key_id!r}", code="key_not_found")
    await _keys(st).revoke(key_id)
    row = await _keys(st).get(key_id)
    view = await _key_view(st, row)
    return json_response(view)


# --------------------------------------------------------------------------- observability


def _query_number(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected a number (unix seconds)", param=name) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name}: expected a finite number", param=name)
    return value


@admin_route
async def spend(request: Request, st: ServerState) -> Response:
    only_params(request, "by", "since", "until")
    by = request.query_params.get("by", "model")
    from ..gateway.model_budgets import reader_canonical, spend_report
    from ..gateway.store.calls import SPEND_GROUPS

    if by not in SPEND_GROUPS:
        raise BadRequest(f"by: expected one of {', '.join(SPEND_GROUPS)}", param="by")
    since, until = _query_number(request, "since"), _query_number(request, "until")
    store = st.backend.store

    def read() -> Any:
        store.flush()   # the calls answered a moment ago count, as GET /admin/keys/{id} counts them
        # by model: each model once, whatever names its calls used (as its budget counts them)
        return spend_report(store, by, reader_canonical(st.backend.engine), since=since, until=until)

    rows = await asyncio.to_thread(read)
    return json_response({"by": by, "data": [r.as_dict() for r in rows]})


@admin_route
async def breakers(request: Request, st: ServerState) -> Response:
    only_params(request, "state", "limit")
    q = request.query_params
    limit = query_int(q.get("limit"), "limit", BREAKERS_LISTED, 1, MAX_BREAKERS_LISTED)
    wanted = q.get("state")
    if wanted is not None and wanted not in BREAKER_STATES:
        raise BadRequest(f"state: expected one of {', '.join(BREAKER_STATES)}", param="state")
    every = await st.backend.breakers()
    if wanted is not None:
        every = {name: b for name, b in every.items() if b["state"] == wanted}
    data, omitted = noteworthy_breakers(every, limit)
    return json_response({"data": data, "total": len(every), "omitted": omitted})


routes = [
    Route("/admin/models", list_models, methods=["GET"]),
    Route("/admin/models", create_model, methods=["POST"]),
    Route("/admin/models/{name:path}", get_model, methods=["GET"]),
    Route("/admin/models/{name:path}", update_model, methods=["PUT", "PATCH"]),
    Route("/admin/models/{name:path}", delete_model, methods=["DELETE"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
    Route("/admin/keys/{key_id}", get_key, methods=["GET"]),
    Route("/admin/keys/{key_id}", update_key, methods=["PATCH"]),
    Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    Route("/admin/spend", spend, methods=["GET"]),
    Route("/admin/breakers", breakers, methods=["GET"]),
]
