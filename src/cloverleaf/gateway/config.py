"""The gateway's TOML tables, parsed once into typed values with errors that say what to fix.

``cloverleaf.Settings`` keeps ``[routes]``, ``[limits]``, ``[breaker]``, ``[budgets]``,
``[store]`` and ``[state]`` raw so the SDK never imports gateway code; this module is their
owner. Nothing here is read again per request.

::

    [routes.smart]
    targets = ["openai/gpt-4o", { model = "anthropic/claude-sonnet-4-5", weight = 2,
                                  api_key_env = "ANTHROPIC_KEY_2", base_url = "...", name = "claude-b" }]
    strategy = "priority"          # weighted | latency | cost
    retries = 2                    # per target, with backoff, before falling back
    fallback_on_rate_limit = true  # a full local rpm/tpm limit moves on to the next target
    fallback_on_content_filter = false
    privacy = "local-only"         # optional: only targets on this machine or your network (gateway/privacy.py)

    [limits.openai]                # a provider, a target, or a route ("provider:x"/"target:x"/"route:x" to force)
    rpm = 60                       # defaults: 60 rpm, 100000 tpm; 0 = unlimited
    tpm = 100000
    max_wait = 30                  # seconds a call may wait for room before it fails (or falls back)
    [limits."*"]                   # the default provider table: every provider without its own
                                   # (per provider, not per model: cap a model with its own table)

    [breaker]  failure_threshold = 5   cooldown_seconds = 60
    [budgets.smart] limit_usd = 5.0   period = "day"   scope = "route"   # or "project"
    [store] url = "sqlite:///path.db" | "postgresql://..."   data_retention_days = 30
    [store] record = "all"         # call records to keep: "all" | "errors" (failed, cancelled,
                                   # interrupted calls only) | "none"; fewer = more requests/s.
                                   # Budgets are kept either way; `cloverleaf spend`/`traces` see
                                   # only what was recorded.
    [store] batch_size = 100   flush_ms = 200   # records per transaction; the writer's wake-up period
    [state] url = "memory"         # or "redis://host:6379/0": limits, breakers, budgets shared
    [state] budgets = "state"      # budget counters in the state backend (default); "store": one
                                   # database transaction per call (workers without shared state)
    [state] limit_margin_seconds = 1.0   # rpm/tpm slots come back window + margin after admission
    [state] limit_window_seconds = 60    # the rolling window of every rpm/tpm limit
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._errors import ConfigError
from .._privacy import check_policy
from .._secret_repr import masked_repr
from .._setting_values import MAX_SECONDS, boolean, not_a_table, number, seconds, text, whole
from .breaker import BreakerPolicy
from .cache.config import ROUTE_KEYS as _ROUTE_CACHE_KEYS
from .cache.config import RouteCache, parse_route_cache

Strategy = Literal["priority", "weighted", "latency", "cost"]
STRATEGIES: tuple[str, ...] = ("priority", "weighted", "latency", "cost")
DEFAULT_RPM = 60
DEFAULT_TPM = 100_000
DEFAULT_MAX_WAIT = 30.0
DEFAULT_OUTPUT_ESTIMATE = 4096
RecordMode = Literal["all", "errors", "none"]
RECORD_MODES: tuple[str, ...] = ("all", "errors", "none")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target of a route: a model id (or registry entry name) with optional own credentials."""

    model: str
    name: str = ""                 # unique within the gateway; defaults to ``model``
    weight: float = 1.0
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)

    @property
    def key(self) -> str:
        return self.name or self.model


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    targets: tuple[TargetSpec, ...]
    strategy: Strategy = "priority"
    retries: int | None = None                 # None: Settings.max_retries
    fallback_on_rate_limit: bool = True
    fallback_on_content_filter: bool = False
    output_estimate: int = DEFAULT_OUTPUT_ESTIMATE
    implicit: bool = False                     # a plain model id used as a one-target route
    cache: RouteCache | None = None            # the route's own cache settings ([cache] otherwise)
    privacy: str | None = None                 # "local-only": only local targets (gateway/privacy.py)


