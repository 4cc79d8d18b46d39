"""The gateway: routes, fallback, breakers, rate limits, budgets and traces around the Engine.

One :class:`Gateway` per Client (or per server). Each call:

1. checks the virtual key's allowed models (``CallContext.key``);
2. resolves the route and orders its targets (``router.py``);
3. takes the route and key rate limits, and reserves the worst-case cost against every
   budget that applies (``ratelimit.py``, ``budget.py``);
4. walks the targets through the one fallback loop (``attempts.py``), each attempt passing
   the target's circuit breaker and provider/target rate limits;
5. settles limits and budgets with the real usage and cost, and hands a call record to the
   store's batch writer (``traces.py``, ``store/``) — every call's, or with ``[store] record =
   "errors"`` only failed ones', or with ``"none"`` no call's (budgets are kept regardless).

However a call ends — answered, failed, cancelled, a stream closed early — it writes one
record and settles what it took exactly once (``settlement.py``); a response-cache hit is
answered and settled the same way (``cached_calls.py``). The call's state between admission and
its record is a :class:`~.call.Call`.

Async is the core; the sync twins (``chat``, ``stream``, ``embed``, ``image``) run it on a
private loop thread (``bridge.py`` explains why).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
import os
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _attachment_loads as attachment_loads
from .._context import CallContext
from .._errors import BudgetExceeded, PermissionDeniedError, PrivacyViolation, StreamInterrupted
from .._estimate import embedding_tokens, text_tokens
from .._privacy import Decision, PrivacyConfig, PrivacyGuard
from .._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    StreamEvent,
)
from .attempts import AttemptLoop, Slot
from .breaker import BreakerSnapshot, as_reported
from .bridge import LoopThread
from .budget import RESERVATION_TTL_SECONDS, Budgets, StoreBudgets
from .cache import ResponseCache
from .cached_calls import CachedCalls
from .call import Call
from .chains import FallbackChains
from .clock import Clock, EpochClock, SystemClock
from .config import RouteConfig, TargetSpec, make_route
from .estimate import CostBound, input_bound, media_tokens, service_tier_of, web_search_bound
from .image_spend import image_bound, unpriced_images
from .model_budgets import engine_canonical
from .privacy import RoutePrivacy
from .privacy import record as privacy_record
from .protocols import EngineLike
from .ratelimit import RateLimiter, never_fits
from .router import ResolvedTarget, RouteInfo, Router
from .settlement import Settlement
from .state import AttemptAsk, StateBackend, open_state
from .tables import read_tables
from .telemetry import Telemetry
from .trace_context import forwarded
from .traces import CallTracker, TraceAPI

if TYPE_CHECKING:
    from .._config import Settings
    from .store import Store

log = logging.getLogger("cloverleaf.gateway")
R = TypeVar("R", ChatResponse, EmbeddingResponse, ImageResponse)
OUTPUT_EVENTS = frozenset({"text", "reasoning", "tool_call_delta"})
CLEANUP_INTERVAL_SECONDS = 3600.0


class Gateway:
    def __init__(self, settings: Settings, engine: EngineLike, *, clock: Clock | None = None,
                 state: StateBackend | None = None, store: Store | None = None,
                 rng: random.Random | None = None) -> None:
        tables = read_tables(settings, getattr(settings, "env", None) or os.environ,
                             from_env=bool(getattr(settings, "gateway", False)))
        self.config = tables.config
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.state = state or open_state(self.config.state_url, prefix=self.config.state_prefix)
        # times handed to shared state must mean the same on every host: epoch, not monotonic
        self._state_clock: Clock = EpochClock(self.clock) if self.state.shared else self.clock
        self._owns_store = store is None
        if store is None:
            from .store import open_store

            cfg = self.config.store
            store = open_store(cfg.url, batch_size=cfg.batch_size, flush_ms=cfg.flush_ms, wall=self.clock.wall)
        self.store: Store = store
        self._rng = rng or random.Random()
        self.router = Router(engine, dict(self.config.routes), self.state, self._rng)
        self._chains = FallbackChains()
        self.limiter = RateLimiter(self.config.limits, self.state, self._state_clock,
                                   window=self.config.limit_window, margin=self.config.limit_margin)
        routes, canonical = self.config.routes, engine_canonical(engine)
        if self.config.budgets_in == "store":
            self.budgets: Budgets = StoreBudgets(self.config.budgets, self.store, self.state, self.clock,
                                                 self.limiter, routes, canonical)
        else:
            self.budgets = Budgets(self.config.budgets, self.store, self.state, self.clock, routes, canonical)
        self.traces = TraceAPI(self.store, self.clock)
        self.cache: ResponseCache | None = ResponseCache(tables.cache, engine) if tables.cache.enabled else None
        # spans only when configured; the standard OTLP variables count for an explicit gateway (the server)
        self.telemetry: Telemetry | None = Telemetry(tables.telemetry) if tables.telemetry is not None else None
        self.privacy = RoutePrivacy(_privacy_guard(settings, engine))
        self._close_shielded = self.state.shared or self.budgets.mode == "store"
        self._settlement = Settlement(engine=engine, budgets=self.budgets, store=self.store, telemetry=self.telemetry,
                                      clock=self.clock, state_clock=self._state_clock, breaker=self.config.breaker,
                                      record=self.config.store.record, close_shielded=self._close_shielded)
        self._cached = (CachedCalls(self.cache, engine, self.privacy, self._settlement, self.clock)
                        if self.cache is not None else None)
        self._cost_bound = CostBound(engine)
        self._bridge = LoopThread()
        self._stop = threading.Event()
        self._closed = False
        self._janitor = threading.Thread(target=self._maintain, name="cloverleaf-gateway-cleanup", daemon=True)
        self._janitor.start()

    # -- public surface ---------------------------------------------------------------
    @property
    def breakers(self) -> Mapping[str, BreakerSnapshot]:
        """Circuit state per target that has been called (closed targets may be absent)."""
        return self._bridge.run(self.state.breaker_snapshots())

    async def breaker_report(self) -> dict[str, BreakerSnapshot]:
        """The breakers as status pages show them (``breaker.as_reported``): times in epoch
        seconds whatever the state backend, a cooled-down circuit as ``half_open``."""
        snapshots = await self.state.breaker_snapshots()
        now, wall, policy = self._state_clock.now(), self.clock.wall(), self.config.breaker
        return {name: as_reported(snap, now, wall, policy) for name, snap in snapshots.items()}

    def routes(self) -> list[RouteInfo]:
        return self.router.infos()

    def add_route(self, name: str, targets: Sequence[str | TargetSpec], **options: Any) -> RouteConfig:
        """Define (or replace) a route in code; options as in ``[routes.NAME]``."""
        route = make_route(name, targets, **options)
        self.router.set_route(route)
        return route

    #: Routes were added in code (``register``): calls go through the gateway as with a config's.
    has_registrations = False

    def register(self, target: str | TargetSpec, *, priority: int = 0, is_fallback: bool = False,
                 route: str = "default") -> RouteConfig:
        """Add a target to the fallback chain ``route`` (AgentLoom's ``gateway.register``): primaries
        first, then fallbacks, each by ascending priority (``chains.py``). Equivalent to listing
        it in ``[routes.ROUTE] targets``; call the chain with ``model=ROUTE``."""
        spec = TargetSpec(model=target) if isinstance(target, str) else target
        self.has_registrations = True
        updated = self._chains.register(self.router.configured(route), route, spec, priority=priority,
                                        is_fallback=is_fallback)
        self.router.set_route(updated)
        return updated

    async def achat(self, model: str, req: ChatRequest, ctx: CallContext | None = None) -> ChatResponse:
        return await self._run(model, req, ctx, "chat", self.engine.achat, None, req.max_tokens)

    async def aembed(self, model: str, req: EmbeddingRequest, ctx: CallContext | None = None) -> EmbeddingResponse:
        tokens = embedding_tokens(req.inputs, req.token_ids)
        return await self._run(model, req, ctx, "embed", self.engine.aembed, tokens, 0)

    async def aimage(self, model: str, req: ImageRequest, ctx: CallContext | None = None) -> ImageResponse:
        return await self._run(model, req, ctx, "image", self.engine.aimage, text_tokens(req.prompt), 0)

    def astream(self, model: str, req: ChatRequest, ctx: CallContext | None = None) -> AsyncIterator[StreamEvent]:
        return self._stream(model, req, ctx)

    def chat(self, model: str, req: ChatRequest, ctx: CallContext | None = None) -> ChatResponse:
        return self._bridge.run(self.achat(model, req, ctx))

    def embed(self, model: str, req: EmbeddingRequest, ctx: CallContext | None = None) -> EmbeddingResponse:
        return self._bridge.run(self.aembed(model, req, ctx))

    def image(self, model: str, req: ImageRequest, ctx: CallContext | None = None) -> ImageResponse:
        return self._bridge.run(self.aimage(model, req, ctx))

    def stream(self, model: str, req: ChatRequest, ctx: CallContext | None = None) -> Iterator[StreamEvent]:
        return self._bridge.iterate(self._stream(model, req, ctx))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._janitor.join(5)
        if not _in_event_loop():  # from inside a loop, aclose() closes the state instead (no deadlock)
            try:
                self._bridge.run(self.state.aclose())
            except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                log.debug("closing the state backend failed: %s", exc)
            if self.cache is not None:
                try:
                    self._bridge.run(self.cache.aclose())
                except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                    log.debug("closing the response cache failed: %s", exc)
        self._bridge.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self._owns_store:
            self.store.close()
        else:
            self.store.flush()

    async def aclose(self) -> None:
        await self.state.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await asyncio.to_thread(self.close)

    # -- one call ---------------------------------------------------------------------
    async def _run(self, model: str, req: Any, ctx: CallContext | None, operation: str,
                   invoke: Callable[[Any, Any], Awaitable[R]], input_tokens: int | None,
                   max_output: int | None) -> R:
        call = await self._admit(model, ctx, operation, req, input_tokens, max_output)
        req = call.request = call.request or req   # capped at admission when output is metered
        settlement = self._settlement
        loads = attachment_loads.begin() if operation == "chat" else None   # attachments: one download per call
        try:
            cached_calls = self._cached
            if operation == "chat" and cached_calls is not None and await cached_calls.allowed(call):
                cached = await cached_calls.lookup(call, model, req, ctx)
                if cached is not None:
                    return await cached_calls.answer(call, cached, req, ctx)  # type: ignore[return-value]
            async for slot in call.loop:
                try:
                    resp = await invoke(_for_call(slot, ctx, call), req)   # the Engine sets the model
                except Exception as exc:  # noqa: BLE001 - the fallback table (fallback.py) decides
                    await call.loop.failed(slot, exc)
                    continue
                except BaseException:      # cancelled in flight
                    await call.loop.abandoned(slot)
                    raise
                latency = call.loop.note_success(slot)
                call.response = resp
                cost = settlement.price(call, slot.target, resp)
                model_name = getattr(resp, "model", None)
                if ctx is not None and ctx.after_response is not None:
                    # the caller awaits it once its client has the answer (which may take the
                    # client a while to read): the record keeps the time the answer was ready
                    ready = self.clock.now()
                    ctx.after_response.append(settlement.settle_ok(call, slot, resp.usage, latency, cost, model_name,
                                                                   ready))
                    if call.cache_plan is not None and cached_calls is not None:
                        ctx.after_response.append(cached_calls.store(call.cache_plan, resp, None))
                else:
                    await settlement.settle_ok(call, slot, resp.usage, latency, cost, model_name)
                    if call.cache_plan is not None and cached_calls is not None:
                        await cached_calls.store(call.cache_plan, resp, None)
                return resp
            raise call.loop.exhausted()
        except BaseException as exc:
            await settlement.finish_error(call, exc)
            raise
        finally:
            attachment_loads.end(loads)

    async def _stream(self, model: str, req: ChatRequest, ctx: CallContext | None) -> AsyncIterator[StreamEvent]:
        call = await self._admit(model, ctx, "stream", req, None, req.max_tokens)
        req = call.request = call.request or req   # capped at admission when output is metered
        settlement = self._settlement
        loads = attachment_loads.stream_scope(req)   # attachments: one download per call, whichever attempt answers
        try:
            cached_calls = self._cached
            if cached_calls is not None and await cached_calls.allowed(call):
                cached = await cached_calls.lookup(call, model, req, ctx, stream=True)
                if cached is not None and cached.events is not None:
                    await cached_calls.answer(call, cached, req, ctx)
                    for event in cached.events:
                        yield event
                    return
            # a stream that may be cached keeps its events (one list append per event, only then)
            kept: list[StreamEvent] | None = [] if call.cache_plan is not None and call.cache_plan.write else None
            async for slot in call.loop:
                events = self.engine.astream(_for_call(slot, ctx, call), req)
                if loads is not None:
                    events = attachment_loads.loading_in(loads, events)
                held: list[StreamEvent] = []      # events before the first output (usage) wait for it
                if kept:
                    kept.clear()                  # a failed attempt's events are not the answer
                try:
                    async for event in events:
                        if event.type == "done":
                            if ctx is not None:
                                ctx.answering_target, ctx.answering_provider = slot.target.key, slot.target.provider
                            for early in () if call.emitted else held:
                                yield early
                            call.response = event.response
                            await settlement.finish_ok(call, slot, event.response)
                            if (kept is not None and event.response is not None and call.cache_plan is not None
                                    and cached_calls is not None):
                                kept.append(dataclasses.replace(event, response=None))
                                await cached_calls.store(call.cache_plan, event.response, kept)
                            yield event
                            return
                        if kept is not None:
                            kept.append(event)
                        if not call.emitted:
                            if event.type not in OUTPUT_EVENTS:
                                held.append(event)
                                continue
                            call.emitted = True
                            if ctx is not None:
                                ctx.answering_target, ctx.answering_provider = slot.target.key, slot.target.provider
                            call.ttft_ms = (self.clock.now() - call.tracker.started) * 1000.0
                            await call.loop.answered(slot)
                            for early in held:
                                yield early
                        yield event
                except Exception as exc:
                    if not call.emitted:
                        await call.loop.failed(slot, exc)
                        continue
                    await call.loop.record_failure(slot, exc, output_sent=True)
                    raise StreamInterrupted(
                        f"the stream from {slot.target.key} failed after output had been sent "
                        f"({type(exc).__name__}: {exc}); it is not retried, so no text is repeated",
                        cause=exc) from exc
                except BaseException:      # cancelled, or the consumer closed the stream
                    if not call.finished:
                        await call.loop.abandoned(slot)
                    raise
                finally:
                    aclose = getattr(events, "aclose", None)
                    if aclose is not None:
                        await aclose()
                # the stream ended without a "done" event: what arrived is the answer
                await settlement.finish_ok(call, slot, None)
                return
            raise call.loop.exhausted()
        except BaseException as exc:
            await settlement.finish_error(call, exc)
            raise

    # -- admission and bookkeeping ----------------------------------------------------
    def _chat_tokens(self, req: ChatRequest, targets: list[ResolvedTarget]) -> int:
        """A chat request's input tokens for rate limits: its text estimated (see
        :mod:`cloverleaf._estimate`: never under a token a UTF-8 byte for non-ASCII text) and
        its attachments at the most any of ``targets`` can bill them (:func:`media_tokens`:
        the budgets' image and PDF rules), not at a flat figure an image can bill 48 times."""
        media: list[Attachment] = []
        tokens = int(self.engine.estimate_tokens(req, media))
        return tokens + media_tokens(media, targets) if media else tokens

    async def _admit(self, model: str, ctx: CallContext | None, operation: str, req: Any,
                     input_tokens: int | None, max_output: int | None) -> Call:
        """``input_tokens`` None: a chat request, estimated here where its targets are known."""
        ctx = ctx or _NO_CONTEXT
        _check_allowed(model, ctx)
        route = self.router.route(model)
        targets = self.router.targets(route)
        if input_tokens is None:
            input_tokens = self._chat_tokens(req, targets)
        output_tokens = max_output if max_output is not None else 0
        uncapped = max_output is None and operation in ("chat", "stream")
        if uncapped:   # the route's allowance, on top of a reasoning budget the caller gave
            reasoning = req.reasoning
            output_tokens = route.output_estimate + (reasoning.budget_tokens or 0 if reasoning is not None else 0)
        tokens = input_tokens + output_tokens
        tracker = CallTracker(
            requested_model=model, operation=operation, started=self.clock.now(), created_at=self.clock.wall(),
            trace_id=ctx.trace_id, project=ctx.project, key_id=ctx.key.key_id if ctx.key else None,
            metadata=dict(ctx.metadata), secrets=self.router.secrets(targets))
        if ctx is not _NO_CONTEXT:   # the caller's own context: it may name the call by its record
            ctx.call_id = tracker.id
        ordered = await self.router.order(route, targets, input_tokens, output_tokens)
        privacy = self.privacy.decision(route, ctx)
        refusal: PrivacyViolation | None = None
        if privacy is not None:
            ordered, refusal = await self._private(privacy, route, ordered, tracker)
        config = self.config
        loop = AttemptLoop(route, ordered, tracker=tracker, state=self.state, limiter=self.limiter,
                           breaker=config.breaker, clock=self._state_clock, tokens=tokens,
                           prompt_tokens=input_tokens,
                           retries=(ctx.max_retries if ctx.max_retries is not None else route.retries
                                    if route.retries is not None else config.max_retries),
                           rng=self._rng, deadline=ctx.timeout if ctx.timeout is not None else config.timeout,
                           timeout=ctx.timeout, first_byte=config.first_byte_timeout)
        call = Call(tracker, loop, route=route, local_only=privacy is not None and privacy.local_only)
        if self.telemetry is not None:
            call.trace = self.telemetry.begin(ctx.traceparent, ctx.tracestate)
            otlp = self.telemetry.config
            if call.local_only:   # the collector must be local too, and reached directly: a proxy sends spans on
                call.withhold_content = (otlp.proxy is not None
                                         or not await self.privacy.sink_local(otlp.endpoint))
        elif ctx.traceparent is not None:   # no spans of ours: the client's trace passes through
            call.trace = forwarded(ctx.traceparent, ctx.tracestate)
        try:
            if refusal is not None:     # recorded like any failed call; nothing was reserved or sent
                raise refusal
            buckets, max_wait, token_keys, too_large = self.limiter.call_buckets(route, ctx.key, tokens)
            if too_large and (refused := never_fits(buckets, _counted(uncapped, route))) is not None:
                raise refused
            scopes = self.budgets.scopes(route, ctx, targets)
            if uncapped and (scopes or self.limiter.meters_tokens_of(token_keys, ordered)):
                # what was reserved must bound what the call can use: a budget is never overspent
                # and no token window overrun because an answer ran longer than the allowance
                call.request = _with_max_tokens(req, output_tokens)
            amount = 0.0
            if scopes and operation == "image":   # n images, priced by what was asked (image_spend.py)
                if unpriced := unpriced_images(ordered):
                    raise BudgetExceeded(scopes[0].key, scopes[0].limit_usd, 0.0, unpriced=unpriced, images=True)
                amount = image_bound(ordered, req)
            elif scopes:
                if unpriced := self._cost_bound.unpriced(ordered):   # fail closed: nothing bounds their spend
                    raise BudgetExceeded(self.budgets.label(scopes[0].key), scopes[0].limit_usd, 0.0, unpriced=unpriced)
                bound = input_bound(operation, req)
                if bound is None and (unwindowed := self._cost_bound.unwindowed(ordered)):
                    # an attachment of unknown size, and no window caps what these targets bill
                    raise BudgetExceeded(self.budgets.label(scopes[0].key), scopes[0].limit_usd, 0.0,
                                         unsized=unwindowed)
                if not req.extra_body:   # nearly every call: no tier, no server-side search
                    amount = self._cost_bound(ordered, bound, output_tokens, None)
                else:
                    amount = self._cost_bound(ordered, bound, output_tokens, service_tier_of(req))
                    if searches := web_search_bound(req):   # billed per search, on top of the tokens
                        amount += self._cost_bound.search_fees(ordered, searches)
            state_clock = self._state_clock
            ask = None
            if ordered and self.budgets.mode == "state":   # the first attempt rides along: one round trip
                first = ordered[0]
                attempt_buckets, attempt_wait = self.limiter.attempt_buckets(first, tokens)
                if not attempt_buckets or never_fits(attempt_buckets) is None:   # else the attempt loop refuses it
                    ask = AttemptAsk(first.key, config.breaker, attempt_buckets, attempt_wait)
            admission = await self.budgets.admit(buckets, max_wait, scopes, amount, state_clock.now(),
                                                 self.limiter.window, state_clock, ask, token_keys)
            if admission is not None:
                call.admission = admission
                call.reserved_usd = admission.reserved_usd
                if admission.first is not None:
                    loop.preadmit(ordered[0], ask, admission.first)  # type: ignore[arg-type]
        except BaseException as exc:
            await self._settlement.finish_error(call, exc)
            raise
        return call

    async def _private(self, decision: Any, route: RouteConfig, ordered: list[ResolvedTarget],
                       tracker: CallTracker) -> tuple[list[ResolvedTarget], PrivacyViolation | None]:
        """Only the targets the privacy policy lets this call reach (or none, and the refusal
        to raise); the decision goes on the call record either way."""
        try:
            ordered, refused = await self.privacy.allowed(decision, route, ordered)
        except PrivacyViolation as exc:
            tracker.metadata["privacy"] = privacy_record(decision, exc.targets)
            return [], exc
        tracker.metadata["privacy"] = privacy_record(decision, refused)
        return ordered, None

    def privacy_of(self, model: str, ctx: CallContext) -> Decision | None:
        """The privacy policy a call to ``model`` runs under, or None when nothing restricts it."""
        return self.privacy.decision(self.router.route(model), ctx)

    async def store_refusal(self, model: str, ctx: CallContext) -> str | None:
        """Why content of a call to ``model`` may not be written to the store (the server's
        stored Responses), or None — see :meth:`RoutePrivacy.store_refusal`."""
        return await self.privacy.store_refusal(self.router.route(model), ctx, self.config.store.url)

    def _maintain(self) -> None:
        """Background: data retention and expired budget reservations, at start and hourly."""
        while not self._stop.is_set():
            try:
                now = self.clock.wall()
                self.store.cleanup(now, self.config.store.data_retention_days, self._retention_by_model())
                self.store.expire_reservations(now - RESERVATION_TTL_SECONDS)
            except Exception as exc:  # noqa: BLE001 - a background chore; the next round retries
                log.warning("store cleanup failed: %s", type(exc).__name__)
            self._stop.wait(CLEANUP_INTERVAL_SECONDS)

    def _retention_by_model(self) -> dict[str, int | None]:
        registry = getattr(self.engine, "registry", None)
        entries = registry.all() if registry is not None else []
        return {e.name: e.data_retention_days for e in entries if getattr(e, "data_retention_days", None)}


_NO_CONTEXT = CallContext()


def _counted(uncapped: bool, route: RouteConfig) -> str:
    """What a refusal of a call too large for a token limit says it counted, when the request
    set no max_tokens (the route's allowance counts, which the caller may not know)."""
    return (f", counting the route's output_estimate of {route.output_estimate:,} tokens for a request that sets "
            "no max_tokens" if uncapped else "")


def _for_call(slot: Slot, ctx: CallContext | None, call: Call) -> Any:
    """The slot's engine target with the attempt's own ``timeout=`` (the caller's), its head cap
    (what is left of the call's deadline), the beta features the caller asked for, which the
    target's adapter takes or ignores, and the trace headers its request carries upstream
    (``trace_context``; a stub engine's target, which has no ``trace_headers``, goes without).
    The router's targets are shared, so a copy."""
    target: Any = slot.target.target   # the Engine's own Target (a dataclass with a cfg)
    betas = ctx.client_betas if ctx is not None else ()
    trace = call.trace
    if slot.timeout is None and slot.head_timeout is None and not betas:
        if trace is None:
            return target
        traced = getattr(target, "traced", None)
        return target if traced is None else traced(trace.upstream_headers(len(call.tracker.attempts)))
    cfg = target.cfg
    if slot.timeout is not None:
        cfg = dataclasses.replace(cfg, timeout=slot.timeout)
    if betas:
        cfg = target.adapter.with_client_betas(cfg, betas)
    changes: dict[str, Any] = {} if cfg is target.cfg else {"cfg": cfg}
    if slot.head_timeout is not None:
        changes["head_timeout"] = slot.head_timeout
    if trace is not None and hasattr(target, "trace_headers"):
        changes["trace_headers"] = trace.upstream_headers(len(call.tracker.attempts))
    return dataclasses.replace(target, **changes) if changes else target


def _with_max_tokens(req: ChatRequest, cap: int) -> ChatRequest:
    """A copy of ``req`` that asks the provider for at most ``cap`` output tokens (the caller's
    own request is left as it was)."""
    return dataclasses.replace(req, max_tokens=cap)


def _check_allowed(model: str, ctx: CallContext) -> None:
    key = ctx.key
    if key is None or not key.allowed_models:
        return
    if any(fnmatch.fnmatchcase(model, pattern) for pattern in key.allowed_models):
        return
    raise PermissionDeniedError(
        f"key {key.key_id!r} may not use model {model!r}; it may use: {', '.join(key.allowed_models)}",
        provider="gateway", model=model, status=403, code="model_not_allowed")


def _privacy_guard(settings: Any, engine: Any) -> PrivacyGuard:
    """The Engine's guard (shared with direct SDK calls); a stub engine gets its own."""
    guard = getattr(engine, "privacy", None)
    if isinstance(guard, PrivacyGuard):
        return guard
    return PrivacyGuard(PrivacyConfig.parse(getattr(settings, "privacy", None)), getattr(engine, "registry", None))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
