"""From a model id to a :class:`Target`, one step per concern.

``Resolver.resolve`` runs, in order: find the registry entry (by name, by
``provider/identifier``, or by a bare identifier only one entry uses), choose the provider row,
choose the base URL (and the operation a full endpoint URL pins), build the connection settings,
find the credentials, and find the price. Every step reads the registry row or the adapter for
what differs between vendors; none names a vendor.

A missing key, base URL or region is not raised here: it is kept on the target
(:attr:`Target.problem`) and raised by the engine *after* the capability check, so a user
without an Anthropic key who asks Anthropic for embeddings is told that Anthropic cannot embed
(422), not to set a key first (503). Unknown providers and malformed ids still raise at once:
nothing sensible can be checked against them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from ._config import ModelEntry, ProviderSettings, Settings
from ._errors import ConfigError
from ._image_price_config import image_price as entry_image_price
from ._image_pricing import FREE_IMAGES, ImagePrice, lookup_image_keys
from ._litellm_names import credential_hints, steering_conflict
from ._models import parse_model_id
from ._pricing import ModelPrice, lookup_keys
from ._types import ImageRequest, ImageResponse
from .providers.base import Adapter, ProviderConfig
from .providers.registry import (
    PROVIDER_ALIASES,
    ProviderSpec,
    canonical_provider,
    custom_spec,
    get_adapter,
    get_spec,
    provider_names,
)

#: A free price, for local providers with no listed price: their calls cost nothing.
FREE = ModelPrice(0.0, 0.0)


@dataclass(slots=True)
class Target:
    """A resolved place to send a call: provider row, connection settings, model, price."""

    name: str
    spec: ProviderSpec
    cfg: ProviderConfig
    model: str
    adapter: Adapter
    price: ModelPrice | None = None
    #: The rates of an image generation here (:mod:`._image_pricing`), which bill unlike chat:
    #: None where the image price table does not list the model (a local provider's are free).
    image_price: ImagePrice | None = None
    #: The registry entry that matched, if any.
    entry: ModelEntry | None = None
    #: A configuration fault (no key, base URL or region), raised by :meth:`ready` after the
    #: capability check.
    problem: ConfigError | None = None
    #: Set on the copy a local-only call uses (``PrivacyGuard.pinned``): the transport checks
    #: that each connection reached a local address, ``(ip, where)``, before sending a byte.
    peer_check: Callable[[str, str], None] | None = None
    #: Set on the copy a gateway attempt uses when its call's deadline is near: every request
    #: built for it waits at most this long for its response head (``HttpRequest.head_timeout``).
    head_timeout: float | None = None
    #: Set on the copy a gateway attempt uses when it takes part in a W3C trace: the
    #: ``traceparent`` (and ``tracestate``) every request built for it carries to the provider.
    trace_headers: Mapping[str, str] | None = None

    @property
    def provider(self) -> str:
        return self.spec.name

    @property
    def context_window(self) -> int | None:
        """The entry's window, else the price row's: an entry may know the window of a model it
        gives no price for (a self-hosted one), and context-window fallback needs it."""
        window = self.entry.context_window if self.entry is not None else None
        return window or (self.price.context_window if self.price else None)

    @property
    def api_key(self) -> str | None:
        """The key calls to this target carry (the gateway scrubs it from error text)."""
        return self.cfg.api_key

    def traced(self, trace_headers: Mapping[str, str]) -> Target:
        """A copy of this (shared) target for one attempt that carries ``trace_headers``. Built
        field by field, by name: ``dataclasses.replace`` costs ten times as much, on every
        attempt of every call while spans are on."""
        return Target(name=self.name, spec=self.spec, cfg=self.cfg, model=self.model, adapter=self.adapter,
                      price=self.price, image_price=self.image_price, entry=self.entry, problem=self.problem,
                      peer_check=self.peer_check,
                      head_timeout=self.head_timeout, trace_headers=trace_headers)

    def priced_image(self, req: ImageRequest, out: ImageResponse) -> ImageResponse:
        """``out`` with its cost: an image bills by what was asked and made (:mod:`._image_pricing`),
        not as chat tokens. The upstream's own figure wins; a model the image table does not list
        keeps what its token rates made of the usage it reported (None without them)."""
        if out.usage.cost is not None:
            out.cost = out.usage.cost
        elif self.image_price is not None:
            out.cost = self.image_price.cost(req, out)
        return out

    def ready(self) -> None:
        """Raise the configuration fault found at resolution, if any (after capability checks)."""
        if self.problem is not None:
            raise self.problem


class ModelRegistry:
    """Named model entries (``[[models]]`` and the admin API).

    An entry applies wherever it matches: by its ``name``, by ``provider/identifier``, or by the
    bare ``identifier`` when exactly one entry uses it. Mutations rebuild the indexes and swap
    them in whole, so readers on other threads never see a half-updated registry.
    """

    def __init__(self, entries: list[ModelEntry] | None = None) -> None:
        self._entries: dict[str, ModelEntry] = {e.name: e for e in entries or []}
        self._index = _index(self._entries)
        self.version = 0

    def get(self, name: str) -> ModelEntry | None:
        """The entry named ``name`` (names only: the admin API's key)."""
        return self._entries.get(name)

    def find(self, model_id: str) -> ModelEntry | None:
        """The entry a call to ``model_id`` means: by name, provider/identifier or bare identifier."""
        entry = self._entries.get(model_id)
        return entry if entry is not None else self._index.get(model_id)

    def all(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def add(self, entry: ModelEntry) -> None:
        entries = {**self._entries, entry.name: entry}
        self._entries, self._index = entries, _index(entries)
        self.version += 1

    def remove(self, name: str) -> bool:
        if name not in self._entries:
            return False
        entries = {k: v for k, v in self._entries.items() if k != name}
        self._entries, self._index = entries, _index(entries)
        self.version += 1
        return True


def _index(entries: Mapping[str, ModelEntry]) -> dict[str, ModelEntry]:
    """``provider/identifier`` (also ``provider:identifier``) and unambiguous bare identifiers."""
    index: dict[str, ModelEntry] = {}
    bare: dict[str, list[ModelEntry]] = {}
    for entry in entries.values():
        provider = canonical_provider(entry.provider)
        for spelling in {entry.provider, provider}:
            index.setdefault(f"{spelling}/{entry.identifier}", entry)
            index.setdefault(f"{spelling}:{entry.identifier}", entry)
        bare.setdefault(entry.identifier, []).append(entry)
    for identifier, matches in bare.items():
        if len(matches) == 1:
            index.setdefault(identifier, matches[0])
    return index


#: Provider rows (and their adapters) kept built: far more than any configuration defines.
MAX_ROWS = 1024


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What a single call may override: the last layer of configuration."""

    api_key: str | None = None
    base_url: str | None = None
    max_retries: int | None = None
    timeout: float | None = None


class Resolver:
    """Turns model ids into targets for one :class:`Settings` and one registry."""

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.known = frozenset(provider_names()) | frozenset(PROVIDER_ALIASES) | frozenset(settings.providers)
        #: provider name → (its ``[providers.NAME]`` settings, row, adapter): a row defined in
        #: configuration is built once, not once per model name resolved on it (each name a
        #: caller tries would otherwise hold its own row and adapter for as long as its target)
        self._rows: dict[str, tuple[ProviderSettings | None, ProviderSpec, Adapter]] = {}

    def resolve(self, model_id: str, call: CallSettings) -> Target:
        entry = self.registry.find(model_id)
        provider, model = self._provider_and_model(model_id, entry)
        if self.settings.backend == "fake" and provider != "fake":
            provider, entry = "fake", None
        spec, adapter = self._row(provider)
        ps = self.settings.providers.get(provider) or self.settings.providers.get(spec.name)
        base_url, operation = self._base_url(spec, ps, entry, call, adapter)
        adapter = adapter.for_model(model)   # the row's other wire format, if it has one (Claude on Vertex AI)
        cfg = self._config(spec, ps, entry, call, base_url, operation)
        problem: ConfigError | None = None
        try:
            try:
                cfg.api_key, cfg.api_key_env = self._api_key(spec, ps, entry, call.api_key, base_url)
                self._require_base_url(spec, model_id, cfg)
                prepared = adapter.prepare_config(cfg, self.settings.env)
            except ConfigError:
                self._refuse_litellm_steering(spec, ps, entry, call, cfg, None)   # the error to hear first
                raise
            self._refuse_litellm_steering(spec, ps, entry, call, cfg, prepared)
            cfg = prepared
        except ConfigError as exc:
            hints = credential_hints(spec.name, self.settings.env, str(exc))
            problem = ConfigError(f"{exc}{hints}") if hints else exc
        price = self._price(spec, adapter, model, entry, ps, cfg)
        image_price = (entry_image_price(f"[[models]] entry {entry.name!r}", entry.image_price)
                       if entry is not None and entry.image_price is not None
                       else lookup_image_keys(adapter.price_keys(adapter.underlying_model(model, cfg))))
        if image_price is None and spec.local:
            image_price = FREE_IMAGES   # a local server bills nothing; an unknown remote price stays None
        return Target(name=model_id, spec=spec, cfg=cfg, model=model, adapter=adapter, price=price,
                      image_price=image_price, entry=entry, problem=problem)

    # -- steps -----------------------------------------------------------------------------
    def _provider_and_model(self, model_id: str, entry: ModelEntry | None) -> tuple[str, str]:
        if entry is not None:
            return entry.provider, entry.identifier
        mid = parse_model_id(model_id, self.known)
        return mid.provider, mid.model

    def _row(self, provider: str) -> tuple[ProviderSpec, Adapter]:
        """``provider``'s row and its adapter, shared by every target on it (adapters are
        stateless; a built-in row's is shared already). Only names that resolve are kept: a
        configured or built-in provider's."""
        settings = self.settings.providers.get(provider)
        found = self._rows.get(provider)
        if found is None or found[0] is not settings:
            spec = self.spec(provider)
            if len(self._rows) >= MAX_ROWS:
                self._rows.clear()
            found = self._rows[provider] = (settings, spec, get_adapter(spec))
        return found[1], found[2]

    def spec(self, provider: str) -> ProviderSpec:
        """The row for ``provider``: a ``[providers.NAME]`` table defining a new one, or built in."""
        ps = self.settings.providers.get(provider)
        builtin = canonical_provider(provider) in provider_names()
        if ps is not None and ps.kind and not builtin:
            key_env = (ps.api_key_env,) if ps.api_key_env else ()
            return custom_spec(provider, ps.kind, ps.base_url or "", key_env=key_env, extra=ps.extra)
        if ps is not None and not builtin:
            raise ConfigError(f"[providers.{provider}] needs kind = \"openai\" (or another kind) to define a new provider")
        return get_spec(provider)

    def _base_url(self, spec: ProviderSpec, ps: ProviderSettings | None, entry: ModelEntry | None,
                  call: CallSettings, adapter: Adapter) -> tuple[str, str | None]:
        if self.settings.backend == "fake":  # offline means offline: no entry's or call's URL is dialled
            return adapter.split_endpoint(get_spec("fake").base_url)
        env = self.settings.env
        url = (call.base_url or (entry.base_url if entry else None)
               or (env.get(spec.base_url_env) if spec.base_url_env else None)
               or (ps.base_url if ps else None) or spec.base_url)
        return adapter.split_endpoint(url) if url else ("", None)

    def _config(self, spec: ProviderSpec, ps: ProviderSettings | None, entry: ModelEntry | None,
                call: CallSettings, base_url: str, operation: str | None) -> ProviderConfig:
        extra = {**spec.extra, **(ps.extra if ps else {}), **(entry.additional_config if entry else {})}
        return ProviderConfig(
            name=spec.name,
            kind=spec.kind,
            base_url=base_url,
            headers=dict(ps.headers) if ps else {},
            extra=spec.normalize_extra(extra),
            timeout=call.timeout if call.timeout is not None else (ps.timeout if ps else None),
            max_retries=(call.max_retries if call.max_retries is not None
                         else ps.max_retries if ps and ps.max_retries is not None else self.settings.max_retries),
            operation=operation,
        )

    def _refuse_litellm_steering(self, spec: ProviderSpec, ps: ProviderSettings | None, entry: ModelEntry | None,
                                 call: CallSettings, cfg: ProviderConfig, prepared: ProviderConfig | None) -> None:
        """A LiteLLM variable (``OLLAMA_API_BASE``, ``AWS_REGION_NAME``...) that would have sent
        this call elsewhere than where it is about to go refuses it: never a silent reroute.
        ``cfg`` is the configuration before the adapter reads the environment, ``prepared`` after
        (where the call goes; None when the adapter refused it)."""
        env = self.settings.env
        given = (call.base_url or (entry.base_url if entry else None) or (ps.base_url if ps else None)
                 or (env.get(spec.base_url_env) if spec.base_url_env else None))
        conflict = steering_conflict(spec.name, env, cfg.extra, None if given else spec.base_url,
                                     prepared.extra if prepared is not None else None)
        if conflict is not None:
            raise ConfigError(conflict)

    def _api_key(self, spec: ProviderSpec, ps: ProviderSettings | None, entry: ModelEntry | None,
                 explicit: str | None, base_url: str) -> tuple[str | None, str | None]:
        if explicit:
            return explicit, None
        if entry is not None and entry.key_problem:
            raise ConfigError(entry.key_problem)
        if entry is not None and entry.api_key:
            return entry.api_key, None
        if ps is not None and ps.api_key:  # Settings(providers={...: ProviderSettings(api_key=...)})
            return ps.api_key, None
        env = self.settings.env
        names: list[str] = []
        if entry is not None and entry.api_key_env:
            names.append(entry.api_key_env)
        if ps is not None and ps.api_key_env:
            names.append(ps.api_key_env)
        names.extend(spec.key_env)
        for name in names:
            if env.get(name):
                return env[name], name
        if spec.needs_key(base_url):
            wanted = names[0] if names else f"{spec.name.upper()}_API_KEY"
            also = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
            # the shell's way first (the CLI and the server show this too), then Python's
            raise ConfigError(f"no API key for {spec.name}: set {wanted}{also} in the environment, or name "
                              f"the variable that holds it with api_key_env under [providers.{spec.name}] in "
                              "cloverleaf.toml (calling from Python: pass api_key=)")
        return None, None

    @staticmethod
    def _require_base_url(spec: ProviderSpec, model_id: str, cfg: ProviderConfig) -> None:
        if cfg.base_url or not spec.needs_base_url:
            return
        hint = spec.base_url_hint.format(model=model_id) if spec.base_url_hint else (
            f"pass base_url= or set it in [providers.{spec.name}] in cloverleaf.toml")
        raise ConfigError(f"provider {spec.name!r} needs a base_url: {hint}")

    @staticmethod
    def _price(spec: ProviderSpec, adapter: Adapter, model: str, entry: ModelEntry | None,
               ps: ProviderSettings | None, cfg: ProviderConfig) -> ModelPrice | None:
        """The entry's rates, else the provider table's, else the built-in table's, else free for a
        local provider; None (unknown, never a made-up 0) otherwise. Cache rates the entry does
        not give follow the built-in row's (:meth:`ModelPrice.per_1k`)."""
        builtin = lookup_keys(adapter.price_keys(adapter.underlying_model(model, cfg)))
        if builtin is not None and (factor := adapter.price_factor(model, cfg)) != 1.0:
            builtin = builtin.scaled(factor)   # the endpoint's premium (Claude on a regional Vertex AI endpoint)
        window = entry.context_window if entry is not None and entry.context_window else None
        for rates in (entry, ps):
            if rates is not None and rates.input_cost_per_1k is not None and rates.output_cost_per_1k is not None:
                return ModelPrice.per_1k(rates.input_cost_per_1k, rates.output_cost_per_1k,
                                         rates.cached_input_cost_per_1k, window, rates.cache_write_cost_per_1k,
                                         cache_write_1h=rates.cache_write_1h_cost_per_1k, like=builtin)
        if builtin is None and spec.local:
            builtin = FREE  # a local server bills nothing; an unknown remote price stays None, never 0
        if builtin is not None and window:
            builtin = replace(builtin, context_window=window)
        return builtin


def embedding_model(model: str, known: frozenset[str] | set[str], registry: ModelRegistry | None = None) -> str:
    """A bare provider name (``openai``, ``ollama``) means that provider's default embedding model."""
    if registry is not None and registry.find(model) is not None:
        return model
    provider = canonical_provider(model)
    if model in known and provider in provider_names():
        default = get_spec(provider).embedding_model
        if default:
            return f"{model}/{default}"
    return model