@dataclass(frozen=True, slots=True)
class Limit:
    rpm: int | None = DEFAULT_RPM              # None/0: unlimited
    tpm: int | None = DEFAULT_TPM
    max_wait: float = DEFAULT_MAX_WAIT


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    scoped: Mapping[tuple[str, str], Limit] = field(default_factory=dict)   # ("provider", "openai") → Limit
    named: Mapping[str, Limit] = field(default_factory=dict)                # "openai" → Limit (scope inferred)
    default: Limit | None = None                                             # [limits."*"]

    def for_scope(self, scope: str, name: str) -> Limit | None:
        """The limit of one scope, or None. ``[limits."*"]`` stands in for a *provider* that has
        no table of its own, never for a target: "for every provider" means each provider's
        total, and applied per model it would also cap every model of a provider whose own
        table allows more (a per-model cap is its own ``[limits."provider/model"]``)."""
        found = self.scoped.get((scope, name)) or self.named.get(name)
        if found is None and scope == "provider":
            return self.default
        return found


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    name: str
    scope: Literal["route", "project"]
    limit_usd: float
    period: Literal["total", "day", "month"] = "total"

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str
    batch_size: int = 100
    flush_ms: int = 200
    data_retention_days: int | None = None
    record: RecordMode = "all"

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    routes: Mapping[str, RouteConfig]
    limits: LimitsConfig
    breaker: BreakerPolicy
    budgets: tuple[BudgetConfig, ...]
    store: StoreConfig
    state_url: str
    max_retries: int = 2
    state_prefix: str | None = None
    budgets_in: Literal["state", "store"] = "state"
    limit_window: float = 60.0
    limit_margin: float = 1.0
    #: ``[defaults] timeout``: a call's deadline to its response head, retries included (a
    #: call's own ``timeout=`` replaces it); ``first_byte_timeout``: one attempt's wait for it
    timeout: float = 600.0
    first_byte_timeout: float = 30.0

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)


def parse(settings: Any) -> GatewayConfig:
    """Read a ``cloverleaf._config.Settings`` into a :class:`GatewayConfig`."""
    env: Mapping[str, str] = getattr(settings, "env", None) or os.environ
    routes = {name: parse_route(name, table, env)
              for name, table in _tables("[routes]", settings.routes, "[routes.NAME]").items()}
    state = _state_table(settings.state)
    return GatewayConfig(
        routes=routes,
        limits=parse_limits(settings.limits or {}),
        breaker=parse_breaker(settings.breaker or {}),
        budgets=parse_budgets(settings.budgets or {}, routes),
        store=parse_store(settings.store or {}, env),
        state_url=state.get("url") or "memory",
        max_retries=whole("[defaults] max_retries", getattr(settings, "max_retries", 2)),
        timeout=seconds("[defaults] timeout", getattr(settings, "timeout", 600.0)),
        first_byte_timeout=seconds("[defaults] first_byte_timeout", getattr(settings, "first_byte_timeout", 30.0)),
        state_prefix=state.get("prefix"),
        budgets_in=_budgets_in(state),
        limit_window=seconds("[state] limit_window_seconds", state.get("limit_window_seconds", 60.0),
                             zero=True, minimum=0.001),
        limit_margin=seconds("[state] limit_margin_seconds", state.get("limit_margin_seconds", 1.0), zero=True),
    )


_STATE_KEYS = {"url", "prefix", "budgets", "limit_window_seconds", "limit_margin_seconds"}


def _budgets_in(table: Mapping[str, Any]) -> Literal["state", "store"]:
    value = table.get("budgets", "state")
    if value not in ("state", "store"):
        raise ConfigError(f"[state] budgets must be \"state\" (counters in the state backend) or \"store\" "
                          f"(a database transaction per call), got {value!r}")
    return value  # type: ignore[no-any-return]


def _state_table(table: Any) -> Mapping[str, Any]:
    checked = _table("[state]", table or {}, 'url = "redis://127.0.0.1:6379/0"')
    _check_keys("[state]", checked, _STATE_KEYS)
    for key in ("url", "prefix"):   # prefix = 5 was a TypeError in the first call's Redis key
        if checked.get(key) is not None:
            text(f"[state] {key}", checked[key])
    return checked


def _table(where: str, value: Any, example: str = "") -> dict[str, Any]:
    """``value`` if it is a table (settings built in code reach here unchecked by the loader)."""
    if not isinstance(value, Mapping):
        raise ConfigError(not_a_table(where, value, example))
    return dict(value)


def _tables(where: str, value: Any, example: str) -> dict[str, Any]:
    """A table of named tables (``[routes]``, ``[limits]``, ``[budgets]``): ``{}`` when unset."""
    return _table(where, value, example) if value else {}


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


_ROUTE_KEYS = {"targets", "strategy", "weights", "retries", "fallback_on_rate_limit",
               "fallback_on_content_filter", "output_estimate", "privacy", *_ROUTE_CACHE_KEYS}
_TARGET_KEYS = {"model", "name", "weight", "api_key_env", "base_url"}


