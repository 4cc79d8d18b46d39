"""The response cache: answer a repeated question without calling the provider again.

The gateway asks :meth:`ResponseCache.plan` once per chat call (after the call is admitted:
a key that may not use a model, or whose budget is spent, gets no cached answer from it),
then :meth:`lookup`; on a miss, :meth:`store` keeps the answer (and a stream's events, so a
replay has the real chunk boundaries) once the call has succeeded. A lookup hands back the
hit ready to serve (:class:`CacheHit`), built where a failure is still a miss: an entry that
cannot be replayed is dropped, and the provider answers. Entries are scoped to the
virtual key unless ``[cache] shared = true``. Only deterministic requests (temperature 0)
are cached unless the configuration says otherwise, and none whose content the key cannot
know before the call loads it (a URL the gateway downloads itself; see :mod:`.keys`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..._errors import PrivacyViolation
from ..._types import ChatRequest, ChatResponse, EmbeddingRequest, StreamEvent
from .backends import CacheBackend, MemoryBackend, open_backend
from .codec import CachedAnswer, dumps, loads
from .config import CacheConfig, RouteCache, parse_cache, parse_route_cache
from .copies import fresh
from .keys import Unkeyed, exact_key, is_deterministic, semantic_keys
from .semantic import nearest, normalise

log = logging.getLogger("cloverleaf.gateway.cache")
#: How long the cache is left alone after it failed (a Redis down or hung): calls go to the provider.
PAUSE_AFTER_FAILURE_SECONDS = 5.0

#: What a call asks of the cache (SDK ``cache=``, server ``Cache-Control``):
#: True/None use it, False neither reads nor writes, "refresh" writes without reading.
CacheDirective = bool | str | None


@dataclass(slots=True)
class CachePlan:
    """One call's cache decision, made once at admission."""

    read: bool
    write: bool
    ttl: float
    key: str                       # the exact key (semantic mode: the entry's own key)
    scope: str | None = None       # semantic mode: the scope hash
    text: str = ""                 # semantic mode: the prompt text that was embedded
    vector: list[float] | None = None


@dataclass(slots=True)
class CacheHit:
    """A cached answer ready for this call, the caller's own to change: the response (cost 0,
    marked as a hit) and, for a streamed call, the events to send, the last one ``done``
    carrying that response."""

    response: ChatResponse
    events: list[StreamEvent] | None
    similarity: float


