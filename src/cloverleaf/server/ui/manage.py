"""The pages that change things: the model registry (with a test call) and virtual keys.

They reuse the admin API's validation and persistence (``admin_api``), so a model entry or a
key made here is exactly what ``POST /admin/models`` or ``/admin/keys`` would have made: the
same checks, the same encryption of provider keys, the same live registry update. Forms are
translated into the admin API's JSON shapes first (blank fields mean "not set").

Secrets: a provider key is a write-only password field (the page only ever says whether one
is stored); a new virtual key's secret is on the one answer to its creation (``no-store``),
never again.

A session signed in with an admin-scoped virtual key is bounded by that key (:mod:`.key_limits`):
the keys it creates are within its own limits and in its project (or, when its key has a budget
or rate limits, it creates none), and a key with limits does not change the model registry.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import _jsoncodec as jsoncodec
from ...gateway.store.keyset import cursor_of, parse_cursor
from ..admin_api import (
    CREATE,
    MERGE,
    _entry_fields,
    _key_fields,
    _name_ok,
    _save_entry,
    entry_providers,
    entry_views,
    page_after,
    refuse_config_entry,
)
from ..admin_text import ENTRY_NAME_CHARS, KEY_ID_CHARS, storable
from ..entry_secrets import kept_secrets
from ..errors import ApiError, BadRequest, NotFound
from ..projects import PROJECT_CHARS
from . import key_limits, once
from .session import Session, is_admin
from .web import Web, form_list, is_form, read_form

_MODEL_NUMBERS = ("input_cost_per_1k", "output_cost_per_1k", "cached_input_cost_per_1k", "cache_write_cost_per_1k",
                  "cache_write_1h_cost_per_1k")
_MODEL_INTS = ("context_window", "data_retention_days")
#: keys per page of the Keys page, newest first
KEYS_PAGE = 100
TEST_PROMPT = "Reply with one short sentence: are you there?"


class Manage:
    def __init__(self, web: Web, calls: Any) -> None:
        self.web = web
        self.st = web.st
        self.calls = calls          # .test_call(model, session) -> dict (see playground.py)

    # -- models ---------------------------------------------------------------------------
    async def models(self, request: Request, session: Session, *, status: int = 200, **extra: Any) -> Response:
        st = self.st
        rows = await asyncio.to_thread(st.backend.store.list_model_entries)
        entries = entry_views(st, rows)
        editing = None
        name = request.query_params.get("edit")
        if name and "form" not in extra:
            editing = next((e for e in entries if e["name"] == name and e["source"] == "admin"), None)
        key = await self._session_key(session)
        refusal = key_limits.registry_refusal(key) if key is not None else None
        return self.web.render(request, "models.html", session, status=status, page="models", entries=entries,
                               editing=extra.pop("form", None) or editing, providers=entry_providers(st),
                               can_store_keys=st.box is not None,
                               read_only=refusal.message if refusal else None, **extra)

    async def _session_key(self, session: Session) -> Any:
        """The stored key a session signed in with (None for the master key's session)."""
        if session.kind != "key" or self.st.keys is None:
            return None
        row = await self.st.keys.get(session.key_id) if session.key_id else None
        if row is None:   # deleted under the session (sessions end with their key on the next page)
            raise NotFound(f"your key {session.key_id} no longer exists; sign in again")
        return row

    async def _check_may_change_registry(self, session: Session) -> None:
        key = await self._session_key(session)
        refusal = key_limits.registry_refusal(key) if key is not None else None
        if refusal is not None:
            raise refusal

    async def save_model(self, request: Request, session: Session) -> Response:
        """Add an entry, or (the form names one in ``entry``) update that entry."""
        form = await read_form(request)
        original = form.get("entry")
        name = original if original is not None else form.get("name", "").strip()
        try:
            await self._check_may_change_registry(session)
            _name_ok(name)
            refuse_config_entry(self.st, name)   # before "exists": a stored one of that name is ignored
            body = _model_body(form)
            existing = await asyncio.to_thread(self.st.backend.store.get_model_entry, name)
            if original is None and existing is not None:
                raise ApiError(f"a model entry named {name!r} exists; edit it instead", status=409,
                               kind="invalid_request", code="conflict")
            if original is not None and existing is None:
                raise NotFound(f"no stored model entry {name!r} to update")
            fields = kept_secrets(_entry_fields(body, partial=original is not None,
                                                providers=entry_providers(self.st)), existing)
            await _save_entry(self.st, name, fields, existing, how=MERGE if original is not None else CREATE)
        except ApiError as err:   # the form comes back as it was sent (never the key) with the reason
            return await self.models(request, session, status=err.status, error=err.message,
                                     form=_returned_model_form(form, name, original is not None))
        return RedirectResponse(f"/ui/models?saved={quote(name, safe='')}", status_code=303)

    async def delete_model(self, request: Request, session: Session) -> Response:
        name = await _entry(request)
        await self._check_may_change_registry(session)
        if not await asyncio.to_thread(self.st.backend.store.delete_model_entry, name):
            raise NotFound(f"no stored model entry {name!r} (entries from cloverleaf.toml cannot be deleted here)")
        self.st.backend.uninstall(name)
        return RedirectResponse(f"/ui/models?deleted={quote(name, safe='')}", status_code=303)

    async def test_model(self, request: Request, session: Session) -> Response:
        name = await _entry(request)
        result = await self.calls.test_call(name, session)
        return await self.models(request, session, tested=name, test=result)

    # -- keys -----------------------------------------------------------------------------
    async def keys(self, request: Request, session: Session, *, status: int = 200, **extra: Any) -> Response:
        """One page of keys, newest first (``?after=`` the page before's "Older" cursor). A page,
        not every key: with 2,000 keys the page was 1.7 MB of rows and revoke forms, and read the
        30-day spend of all of them, on every visit and after every create or revoke."""
        assert self.st.keys is not None
        after = page_after(request.query_params.get("after"))
        rows = await self.st.keys.list(include_revoked=True, after=after, limit=KEYS_PAGE + 1, newest_first=True)
        more, rows = len(rows) > KEYS_PAGE, rows[:KEYS_PAGE]
        spend = await asyncio.to_thread(self._key_spend, [r.id for r in rows])
        now = time.time()
        keys = [{"row": r, "spend": spend.get(r.id, 0.0), "admin": is_admin(r), "state": _key_state(r, now)}
                for r in rows]
        mine = await self._session_key(session)
        refusal = key_limits.minting_refusal(mine) if mine is not None else None
        return self.web.render(request, "keys.html", session, status=status, page="keys", keys=keys,
                               revoked=request.query_params.get("revoked"), mine=mine,
                               after=request.query_params.get("after") if after is not None else None,
                               next_cursor=cursor_of(rows[-1].created_at, rows[-1].id) if more else None,
                               minting_refused=refusal.message if refusal else None,
                               form_token=once.new_token(session), project_chars=PROJECT_CHARS, **extra)

    def _key_spend(self, key_ids: list[str]) -> dict[str, float]:
        """Each shown key's spend over 30 days (asked for by id: see :func:`.queries.cost_of`)."""
        from . import queries

        now = time.time()
        return queries.cost_of(self.st.backend.store.engine, "key", key_ids, now - 30 * 86400, now)

    async def create_key(self, request: Request, session: Session) -> Response:
        assert self.st.keys is not None
        form = await read_form(request)
        models = form_list(request, "allowed_models")
        try:
            mine = await self._session_key(session)
            refusal = key_limits.minting_refusal(mine) if mine is not None else None
            if refusal is not None:
                raise refusal
            key_id = once.key_id_for(session, form.get(once.FIELD))
            if await self.st.keys.get(key_id) is not None:
                return await self._already_created(request, session, key_id)
            fields = _key_fields(_key_body(form, models), time.time(), creating=True)
            if mine is not None:   # within the session key's own limits; blank fields are its values
                fields = key_limits.inherit(mine, fields)
            try:
                row, secret = await self.st.keys.create(key_id=key_id, **fields)
            except sa.exc.IntegrityError:   # the same form, sent twice at once: the other copy made it
                return await self._already_created(request, session, key_id)
        except ApiError as err:   # the form comes back as it was sent, with the reason
            return await self.keys(request, session, status=err.status, error=err.message,
                                   form={**form, "allowed_models": ", ".join(m.strip() for m in models if m.strip()),
                                         "admin": form.get("admin") == "on"})
        return await self.keys(request, session, status=201, created=row, secret=secret)

    async def _already_created(self, request: Request, session: Session, key_id: str) -> Response:
        """A form already sent (a reload of its answer): nothing is created, and the page says
        which key that form made. Its secret was on the first answer only; it is not shown."""
        return await self.keys(request, session, status=409, error=(
            f"This form was already submitted: key {key_id} was created from it, and its secret was shown "
            "then, once. Nothing new was created. To make another key, fill in the form below."))

    async def revoke_key(self, request: Request, session: Session) -> Response:
        assert self.st.keys is not None
        key_id = request.path_params["key_id"]
        if not storable(key_id, KEY_ID_CHARS) or await self.st.keys.get(key_id) is None:
            raise NotFound(f"no virtual key {key_id!r}")
        await self.st.keys.revoke(key_id)
        # back to the page the key was revoked from (its form carries that page's cursor)
        page = (await read_form(request)).get("after") if is_form(request) else None
        back = f"&after={quote(page, safe='')}" if page and parse_cursor(page) is not None else ""
        return RedirectResponse(f"/ui/keys?revoked={key_id}{back}", status_code=303)


async def _entry(request: Request) -> str:
    """The model entry a form acts on (its hidden ``entry`` field, exactly as the page wrote it).
    A name no entry could have (a NUL, too long) is not there: the store is not asked about it."""
    name = (await read_form(request)).get("entry")
    if not name:
        raise BadRequest("the form does not say which model entry (field 'entry'); reload the page and try again",
                         param="entry")
    if not storable(name, ENTRY_NAME_CHARS):
        raise NotFound(f"no model entry {name[:80]!r}")
    return name


def _model_body(form: dict[str, str]) -> dict[str, Any]:
    """The admin API's JSON for a model form: blank → None; numbers parsed; the provider key
    only when typed (or explicitly removed)."""
    body: dict[str, Any] = {}
    for name in ("identifier", "provider", "base_url", "api_key_env"):
        body[name] = form.get(name, "").strip() or None
    for name in _MODEL_NUMBERS:
        body[name] = _number(form, name, float)
    for name in _MODEL_INTS:
        body[name] = _number(form, name, int)
    body["is_public"] = form.get("is_public") == "on"
    raw = form.get("additional_config", "").strip()
    body["additional_config"] = _json_field("additional_config", raw) if raw else {}
    if form.get("api_key"):
        body["api_key"] = form["api_key"]
    elif form.get("clear_api_key") == "on":
        body["api_key"] = ""
    return body


def _returned_model_form(form: dict[str, str], name: str, existing: bool) -> dict[str, Any]:
    """What a refused model form shows again: every field as sent, but never the provider key.
    A browser sends a ticked box as "on" and an unticked one not at all, so each box is set
    from the form explicitly: a box left out must come back unticked (an unticked "Listed in
    /v1/models" came back ticked, and the corrected form then listed an entry meant hidden)."""
    kept: dict[str, Any] = {k: v for k, v in form.items() if k not in ("api_key", "csrf", "entry")}
    kept.update(name=name, existing=existing, is_public=form.get("is_public") == "on",
                clear_api_key=form.get("clear_api_key") == "on")
    return kept


def _json_field(name: str, raw: str) -> Any:
    """A form field holding JSON, read as the API reads a body: nesting bounded (a deep one was a
    RecursionError, a 500) and no unpaired surrogate escape (``"\\ud800"`` was stored, a value
    no UTF-8 can carry, in every answer that showed the entry)."""
    try:
        value = jsoncodec.loads_bounded(raw)
    except jsoncodec.JSONTooDeep as exc:
        raise BadRequest(f"{name}: nested more than {exc.limit} levels deep", param=name) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{name}: not valid JSON ({exc.msg} at character {exc.pos})", param=name) from None
    try:
        jsoncodec.dumps(value)
    except UnicodeEncodeError:
        raise BadRequest(f"{name}: contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), which is not "
                         "valid Unicode text", param=name, code="invalid_unicode") from None
    return value


def _key_body(form: dict[str, str], models: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if form.get("name", "").strip():
        body["name"] = form["name"].strip()
    patterns = [p.strip() for raw in models for p in raw.replace("\n", ",").split(",") if p.strip()]
    if patterns:
        body["allowed_models"] = patterns
    body["budget"] = _number(form, "budget", float)
    if body["budget"] is not None:
        body["budget_period"] = form.get("budget_period") or "total"
    for name in ("rpm", "tpm"):
        body[name] = _number(form, name, int)
    days = _number(form, "expires_in_days", float)
    if days is not None:
        body["expires_in_days"] = days
    if form.get("project", "").strip():
        body["project"] = form["project"].strip()
    if form.get("admin") == "on":
        body["metadata"] = {"role": "admin"}
    return {k: v for k, v in body.items() if v is not None}


def _number(form: dict[str, str], name: str, kind: type) -> Any:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        label = "a whole number" if kind is int else "a number"
        raise BadRequest(f"{name.replace('_', ' ')}: expected {label}, got {raw[:40]!r}", param=name) from None


def _key_state(row: Any, now: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"