def parse_route(name: str, table: Any, env: Mapping[str, str] | None = None) -> RouteConfig:
    where = f"[routes.{name}]"
    table = _table(where, table, 'targets = ["openai/gpt-4o"]')
    _check_keys(where, table, _ROUTE_KEYS)
    raw_targets = table.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise ConfigError(f"{where} needs targets = [\"provider/model\", ...] (at least one)")
    weights = table.get("weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(raw_targets)):
        raise ConfigError(f"{where}: weights must be a list with one number per target ({len(raw_targets)})")
    targets = []
    for i, raw in enumerate(raw_targets):
        t_where = f"{where} targets[{i}]"
        if isinstance(raw, str):
            raw = {"model": raw}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{t_where} must be a model name in quotes (\"openai/gpt-4o\") or a table "
                              f"({{ model = \"openai/gpt-4o\", name = \"...\" }})")
        raw = dict(raw)
        if "api_key" in raw:
            raise ConfigError(f"{t_where}: do not put a literal api_key in the config; use api_key_env")
        _check_keys(t_where, raw, _TARGET_KEYS)
        if not isinstance(raw.get("model"), str) or not raw["model"]:
            raise ConfigError(f"{t_where} needs model = \"provider/model\"")
        for key in ("name", "api_key_env", "base_url"):   # base_url = 5 was a 500 on every call to the route
            if raw.get(key) is not None:
                text(f"{t_where} {key}", raw[key])
        weight = raw.get("weight", weights[i] if weights else 1.0)
        key_env = raw.get("api_key_env")
        api_key = None
        if key_env:
            api_key = (env or os.environ).get(key_env)
            if not api_key:
                raise ConfigError(f"{t_where}: environment variable {key_env} (api_key_env) is not set")
        targets.append(TargetSpec(model=raw["model"], name=raw.get("name") or "",
                                  weight=number(f"{t_where} weight", weight), api_key_env=key_env,
                                  api_key=api_key, base_url=raw.get("base_url")))
    return make_route(name, targets, strategy=table.get("strategy", "priority"), retries=table.get("retries"),
                      fallback_on_rate_limit=table.get("fallback_on_rate_limit", True),
                      fallback_on_content_filter=table.get("fallback_on_content_filter", False),
                      output_estimate=table.get("output_estimate", DEFAULT_OUTPUT_ESTIMATE),
                      cache=parse_route_cache(where, table) if _ROUTE_CACHE_KEYS & set(table) else None,
                      privacy=table.get("privacy"))


def make_route(name: str, targets: Sequence[TargetSpec | str], *, strategy: str = "priority",
               retries: int | None = None, fallback_on_rate_limit: bool = True,
               fallback_on_content_filter: bool = False, output_estimate: int = DEFAULT_OUTPUT_ESTIMATE,
               implicit: bool = False, cache: RouteCache | None = None,
               privacy: str | None = None) -> RouteConfig:
    """Build and check a route in code (the TOML path ends here too)."""
    where = f"[routes.{name}]"
    if strategy not in STRATEGIES:
        raise ConfigError(f"{where}: strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    specs = tuple(TargetSpec(model=t) if isinstance(t, str) else t for t in targets)
    if not specs:
        raise ConfigError(f"{where} needs at least one target")
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise ConfigError(f"{where}: target {spec.key!r} appears twice; give one of them a distinct name = \"...\"")
        seen.add(spec.key)
    if strategy == "weighted" and sum(s.weight for s in specs) <= 0:
        raise ConfigError(f"{where}: weighted strategy needs at least one positive weight")
    if retries is not None:
        retries = whole(f"{where} retries", retries)
    if privacy is not None:
        privacy = check_policy(privacy, where)
    return RouteConfig(name, specs, strategy,  # type: ignore[arg-type]
                       retries, boolean(f"{where} fallback_on_rate_limit", fallback_on_rate_limit),
                       boolean(f"{where} fallback_on_content_filter", fallback_on_content_filter),
                       whole(f"{where} output_estimate", output_estimate, minimum=1), implicit,
                       cache, privacy)


_LIMIT_KEYS = {"rpm", "tpm", "max_wait"}
_SCOPES = ("provider", "target", "route")


def parse_limits(tables: Mapping[str, Any]) -> LimitsConfig:
    scoped: dict[tuple[str, str], Limit] = {}
    named: dict[str, Limit] = {}
    default = None
    for name, table in _tables("[limits]", tables, "[limits.NAME]").items():
        where = f"[limits.{name!r}]" if not name.isidentifier() else f"[limits.{name}]"
        table = _table(where, table, "rpm = 60")
        _check_keys(where, table, _LIMIT_KEYS)
        rpm = whole(f"{where} rpm", table.get("rpm", DEFAULT_RPM)) or None
        tpm = whole(f"{where} tpm", table.get("tpm", DEFAULT_TPM)) or None
        limit = Limit(rpm, tpm, seconds(f"{where} max_wait", table.get("max_wait", DEFAULT_MAX_WAIT), zero=True))
        scope, sep, rest = name.partition(":")
        if name == "*":
            default = limit
        elif sep and scope in _SCOPES:
            scoped[(scope, rest)] = limit
        else:
            named[name] = limit
    return LimitsConfig(scoped, named, default)


_BREAKER_KEYS = {"failure_threshold", "cooldown_seconds", "probe_timeout_seconds", "enabled"}


def parse_breaker(table: Mapping[str, Any]) -> BreakerPolicy:
    table = _table("[breaker]", table, "failure_threshold = 5")
    _check_keys("[breaker]", table, _BREAKER_KEYS)
    cooldown = seconds("[breaker] cooldown_seconds", table.get("cooldown_seconds", 60.0), zero=True)
    return BreakerPolicy(
        failure_threshold=whole("[breaker] failure_threshold", table.get("failure_threshold", 5), minimum=1),
        cooldown_seconds=cooldown,
        probe_timeout_seconds=seconds("[breaker] probe_timeout_seconds", table.get("probe_timeout_seconds", cooldown),
                                      zero=True),
        enabled=boolean("[breaker] enabled", table.get("enabled", True)),
    )


_BUDGET_KEYS = {"limit_usd", "period", "scope"}


def parse_budgets(tables: Mapping[str, Any], routes: Mapping[str, RouteConfig]) -> tuple[BudgetConfig, ...]:
    out = []
    for name, table in _tables("[budgets]", tables, "[budgets.NAME]").items():
        where = f"[budgets.{name}]"
        table = _table(where, table, "limit_usd = 5.0")
        _check_keys(where, table, _BUDGET_KEYS)
        if "limit_usd" not in table:
            raise ConfigError(f"{where} needs limit_usd = <dollars>")
        scope = table.get("scope") or _budget_scope(where, name, routes)
        if scope not in ("route", "project"):
            raise ConfigError(f"{where}: scope must be \"route\" or \"project\", got {scope!r}")
        period = table.get("period", "total")
        if period not in ("total", "day", "month"):
            raise ConfigError(f"{where}: period must be \"total\", \"day\" or \"month\", got {period!r}")
        limit = number(f"{where} limit_usd", table["limit_usd"])
        out.append(BudgetConfig(name, scope, limit, period))  # type: ignore[arg-type]
    return tuple(out)


def _budget_scope(where: str, name: str, routes: Mapping[str, RouteConfig]) -> str:
    """The scope of a budget that names none: a route of that name; a model id ("openai/gpt-4o":
    the route every call to that model takes); else a project, unless the name is one letter
    or so away from a route (a typo would quietly cap a project nobody tags, and nothing else)."""
    if name in routes or "/" in name:
        return "route"
    import difflib

    near = difflib.get_close_matches(name, list(routes), n=1, cutoff=0.75)
    if near:
        raise ConfigError(f"{where}: there is no route {name!r}; did you mean {near[0]!r}? If {name!r} is a project "
                          "(calls tagged project=...), say so with scope = \"project\"")
    return "project"


_STORE_KEYS = {"url", "batch_size", "flush_ms", "data_retention_days", "record"}


def default_store_url(env: Mapping[str, str]) -> str:
    """``$XDG_DATA_HOME/cloverleaf/cloverleaf.db`` (``~/.local/share/...`` without it)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + str(Path(base) / "cloverleaf" / "cloverleaf.db")


def parse_store(table: Mapping[str, Any], env: Mapping[str, str]) -> StoreConfig:
    table = _table("[store]", table, 'url = "sqlite:///cloverleaf.db"')
    _check_keys("[store]", table, _STORE_KEYS)
    retention = table.get("data_retention_days")
    record = table.get("record", "all")
    if record not in RECORD_MODES:
        raise ConfigError(f"[store] record must be \"all\", \"errors\" or \"none\", got {record!r}")
    if table.get("url") is not None:
        text("[store] url", table["url"])
    return StoreConfig(
        url=table.get("url") or default_store_url(env),
        batch_size=whole("[store] batch_size", table.get("batch_size", 100), minimum=1),
        flush_ms=whole("[store] flush_ms", table.get("flush_ms", 200), minimum=1, maximum=MAX_SECONDS * 1000),
        data_retention_days=None if retention is None else whole("[store] data_retention_days", retention,
                                                                 minimum=1),
        record=record,
    )
