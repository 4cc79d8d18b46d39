"""Where a call may go: the privacy policy, and whether a target's endpoint is local.

Two policies, ordered from loose to strict: ``"any"`` (the default) and ``"local-only"``.
Several settings can ask for one — ``[privacy] default``, a route, a virtual key, a workflow,
the call itself (``privacy=``), a data class mapped in ``[privacy.classes]`` — and the
strictest wins, so a call can never loosen what its key or route requires.

Under ``local-only`` a target passes only when both hold:

1. it is *declared* local: a local provider row (ollama, lmstudio, vllm, localai, fake,
   local and simple embeddings, or a ``[providers.X]`` of such a kind), or a registry entry
   marked ``is_public = false``;
2. its endpoint *is* local: the ``base_url`` host is, or resolves to, only loopback, private
   (RFC 1918, unique-local), link-local or shared (CGNAT, e.g. a tailnet) addresses. In-process
   providers (fake, local and simple embeddings) have no endpoint and pass.

The second rule is why a ``vllm`` row pointed at a public host is refused: the name says
local, the address does not. A host that cannot be resolved fails closed. Decisions are
cached per target for :data:`CACHE_SECONDS` so the hot path resolves nothing; the resolver
is injectable (tests map names to public addresses while every socket stays on loopback).

This module is the SDK's half (the direct-call check, also used by the gateway); the
gateway's route filtering and call records live in ``cloverleaf.gateway.privacy``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._errors import ConfigError, PrivacyViolation

ANY = "any"
LOCAL_ONLY = "local-only"
POLICIES: tuple[str, ...] = (ANY, LOCAL_ONLY)
_RANK = {ANY: 0, LOCAL_ONLY: 1}
#: How long a target's locality (a DNS answer) is trusted.
CACHE_SECONDS = 60.0
#: Adapter kinds that only ever talk to this machine (or to no network at all).
LOCAL_KINDS = frozenset({"ollama", "fake", "local_embeddings", "simple_embeddings"})
IN_PROCESS_KINDS = frozenset({"local_embeddings", "simple_embeddings"})
FAKE_HOST = "fake.cloverleaf.invalid"
#: Address categories (``attachments.addresses.classify``) that are this machine or the user's network.
_LOCAL_CATEGORIES = ("loopback", "private", "link-local", "unique-local", "shared address space")
#: ... except these: a cloud provider's infrastructure, not the user's; and an IPv6 transition
#: form (6to4, Teredo, NAT64) that carries a private IPv4 address, whose packets leave through a
#: relay or translator (2002::/16 takes the default IPv6 route), not the local network.
_NOT_LOCAL_MARKERS = ("metadata", "-embedded")

#: ``resolver(host, port) -> [ip, ...]``, as for attachments.
Resolver = Callable[[str, int], list[str]]


def check_policy(value: Any, where: str) -> str:
    if value not in POLICIES:
        raise ConfigError(f"{where}: privacy must be \"any\" or \"local-only\", got {value!r}")
    return str(value)


def stricter(a: str, b: str | None) -> bool:
    """Is ``b`` stricter than ``a``?"""
    return b is not None and _RANK[b] > _RANK[a]


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy in force for one call and the setting that imposed it."""

    policy: str = ANY
    rule: str = "[privacy] default"

    def tighten(self, policy: str | None, rule: str) -> Decision:
        return Decision(policy, rule) if policy is not None and stricter(self.policy, policy) else self

    @property
    def local_only(self) -> bool:
        return self.policy == LOCAL_ONLY


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """``[privacy]``::

        [privacy]
        default = "any"                  # or "local-only": every call, unless something stricter applies
        [privacy.classes]                # data_class="..." / x-cloverleaf-data-class: ... -> policy
        confidential = "local-only"
        public = "any"
    """

    default: str = ANY
    classes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, table: Mapping[str, Any] | None) -> PrivacyConfig:
        table = dict(table or {})
        unknown = set(table) - {"default", "classes"}
        if unknown:
            raise ConfigError(f"[privacy]: unknown key(s) {sorted(unknown)}; allowed: classes, default")
        default = check_policy(table.get("default", ANY), "[privacy] default")
        classes = table.get("classes") or {}
        if not isinstance(classes, dict):
            raise ConfigError("[privacy.classes] must be a table of data class = \"any\" | \"local-only\"")
        return cls(default, {str(k): check_policy(v, f"[privacy.classes] {k}") for k, v in classes.items()})

    def base(self) -> Decision:
        return Decision(self.default, "[privacy] default")

    def decide(self, *, privacy: str | None = None, data_class: str | None = None,
               start: Decision | None = None, privacy_rule: str = "the call's privacy option") -> Decision:
        """The strictest of ``start`` (default: ``[privacy] default``), the call's own policy
        and its data class's. An unknown data class is an error, never silently ``any``."""
        decision = start or self.base()
        if privacy is not None:
            decision = decision.tighten(check_policy(privacy, privacy_rule), privacy_rule)
        if data_class is not None:
            decision = decision.tighten(self.class_policy(data_class), f"data class {data_class!r} ([privacy.classes])")
        return decision

    def class_policy(self, data_class: str) -> str:
        try:
            return self.classes[data_class]
        except KeyError:
            known = ", ".join(sorted(self.classes)) or "none configured"
            raise ConfigError(f"unknown data class {data_class!r}; known: {known}. Map it to a policy in "
                              f"[privacy.classes] ({data_class} = \"local-only\")") from None


