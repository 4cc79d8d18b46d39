"""The one object the routes call: the gateway (routes, limits, budgets, traces) over one
Engine, built once at startup, plus the model registry the admin API edits.

This is also the seam to the gateway's interface: the routes speak only to
:class:`Backend`, so an interface change in ``cloverleaf.gateway`` is absorbed here.

Several workers (``--workers N``) or replicas share one store but each keeps its own
in-memory registry. Each process therefore checks a fingerprint of the ``model_entries``
table (count, latest and summed ``updated_at``: one aggregate query) at most once every
``REGISTRY_SYNC_SECONDS``, in the background, and reloads the entries when it changed: an
entry created, updated or deleted through the admin API of one worker reaches the others
within about a second. (A model another worker just created is also picked up on its
first use, at once.)

Structured output is passed through unvalidated (``engine.validate_structured = False``):
the server's clients validate it themselves, exactly as they would against the provider,
and must get the text even when it is not valid JSON (cut off by ``max_tokens``, say).

Security: the server's Engine gets an attachment policy with ``allow_local_paths=False``
(a client can never make the server read its own disk; the wire parsers already refuse
anything but http(s) and ``data:`` URLs, this is the second wall).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._capabilities import Capability
from .._config import ModelEntry, Settings
from .._context import CallContext
from .._errors import CloverleafError, ConfigError
from .._models import parse_model_id
from .._types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    StreamEvent,
)
from ..providers.registry import provider_names, require
from .errors import NotFound
from .keys import budget_in_force
from .secrets import SecretBox

if TYPE_CHECKING:
    from .._privacy import Decision
    from ..gateway import Gateway
    from ..gateway.store import Store

log = logging.getLogger("cloverleaf.server")
REGISTRY_SYNC_SECONDS = 1.0
#: How long ``/ready`` waits for the store's ``SELECT 1`` before calling it unreachable.
READY_TIMEOUT_SECONDS = 3.0


class Backend:
    def __init__(self, settings: Settings, *, box: SecretBox | None = None, transport: Any = None) -> None:
        from .._client import AsyncClient
        from ..attachments import AttachmentPolicy

        self.settings = replace(settings, gateway=True)
        self.client = AsyncClient(self.settings)
        if transport is not None:
            self.client.engine.use_transport(transport)
        self.engine = self.client.engine
        self.engine.attachment_policy = AttachmentPolicy(**{**settings.attachments, "allow_local_paths": False})
        self.engine.validate_structured = False
        self.gateway: Gateway = self.client.gateway
        self.store: Store = self.gateway.store
        self.box = box
        self._known_providers = frozenset(provider_names()) | frozenset(settings.providers)
        self._stored: set[str] = set()          # registry names that came from the store
        self._shadowed: set[str] = set()        # stored names cloverleaf.toml defines too: ignored, warned once
        self._unreadable: dict[str, str] = {}   # name -> the stored key it could not decrypt (logged once)
        self._fingerprint: Any = None
        self._sync_task: asyncio.Task[None] | None = None

    def privacy_of(self, model: str, ctx: CallContext) -> Decision | None:
        """The privacy policy a call to ``model`` runs under (None: nothing restricts it)."""
        return self.gateway.privacy_of(model, ctx)

    async def store_refusal(self, model: str, ctx: CallContext) -> str | None:
        """Why this call's content may not be stored (local-only, and the store is not local)."""
        return await self.gateway.store_refusal(model, ctx)

    # -- startup / shutdown -----------------------------------------------------------
    async def start(self) -> None:
        """Say so when the shared state cannot be reached; load model entries created through
        the admin API, then keep them in step."""
        from ..gateway.state import unreachable

        state = getattr(self.gateway, "state", None)
        why = await unreachable(state) if state is not None else None
        if why is not None:   # the server still starts: Redis may come up after it
            log.warning("%s. Until it answers, every call is refused (503 state_unavailable) and /ready says "
                        "unavailable", why)
        if self.store is None:
            return
        await self.sync_registry()
        if self.store.engine.url.database not in (None, "", ":memory:"):  # a private in-memory store has no peers
            self._sync_task = asyncio.create_task(self._sync_forever(), name="cloverleaf-registry-sync")

    async def aclose(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.client.aclose()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(REGISTRY_SYNC_SECONDS)
            try:
                await self.sync_registry()
            except self._store_errors() as exc:  # the store is down for a moment: try again next tick
                log.warning("registry sync failed: %s", type(exc).__name__)

    async def sync_registry(self) -> bool:
        """Reload the stored entries if the table changed since the last look; True if it had."""
        fingerprint = await asyncio.to_thread(self._read_fingerprint)
        if fingerprint == self._fingerprint:
            return False
        rows = await asyncio.to_thread(self.store.list_model_entries)
        names = {row.name for row in rows}
        for gone in self._stored - names:
            self.uninstall(gone)
        self._shadowed &= names   # one deleted and stored again is warned about again
        for row in rows:
            self.install(row)
        self._fingerprint = fingerprint
        return True

    def _read_fingerprint(self) -> tuple[Any, ...]:
        import sqlalchemy as sa

        from ..gateway.store.schema import model_entries as table

        updated = table.c.updated_at
        with self.store.engine.connect() as conn:
            return tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(updated), sa.func.sum(updated))).one())

    @staticmethod
    def _store_errors() -> tuple[type[BaseException], ...]:
        import sqlalchemy as sa

        return (sa.exc.SQLAlchemyError, OSError)

    # -- models -----------------------------------------------------------------------
    async def check_model(self, model: str, operation: Capability | None = None,
                          ctx: CallContext | None = None) -> None:
        """404 unless ``model`` is a route, a registry entry, or a ``provider/model`` id of a
        known provider the gateway is set up for. An entry another worker created is picked up
        from the store here. With ``operation``, a provider that cannot do it is a 422 before any
        word about its configuration (issue 11: capability before configuration). With the
        call's ``ctx``, a call whose privacy policy is local-only hears that policy's refusal
        (403) rather than that a cloud provider has no key: setting the key would not let it go."""
        if model in self.settings.routes or self.engine.registry.get(model) is not None:
            return
        try:
            parse_model_id(model, self._known_providers)
        except ConfigError as exc:
            reason = str(exc)
        else:
            try:
                target = self.engine.resolve(model)  # cached once it works
                if operation is not None and target.problem is not None:
                    require(target.provider, target.adapter.capabilities, [operation])
                target.ready()
                return
            except ConfigError as exc:  # the operator has not set this provider up (no key, no base_url)
                if ctx is not None:
                    self._refuse_if_private(model, ctx)
                raise NotFound(f"model {model!r} is not available on this gateway: {exc}",
                               code="model_not_found", param="model") from None
        if self.store is not None:
            row = await asyncio.to_thread(self.store.get_model_entry, model)
            if row is not None:
                self.install(row)
                return
        raise NotFound(f"unknown model {model!r}: {reason}", code="model_not_found", param="model")

    def _refuse_if_private(self, model: str, ctx: CallContext) -> None:
        """:class:`PrivacyViolation` when the call is local-only and ``model``'s provider is not a
        local one (the policy as the gateway would decide it: default, key, call, data class)."""
        decision = self.gateway.privacy.decision(self.gateway.router.route(model), ctx)
        if decision is not None:
            self.engine.privacy.refuse_unresolvable(decision, model, self.settings)

    def listed_models(self) -> list[tuple[str, str]]:
        """(id, owned_by) for ``/v1/models``: routes, public registry entries, configured defaults."""
        out: dict[str, str] = {}
        for name in self.settings.routes:
            out[name] = "cloverleaf-route"
        for entry in self.engine.registry.all():
            if entry.is_public:
                out.setdefault(entry.name, entry.provider)
        for default in (self.settings.default_model, self.settings.embedding_model, self.settings.image_model):
            if default:
                out.setdefault(default, default.partition("/")[0] or "cloverleaf")
        if not out:
            out["fake/echo"] = "fake"
        return list(out.items())

    def unservable(self, row: Any, api_key: str | None) -> str | None:
        """Why the gateway could not call a model entry as it stands (no key for its provider,
        a provider that needs a base_url without one...), or None. The admin API refuses such
        an entry when it is written, rather than every later call answering 503."""
        probe = f"\x00probe/{id(row)}"
        self.engine.registry.add(ModelEntry(name=probe, identifier=row.identifier, provider=row.provider,
                                            base_url=row.base_url, api_key=api_key, api_key_env=row.api_key_env,
                                            additional_config=dict(row.additional_config or {})))
        try:
            self.engine.resolve(probe).ready()  # a missing key is kept on the target until asked
        except ConfigError as exc:
            return str(exc)
        finally:
            self.engine.registry.remove(probe)
        return None

    def install(self, row: Any) -> bool:
        """Put a stored entry (its provider key decrypted) into the live registry; False if it
        was not, because cloverleaf.toml defines an entry of that name. The file is the source
        of truth and its entries are read-only through the admin API, which refuses to store
        such a name; one stored before the file named it, though, silently replaced the file's
        entry after a restart (calls went to the stored identifier)."""
        if self.settings.model_entry(row.name) is not None:
            self._ignore_shadowed(row.name)
            return False
        api_key = problem = None
        if row.api_key_encrypted:
            if self.box is None:
                log.warning("model entry %r has a stored provider key but no encryption key is set "
                            "(CLOVERLEAF_ENCRYPTION_KEY / CLOVERLEAF_MASTER_KEY); it is loaded without it", row.name)
            else:
                api_key, problem = self._decrypted(row)
        self.engine.registry.add(ModelEntry(
            name=row.name, identifier=row.identifier, provider=row.provider, base_url=row.base_url,
            api_key=api_key, api_key_env=row.api_key_env, is_public=row.is_public,
            input_cost_per_1k=row.input_cost_per_1k, output_cost_per_1k=row.output_cost_per_1k,
            cached_input_cost_per_1k=row.cached_input_cost_per_1k, cache_write_cost_per_1k=row.cache_write_cost_per_1k,
            cache_write_1h_cost_per_1k=row.cache_write_1h_cost_per_1k,
            context_window=row.context_window,
            additional_config=dict(row.additional_config or {}), data_retention_days=row.data_retention_days,
            key_problem=problem))
        self._stored.add(row.name)
        self._changed_here()
        return True

    def _decrypted(self, row: Any) -> tuple[str | None, str | None]:
        """The entry's stored provider key, or why it cannot be read. A key that no longer
        decrypts (CLOVERLEAF_MASTER_KEY changed, with no CLOVERLEAF_ENCRYPTION_KEY of its own) was
        a ConfigError out of start-up: the server would not start, and the admin API its message
        sent the operator to was out of reach. Now the entry is loaded without it (logged once,
        naming the entry, never the key), the server starts, and calls to the entry fail saying
        why until its key is sent again."""
        assert self.box is not None
        try:
            key = self.box.decrypt(row.api_key_encrypted)
        except ConfigError:
            pass
        else:
            self._unreadable.pop(row.name, None)
            return key, None
        if self._unreadable.get(row.name) != row.api_key_encrypted:
            self._unreadable[row.name] = row.api_key_encrypted
            log.error("model entry %r: its stored provider key cannot be decrypted: the encryption key changed "
                      "(CLOVERLEAF_ENCRYPTION_KEY, or CLOVERLEAF_MASTER_KEY where there is none). The entry is "
                      "loaded without it and its calls fail until the key is set back, or the provider key is "
                      "sent again: PATCH /admin/models/%s with {\"api_key\": \"...\"}", row.name,
                      quote(row.name, safe="/"))
        return None, (f"model entry {row.name!r}: its stored provider key cannot be decrypted (the encryption key "
                      "changed: CLOVERLEAF_ENCRYPTION_KEY, or CLOVERLEAF_MASTER_KEY); set that key back, or send the "
                      f"provider key again through the admin API (PATCH /admin/models/{quote(row.name, safe='/')} "
                      "with api_key)")

    def _ignore_shadowed(self, name: str) -> None:
        """Say once (at start-up, or at the sync that finds it) that a stored entry is ignored."""
        if name in self._shadowed:
            return
        self._shadowed.add(name)
        log.warning("model entry %r is defined in cloverleaf.toml and also stored through the admin API: the "
                    "file's entry is served and the stored one ignored. Delete the stored one (DELETE "
                    "/admin/models/%s) or rename one of them", name, quote(name, safe="/"))

    def uninstall(self, name: str) -> None:
        """Drop a stored entry; an entry of the same name in cloverleaf.toml comes back (or, when the
        stored one was ignored for it, simply stays)."""
        self._stored.discard(name)
        self._shadowed.discard(name)
        configured = self.settings.model_entry(name)
        if configured is not None:
            self.engine.registry.add(configured)
        else:
            self.engine.registry.remove(name)
        self._changed_here()

    def _changed_here(self) -> None:
        # The registry moved out of step with the last look at the table (the table may even
        # come back to that very state, e.g. created here and deleted by another worker): the
        # next sync reloads whatever it finds.
        self._fingerprint = None
        router = getattr(self.gateway, "router", None)
        if router is not None and hasattr(router, "invalidate"):
            router.invalidate()  # a route may target this entry under another name

    # -- calls ------------------------------------------------------------------------
    async def achat(self, model: str, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return await self.gateway.achat(model, req, ctx)

    def astream(self, model: str, req: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        return self.gateway.astream(model, req, ctx)

    async def aembed(self, model: str, req: EmbeddingRequest, ctx: CallContext) -> EmbeddingResponse:
        return await self.gateway.aembed(model, req, ctx)

    async def aimage(self, model: str, req: ImageRequest, ctx: CallContext) -> ImageResponse:
        return await self.gateway.aimage(model, req, ctx)

    # -- state for admin and metrics --------------------------------------------------
    async def breakers(self) -> dict[str, dict[str, Any]]:
        """Circuit state per target that has been called: state, failures, opened_at (epoch
        seconds on every state backend), last error; a cooled-down circuit is ``half_open``."""
        report = getattr(self.gateway, "breaker_report", None)
        if report is None:
            return {}
        snapshots = await report()
        return {name: {"state": snap.state, "consecutive_failures": snap.consecutive_failures,
                       "opened_at": snap.opened_at, "last_error": snap.last_error}
                for name, snap in sorted(snapshots.items())}

    async def key_changed(self, before: Any, after: Any) -> None:
        """A virtual key was updated (``VirtualKeys.on_change``): a budget that starts to apply
        to it (given one, another period, or one again) counts what the key spent in the period
        so far, from the call records, not $0 (``Budgets.recount``; run on every update that
        leaves a budget in force, see :func:`~.keys.budget_in_force`)."""
        if budget_in_force(after):
            from ..gateway.budget import BudgetScope

            await self.gateway.budgets.recount(BudgetScope(f"key:{after.id}", float(after.budget),
                                                           after.budget_period or "total"))

    async def ready(self) -> dict[str, str]:
        """Each dependency a call needs — the store, and the shared state when it is Redis —
        as "ok", "unreachable" or "none" (the store "unwritable" when it answers but its writer
        cannot write: a full disk, a read-only file); the reason is logged only. Both are
        asked at once, and the store within ``READY_TIMEOUT_SECONDS``: a database that does not
        answer is unreachable, and a probe that hangs would tell the load balancer nothing."""
        store, state = await asyncio.gather(self._store_ready(), self._state_ready())
        return {"store": store, "state": state}

    async def _store_ready(self) -> str:
        if self.store is None:
            return "none"
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("readiness check: the store did not answer within %g s", READY_TIMEOUT_SECONDS)
            return "unreachable"
        except self._store_errors() as exc:
            log.warning("readiness check: the store failed: %s", type(exc).__name__)
            return "unreachable"
        writer = getattr(self.store, "writer", None)
        if writer is not None and writer.waiting_for_database:   # it reads, but its writes fail: records queue up
            log.warning("readiness check: the store answers but its writer cannot write; records are queued")
            return "unwritable"
        return "ok"

    async def _state_ready(self) -> str:
        state = getattr(self.gateway, "state", None)
        if state is None or not state.shared:
            return "memory"
        try:   # every call's limits and budgets go through it (its client's socket timeout bounds this)
            await state.ping()
        except CloverleafError as exc:
            log.warning("readiness check: the shared state failed: %s", type(exc).__name__)
            return "unreachable"
        return "ok"


def noteworthy_breakers(every: dict[str, dict[str, Any]], limit: int) -> tuple[dict[str, dict[str, Any]], int]:
    """At most ``limit`` breakers, those not closed or with failures first, and how many were left
    out: a target is made for every model name callers try, so a full list can be thousands long."""
    def quiet(item: tuple[str, dict[str, Any]]) -> tuple[bool, str]:
        return item[1]["state"] == "closed" and not item[1]["consecutive_failures"], item[0]

    kept = dict(sorted(every.items(), key=quiet)[:limit])
    return kept, len(every) - len(kept)
