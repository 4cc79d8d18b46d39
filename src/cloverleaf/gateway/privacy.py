"""The privacy policy at the gateway: which of a route's targets a call may reach.

The policy in force is the strictest of ``[privacy] default``, the route's ``privacy``, the
virtual key's, the call's own (``privacy=`` / ``x-cloverleaf-privacy``) and its data class's
(``data_class=`` / ``x-cloverleaf-data-class``, mapped in ``[privacy.classes]``). Under
``local-only`` the route's targets are filtered *before* the attempt loop, so a cloud target
is never tried — not as the primary, not as a fallback — and a route left with no target
fails closed with :class:`~cloverleaf.PrivacyViolation`. Whether a target is local is the
SDK's decision (:mod:`cloverleaf._privacy`: declared local *and* resolving to a local
address), shared with direct SDK calls. The decision (policy, the setting that imposed it,
the targets refused) is kept in the call record's ``metadata["privacy"]``.

With no restricting setting (the default) this costs a few attribute reads per call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from .._context import CallContext
from .._errors import PrivacyViolation
from .._privacy import ANY, Decision, PrivacyGuard
from .config import RouteConfig
from .router import ResolvedTarget


class RoutePrivacy:
    def __init__(self, guard: PrivacyGuard) -> None:
        self.guard = guard

    def decision(self, route: RouteConfig, ctx: CallContext) -> Decision | None:
        """The policy for this call, or None when nothing restricts it."""
        config = self.guard.config
        key_privacy = ctx.key.privacy if ctx.key is not None else None
        if (config.default == ANY and route.privacy is None and key_privacy is None and ctx.privacy is None
                and ctx.data_class is None):
            return None
        decision = config.base().tighten(route.privacy, f"route {route.name!r}")
        if ctx.key is not None:
            decision = decision.tighten(key_privacy, f"virtual key {ctx.key.key_id!r}")
        return config.decide(privacy=ctx.privacy, data_class=ctx.data_class, start=decision,
                             privacy_rule=ctx.privacy_rule or "the call's privacy option")

    async def allowed(self, decision: Decision, route: RouteConfig,
                      targets: list[ResolvedTarget]) -> tuple[list[ResolvedTarget], list[tuple[str, str]]]:
        """The targets that pass, in order, and the refused ones with why. Raises
        :class:`PrivacyViolation` when none passes (nothing has been sent)."""
        if not decision.local_only:
            return targets, []
        guard = self.guard
        passed: list[ResolvedTarget] = []
        refused: list[tuple[str, str]] = []
        for t in targets:
            locality = guard.cached(t.target)
            if locality is None:      # a host lookup: off the event loop
                locality = await asyncio.to_thread(guard.locality, t.target)
            if locality.local:    # its requests check each connection's address too (DNS rebinding)
                passed.append(dataclasses.replace(t, target=guard.pinned(t.target)))
            else:
                refused.append((t.key, locality.reason))
        if not passed:
            raise PrivacyViolation(decision.policy, decision.rule, refused, route=route.name)
        return passed, refused

    async def sink_local(self, url: str) -> bool:
        """Is ``url`` — where a call's text would be written besides the provider (the response
        cache, a collector capturing content, the response store) — local? Host lookups run
        off the event loop; answers are cached like a target's."""
        found = self.guard.sink_cached(url)
        if found is None:
            found = await asyncio.to_thread(self.guard.sink, url)
        return found.local

    async def store_refusal(self, route: RouteConfig, ctx: CallContext, store_url: str) -> str | None:
        """Why this call's content may not be kept in the store at ``store_url`` (the server's
        stored Responses), or None: under local-only the store must be local too."""
        decision = self.decision(route, ctx)
        if decision is None or not decision.local_only or await self.sink_local(store_url):
            return None
        found = self.guard.sink_cached(store_url)
        why = found.reason if found is not None else "it is not local"
        return f"{decision.rule} makes this call local-only, and the store is not local ({why})"


def record(decision: Decision, refused: list[tuple[str, str]]) -> dict[str, Any]:
    """What the call record keeps (``metadata["privacy"]``): no secrets, only names and reasons."""
    return {"policy": decision.policy, "rule": decision.rule,
            "refused": [{"target": t, "reason": why} for t, why in refused]}
