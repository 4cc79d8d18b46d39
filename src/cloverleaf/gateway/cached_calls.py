"""A gateway call and the response cache: whether it may use it, the lookup, a hit's answer.

The lookup comes after admission (allowed model, limits and budgets all apply to a cached
answer too) and before any attempt. A hit costs nothing and takes no tokens: its ticket and
budget reservations are given back through the call's settlement, and its record says "hit".
Its request counts against its virtual key's rpm (that limits the client, which did send it) but
not against its route's rpm/tpm, which protect the upstream a hit never reaches: with ``rpm = 2``
a miss and a hit used to leave no room for the next call. Those are given back before the answer
leaves, so a client's next call, sent the moment it has the answer, finds them free. Its structured output is validated by the engine's
own rule (``parse_structured``), so a hit fails or passes exactly where its miss did. Under a
local-only privacy policy the cache is used only where the call's own text could go (see
:meth:`CachedCalls.allowed`).
"""

from __future__ import annotations

import asyncio
import logging

from .._context import CallContext
from .._errors import PrivacyViolation
from .._types import ChatRequest, ChatResponse, EmbeddingResponse, ImageResponse, StreamEvent
from .cache import CacheHit, CachePlan, ResponseCache
from .call import Call
from .clock import Clock
from .privacy import RoutePrivacy
from .protocols import EngineLike
from .settlement import Settlement

log = logging.getLogger("cloverleaf.gateway.cache")


class CachedCalls:
    def __init__(self, cache: ResponseCache, engine: EngineLike, privacy: RoutePrivacy, settlement: Settlement,
                 clock: Clock) -> None:
        self.cache = cache
        self._engine = engine
        self._privacy = privacy
        self._settlement = settlement
        self._clock = clock

    async def allowed(self, call: Call) -> bool:
        """Under local-only the response cache is used only where the call's text could go
        itself: its store must be local (memory, a SQLite file, a Redis on this machine or
        network; a hosted Redis would hold the prompt's answer), and a semantic cache's
        embedding model must be local too (looking up a prompt embeds it). Otherwise the call
        skips the cache — it is still answered, and nothing is written anywhere else.

        The embedding model's locality is read per call, as a chat target's is (the guard
        keeps a DNS answer for a minute): a name that moved to the cloud stops the cache."""
        if not call.local_only:
            return True
        config = self.cache.config
        if not (await self._privacy.sink_local(config.url)):
            return False
        if config.mode != "semantic":
            return True
        guard = self._privacy.guard
        target = self.cache.embedding_target()
        locality = guard.cached(target)
        if locality is None:      # a host lookup: off the event loop
            locality = await asyncio.to_thread(guard.locality, target)
        return locality.local

    async def lookup(self, call: Call, model: str, req: ChatRequest, ctx: CallContext | None, *,
                     stream: bool = False) -> CacheHit | None:
        """The cached answer for this call (``stream``: with the events to send), if any; notes
        the plan (to store the answer) on the call."""
        key = ctx.key if ctx is not None else None
        route_cache = call.route.cache if call.route is not None else None
        plan = self.cache.plan(model, req, route_cache, key.key_id if key else None,
                               ctx.cache if ctx is not None else None, ctx.client_betas if ctx is not None else ())
        if plan is None:
            return None
        call.cache_plan = plan
        # a local-only call embeds its prompt as it sends it: each connection checked where it
        # landed (DNS rebinding), and a refusal there skips the cache, never fails the call
        embed_with = self._privacy.guard.pinned(self.cache.embedding_target()) if (
            call.local_only and plan.scope is not None) else None
        try:
            found = await self.cache.lookup(plan, embed_with, stream=stream)
        except PrivacyViolation as refused:
            log.warning("response cache skipped for a local-only call: its embedding request was refused (%s)",
                        "; ".join(f"{where}: {why}" for where, why in refused.targets))
            call.cache_plan = None    # nothing read, nothing stored: the call goes on under its own checks
            return None
        if plan.read:
            call.tracker.cache = "hit" if found is not None else "miss"
            if ctx is not None:
                ctx.cache_result = call.tracker.cache
                ctx.cache_similarity = found.similarity if found is not None else None
        return found

    async def answer(self, call: Call, hit: CacheHit, req: ChatRequest, ctx: CallContext | None) -> ChatResponse:
        """A hit's answer; what the call took is given back (after the response, when the
        caller awaits bookkeeping then) and the record says "hit"."""
        resp = hit.response
        call.response = resp
        self._engine.parse_structured(req, resp)   # as the call that stored it was: the engine's one rule
        call.finished = True
        target, provider, model = resp.metadata.target, resp.provider, resp.model
        resp.metadata.attempts = []
        settlement = self._settlement

        # the route's room back now (one state operation, only where the route has limits);
        # everything else after the response, when the caller awaits bookkeeping then
        frees_route = call.admission is not None and bool(call.admission.upstream_keys)
        if frees_route:
            await settlement.close(call, 0, 0.0, hit=True)

        async def settle() -> None:
            try:
                if not frees_route:
                    await settlement.close(call, 0, 0.0, hit=True)
            finally:
                if settlement.record_ok:
                    settlement.record(call, call.tracker.record(self._clock, status="ok", target=target,
                                                                provider=provider, model=model, usage=None, cost=0.0))

        if ctx is not None and ctx.after_response is not None:
            ctx.after_response.append(settle())
        else:
            await settle()
        return resp

    async def store(self, plan: CachePlan, resp: ChatResponse | EmbeddingResponse | ImageResponse,
                    events: list[StreamEvent] | None) -> None:
        if isinstance(resp, ChatResponse):   # only chat calls have a plan
            await self.cache.store(plan, resp, events)