@dataclass(frozen=True, slots=True)
class Locality:
    local: bool
    reason: str


class PrivacyGuard:
    """Decides whether targets are local (cached) and refuses those that are not.

    One per Engine; thread-safe (a decision is an immutable value swapped into a dict).
    """

    def __init__(self, config: PrivacyConfig, registry: Any = None, resolver: Resolver | None = None) -> None:
        self.config = config
        self.registry = registry
        self.resolver = resolver
        #: address -> category (None: public), as ``attachments.addresses.classify``;
        #: replaceable so tests can call a loopback address public
        self.classify: Callable[[Any], str | None] = _default_classify
        self._cache: dict[tuple[str, str, str], tuple[float, Locality]] = {}
        self._lock = threading.Lock()

    # -- one target ---------------------------------------------------------------------
    def cached(self, target: Any) -> Locality | None:
        hit = self._cache.get(_cache_key(target))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def locality(self, target: Any) -> Locality:
        """Is ``target`` (an Engine ``Target``) local? May resolve its host (blocking): async
        callers run it in a thread on a cache miss (:meth:`cached` first)."""
        found = self.cached(target)
        if found is not None:
            return found
        found = self._decide(target)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[_cache_key(target)] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def forget(self) -> None:
        self._cache = {}

    # -- where else a call's text goes --------------------------------------------------
    def sink_cached(self, url: str) -> Locality | None:
        hit = self._cache.get(("", "", url))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def sink(self, url: str) -> Locality:
        """Is ``url`` local — a place other than the provider where a call's prompt or answer
        is written: the response cache's store (``memory``, a ``sqlite:///`` file, or Redis),
        the server's Responses store (SQLite or PostgreSQL) or an OpenTelemetry collector that
        receives captured content. A local-only call may leave its text only where it could
        send it. Cached and blocking like :meth:`locality`."""
        found = self.sink_cached(url)
        if found is not None:
            return found
        found = self._sink(url)
        with self._lock:
            self._cache[("", "", url)] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def _sink(self, url: str) -> Locality:
        """Judged by where the URL's client really connects (:mod:`._sink_destinations`): the
        host redis-py or libpq reads, from the query string and libpq's environment too, not
        only the netloc; every host it may reach must be local, and one it cannot name is not."""
        from ._sink_destinations import destination

        where = destination(url)
        if where is None:
            return self._endpoint(url)
        if where.unknown:
            return Locality(False, where.unknown)
        if not where.hosts:
            return Locality(True, where.local)
        found = Locality(False, "it has no endpoint address to check")
        for host, port in where.hosts:
            found = self._host(host, port)
            if not found.local:
                return found
        return found

    def _decide(self, target: Any) -> Locality:
        spec = target.spec
        entry = self.registry.get(target.name) if self.registry is not None else None
        declared = spec.local or spec.kind in LOCAL_KINDS or (entry is not None and entry.is_public is False)
        if not declared:
            return Locality(False, f"provider {spec.name!r} is not a local provider and no [[models]] entry "
                                   "marks it is_public = false")
        if spec.kind in IN_PROCESS_KINDS:
            return Locality(True, "runs in this process")
        return self._endpoint(target.cfg.base_url or "")

    def _endpoint(self, base_url: str) -> Locality:
        try:
            parts = urlsplit(base_url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return Locality(False, "its base_url cannot be parsed")   # not shown: it may hold a password
        return self._host(host, port)

    def _host(self, host: str, port: int) -> Locality:
        """Is ``host`` (a name or an address) local? A name that cannot be resolved is not:
        refused like any other non-local host, never an error of the call."""
        from .attachments.addresses import parse_ip, unwrap_mapped

        host = host.lower().rstrip(".")
        if not host:
            return Locality(False, "it has no endpoint address to check")
        if host == FAKE_HOST:
            return Locality(True, "served in process (fake)")
        try:
            literal = parse_ip(host)
        except ValueError:
            return Locality(False, f"host {host!r} is not a valid address")
        if literal is not None:
            addresses = [str(unwrap_mapped(literal))]
        else:
            try:
                addresses = list((self.resolver or _system_resolver)(host, port))
            except (OSError, UnicodeError) as exc:   # UnicodeError: a name IDNA cannot encode (a label > 63)
                return Locality(False, f"host {host!r} could not be resolved ({exc}); refusing to guess")
            if not addresses:
                return Locality(False, f"host {host!r} resolved to no address")
        return self._addresses(host, addresses, literal is None)

    def _addresses(self, host: str, addresses: list[str], by_name: bool) -> Locality:
        """Every address must be local: a name with one public answer is not."""
        from .attachments.addresses import parse_ip, unwrap_mapped

        categories = []
        for text in addresses:
            try:
                address = parse_ip(text)
            except ValueError:
                address = None
            if address is None:
                return Locality(False, f"host {host!r} resolved to an invalid address")
            category = self.classify(unwrap_mapped(address))
            if category is None:
                return Locality(False, f"host {host!r} is at public address {text}")
            if not category.startswith(_LOCAL_CATEGORIES) or any(m in category for m in _NOT_LOCAL_MARKERS):
                return Locality(False, f"host {host!r} is at {text}, which is {category}")
            categories.append(category)
        via = f"{host} is {addresses[0]}" if by_name else host
        return Locality(True, f"{via} ({categories[0]})")

    # -- the connection itself ----------------------------------------------------------
    def pinned(self, target: Any) -> Any:
        """The copy of ``target`` a local-only call uses once it passed :meth:`require`: its
        requests carry :meth:`check_peer`, so every connection they use is checked too."""
        from dataclasses import replace

        return replace(target, peer_check=self.check_peer)

    def reached(self, address: str) -> Locality:
        """Whether ``address``, the one a connection reached, is this machine or its network:
        judged as a name's answers are, with no lookup (only the address's category). An empty
        address (a transport that cannot tell) is not local."""
        address = address.partition("%")[0]   # an IPv6 zone (fe80::1%eth0) is not part of the address
        return self._addresses(address, [address], False)

    def check_peer(self, address: str, where: str) -> None:
        """Raise :class:`PrivacyViolation` unless ``address``, the one a local-only call's
        connection reached, is local. The transports call it once connected and before any
        byte of the request is written: the decision above came from a DNS answer (cached),
        and the HTTP client resolves the name again when it connects, so a name that changed
        its answer in between (DNS rebinding, a record that moved to the cloud) is caught here.
        Cheap: no lookup, only the address's category."""
        found = self.reached(address)
        if not found.local:
            raise PrivacyViolation(LOCAL_ONLY, "the call's privacy policy", [(
                where, f"the connection reached {address}, which is not local ({found.reason}), although the "
                       "name's answer checked before was: it changed in between (DNS rebinding?); nothing was sent")])

    # -- enforcement --------------------------------------------------------------------
    def require(self, decision: Decision, targets: Iterable[Any], *, route: str | None = None) -> None:
        """Raise :class:`PrivacyViolation` unless every target passes ``decision``."""
        if not decision.local_only:
            return
        refused = [(t.name, loc.reason) for t in targets if not (loc := self.locality(t)).local]
        if refused:
            raise PrivacyViolation(decision.policy, decision.rule, refused, route=route)


    def refuse_unresolvable(self, decision: Decision, model_id: str, settings: Any) -> None:
        """Called when ``model_id`` could not be resolved (a missing key, say): if its provider
        is not local by name anyway, say so — the privacy refusal is the answer that matters,
        not "set OPENAI_API_KEY". Returns quietly otherwise (the caller re-raises its error)."""
        if not decision.local_only:
            return
        from ._models import parse_model_id
        from .providers.registry import provider_names

        entry = self.registry.get(model_id) if self.registry is not None else None
        try:
            provider = entry.provider if entry is not None else parse_model_id(
                model_id, frozenset(provider_names()) | frozenset(settings.providers)).provider
        except ConfigError:
            return
        if entry is not None and entry.is_public is False:
            return
        custom = settings.providers.get(provider)
        kind = custom.kind if custom is not None and custom.kind else None
        if provider in provider_names():
            from .providers.registry import get_spec

            spec = get_spec(provider)
            if spec.local or spec.kind in LOCAL_KINDS:
                return
        elif kind in LOCAL_KINDS:
            return
        raise PrivacyViolation(decision.policy, decision.rule, [(model_id, f"provider {provider!r} is not a local "
                                                                "provider and no [[models]] entry marks it "
                                                                "is_public = false")])

    async def arequire(self, decision: Decision, targets: Iterable[Any], *, route: str | None = None) -> None:
        """:meth:`require` for async callers: a host lookup (cache miss) runs in a thread."""
        if not decision.local_only:
            return
        import asyncio

        targets = list(targets)
        for target in targets:
            if self.cached(target) is None:
                await asyncio.to_thread(self.locality, target)
        self.require(decision, targets, route=route)


def _default_classify(address: Any) -> str | None:
    from .attachments.addresses import classify

    return classify(address)


def _cache_key(target: Any) -> tuple[str, str, str]:
    return (target.name, target.spec.name, target.cfg.base_url or "")


def _system_resolver(host: str, port: int) -> list[str]:
    from .attachments.ssrf import default_resolver

    return default_resolver(host, port)