class ResponseCache:
    def __init__(self, config: CacheConfig, engine: Any, backend: CacheBackend | None = None) -> None:
        self.config = config
        self._engine = engine
        self.backend = backend or open_backend(config.url, max_entries=config.max_entries, prefix=config.prefix)
        # memory keeps the objects themselves, copied whole on the way in and out (see .copies)
        self._encode = not isinstance(self.backend, MemoryBackend)
        self._embed_target: Any = None
        self.hits = 0
        self.misses = 0
        #: after a failure the cache is left alone until then (``time.monotonic``): see :meth:`_failed`
        self._paused_until = 0.0

    # -- decision ---------------------------------------------------------------------
    def plan(self, model: str, req: ChatRequest, route: RouteCache | None, key_id: str | None,
             directive: CacheDirective = None, betas: tuple[str, ...] = ()) -> CachePlan | None:
        """None when this call does not touch the cache at all. ``betas``: the caller's beta
        features (``anthropic-beta``), part of the key (see :mod:`.keys`)."""
        if directive is False or (route is not None and route.enabled is False):
            return None
        deterministic_only = self.config.deterministic_only
        if route is not None and route.deterministic_only is not None:
            deterministic_only = route.deterministic_only
        if deterministic_only and not is_deterministic(req):
            return None
        ttl = route.ttl if route is not None and route.ttl is not None else self.config.ttl
        scope = "" if self.config.shared else (key_id or "")
        read = directive != "refresh"
        try:
            if self.config.mode == "semantic":
                return CachePlan(read, True, ttl, *semantic_keys(scope, model, req, betas))
            return CachePlan(read, True, ttl, exact_key(scope, model, req, betas))
        except Unkeyed:   # e.g. a URL the gateway downloads: its content is unknown until then
            return None

    # -- lookup and store ---------------------------------------------------------------
    async def lookup(self, plan: CachePlan, embed_with: Any = None, *, stream: bool = False) -> CacheHit | None:
        """The hit, ready to serve (``stream``: with its events), or None. A cache that fails is
        a miss, never a failed call; so is an entry that cannot be replayed (it is dropped).
        ``embed_with``: the engine target a semantic lookup embeds the prompt with (a local-only
        call's pinned one, whose connections are checked; default :meth:`embedding_target`).
        A :class:`PrivacyViolation` from that check is raised: the caller skips the cache."""
        if not plan.read and plan.scope is None:
            return None
        found = None
        if time.monotonic() >= self._paused_until:
            try:
                found = await self._lookup(plan, embed_with)
            except PrivacyViolation:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken cache must not break serving
                self._failed("response cache lookup failed (%s): serving from the provider", exc)
        hit = None if found is None else await self._served(*found, stream=stream)
        if plan.read:
            if hit is None:
                self.misses += 1
            else:
                self.hits += 1
        return hit

    async def _lookup(self, plan: CachePlan, embed_with: Any) -> tuple[str, Any, float] | None:
        """(the entry's key, what the backend holds, the similarity) of the entry found."""
        if plan.read:
            found = await self.backend.get(plan.key)
            if found is not None:
                return plan.key, found, 1.0
        if plan.scope is None or not plan.text:
            return None
        plan.vector = normalise(await self._embed(plan.text, embed_with or self.embedding_target()))
        if not plan.read:
            return None
        best = nearest(plan.vector, await self.backend.vectors(plan.scope))
        if best is None or best[1] < self.config.similarity:
            return None
        found = await self.backend.get(best[0])
        return None if found is None else (best[0], found, round(min(1.0, best[1]), 6))

    async def _served(self, key: str, found: Any, similarity: float, *, stream: bool) -> CacheHit | None:
        """The hit built from a stored entry, or None (and the entry dropped) when it cannot be
        (a damaged row, a foreign writer): until its TTL ran out it would fail every call that
        asked. Logged once, by the error's type alone: the entry holds the prompt's answer."""
        try:
            answer: CachedAnswer = loads(found) if self._encode else fresh(found)
            answer.similarity = similarity
            if stream:
                events = replay_events(answer)
                response = events[-1].response
                assert response is not None
                return CacheHit(response, events, similarity)
            return CacheHit(replay(answer), None, similarity)
        except Exception as exc:  # noqa: BLE001 - an entry that cannot be served is a miss
            log.warning("a response cache entry could not be replayed (%s): dropped it, serving from the provider",
                        type(exc).__name__)
        try:
            await self.backend.delete(key)
        except Exception as exc:  # noqa: BLE001 - its TTL still ends it
            log.warning("could not drop a malformed response cache entry (%s)", type(exc).__name__)
        return None

    async def store(self, plan: CachePlan, response: ChatResponse, events: list[StreamEvent] | None) -> None:
        if not plan.write or response is None or time.monotonic() < self._paused_until:
            return
        try:
            answer = CachedAnswer(response=_detached(response), events=_neutral(events), created_at=time.time())
            await self.backend.put(plan.key, dumps(answer) if self._encode else fresh(answer), plan.ttl)
            if plan.scope is not None and plan.vector is not None:
                await self.backend.add_vector(plan.scope, plan.key, plan.vector, plan.ttl)
        except Exception as exc:  # noqa: BLE001 - failing to cache is not failing the call
            self._failed("could not store a response in the cache (%s)", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        """The cache failed: it is left alone for ``PAUSE_AFTER_FAILURE_SECONDS``, so a Redis that
        is down or hung costs one bounded wait every few seconds, not one on every call; the
        warning is logged once a pause."""
        if time.monotonic() >= self._paused_until:
            log.warning(what + "; the cache is skipped for %g s", type(exc).__name__, PAUSE_AFTER_FAILURE_SECONDS)
        self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS

    def embedding_target(self) -> Any:
        """The engine target of ``embedding_model`` (semantic mode), resolved once."""
        if self._embed_target is None:
            self._embed_target = self._engine.resolve(self.config.embedding_model)
        return self._embed_target

    async def _embed(self, text: str, target: Any) -> list[float]:
        resp = await self._engine.aembed(target, EmbeddingRequest(model=target.model, inputs=[text]))
        return list(resp.vectors[0])

    async def aclose(self) -> None:
        await self.backend.aclose()


def _detached(resp: ChatResponse) -> ChatResponse:
    """What the cache keeps: the response without what belongs to the call that made it
    (its attempts, its parsed object, the upstream's own copy of it — ``raw_response``, the
    OpenAI Response the server relays under OpenAI's id: replayed, it would answer a second
    call under the first one's id, already stored) and with its own metadata, usage and parts
    list. (The memory backend then copies it whole, see :mod:`.copies`: a caller's later
    changes to its response, down to a tool call's arguments, never reach the cache.)"""
    extra = {k: v for k, v in resp.metadata.extra.items() if k != "raw_response"}
    return dataclasses.replace(resp, parts=list(resp.parts), usage=dataclasses.replace(resp.usage), parsed=None,
                               metadata=dataclasses.replace(resp.metadata, attempts=[],
                                                            headers=dict(resp.metadata.headers), extra=extra))


def _neutral(events: list[StreamEvent] | None) -> list[StreamEvent] | None:
    """A stream's events without the upstream's own (``raw``) ones, for the reason
    :func:`_detached` drops its copy: a hit is rendered by the server's own encoder, under
    a response id of its own. Applied on replay too, to entries stored before this rule."""
    if events is None:
        return None
    return [e for e in events if e.type != "raw"]


def replay(answer: CachedAnswer) -> ChatResponse:
    """The cached response for this call, at cost 0 and marked as a hit. ``answer`` is this
    call's own, changed in place (a lookup decodes or copies a fresh one for each hit): what
    :func:`_detached` left out when it was stored stays out, for entries stored before it did."""
    resp = answer.response
    resp.cost, resp.parsed = 0.0, None
    resp.metadata.attempts = []
    resp.metadata.extra.pop("raw_response", None)
    resp.metadata.extra.update(cache="hit", cache_similarity=answer.similarity)
    return resp


def replay_events(answer: CachedAnswer) -> list[StreamEvent]:
    """The events to stream: the original ones when the entry came from a stream, else the
    events a live stream of the stored answer would have had, then ``done``. ``answer`` is
    this call's own, as for :func:`replay`: its events are handed on, not copied."""
    resp = replay(answer)
    if answer.events:
        events = _neutral(answer.events) or []
    else:
        events = _events_from(resp)
    last = events[-1] if events else None
    if last is None or last.type != "done":
        events.append(StreamEvent("done", finish_reason=resp.finish_reason, model=resp.model))
        last = events[-1]
    last.response = resp
    return events


def _events_from(resp: ChatResponse) -> list[StreamEvent]:
    """What a live stream of ``resp`` would have sent: each part's fields, its provider extras
    with them (a refusal's mark, a Gemini call's thought signature, a Responses item id), so a
    client streaming a cached answer gets what it would have got streaming the upstream."""
    from ..._types import Reasoning, Text, ToolCall

    out: list[StreamEvent] = []
    index = 0
    for part in resp.parts:
        if isinstance(part, Reasoning):
            if part.text or part.signature or part.redacted or part.extra:
                out.append(StreamEvent("reasoning", text=part.text or None, signature=part.signature,
                                       redacted=part.redacted, extra=part.extra))
        elif isinstance(part, Text):
            # a cited part is a block of its own, its citations first, as Anthropic streams them
            block = len(out) if part.citations else None
            out.extend(StreamEvent("citation", index=block, citation=c) for c in part.citations or ())
            out.append(StreamEvent("text", text=part.text, index=block, extra=part.extra))
        elif isinstance(part, ToolCall):
            out.append(StreamEvent("tool_call_delta", index=index, id=part.id, name=part.name,
                                   arguments=part.arguments_json, extra=part.extra))
            index += 1
    out.append(StreamEvent("usage", usage=copy.deepcopy(resp.usage)))
    # what a stream's done event carries, as the stream had it: the stop sequence that matched,
    # Perplexity's sources, Anthropic's applied context edits, OpenAI's refusal, Gemini's words
    extra = {k: resp.metadata.extra[k] for k in _DONE_EXTRAS if resp.metadata.extra.get(k) is not None}
    out.append(StreamEvent("done", finish_reason=resp.finish_reason, model=resp.model,
                           raw_finish_reason=resp.metadata.raw_finish_reason, id=resp.metadata.response_id,
                           extra=extra or None))
    return out


#: ``metadata.extra`` keys a live stream puts on its ``done`` event, which a replay gives back.
_DONE_EXTRAS = ("stop_sequence", "citations", "search_results", "context_management", "refusal", "finish_message")


__all__ = ["CacheConfig", "CacheHit", "CachePlan", "CachedAnswer", "CacheDirective", "MemoryBackend", "ResponseCache",
           "RouteCache", "parse_cache", "parse_route_cache", "replay", "replay_events"]
