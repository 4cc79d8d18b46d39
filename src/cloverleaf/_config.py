"""Settings, from defaults < ``cloverleaf.toml`` < environment < call arguments.

Settings are read once, into a :class:`Settings` value held by a ``Client``; nothing is
re-read per request and nothing is global. The environment is captured at load time
(``Settings.env``), so tests pass a dict instead of mutating ``os.environ``.

The gateway's tables (``routes``, ``limits``, ``breaker``, ``budgets``, ``store``, ``state``)
are kept raw here and parsed by ``cloverleaf.gateway.config``, so the SDK never imports
gateway code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ._errors import ConfigError
from ._image_price_config import image_price
from ._image_pricing import ImagePrice
from ._litellm_names import config_file_advice
from ._secret_repr import masked_repr
from ._setting_values import (
    boolean,
    env_seconds,
    env_whole,
    inline_table,
    not_a_table,
    number,
    seconds,
    text,
    text_table,
    whole,
)

CONFIG_FILE_NAME = "cloverleaf.toml"


@dataclass(slots=True)
class ProviderSettings:
    """A ``[providers.NAME]`` table: a new OpenAI-compatible (or other kind) provider, or
    overrides for a built-in one."""

    name: str
    kind: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_retries: int | None = None
    #: A price for every model of this provider that no registry entry prices (a self-hosted
    #: server's running cost, a negotiated rate); it wins over the built-in table.
    input_cost_per_1k: float | None = None
    output_cost_per_1k: float | None = None
    cached_input_cost_per_1k: float | None = None
    cache_write_cost_per_1k: float | None = None
    #: One-hour prompt-cache writes (Anthropic's ``ttl: "1h"``), dearer than the five-minute ones.
    cache_write_1h_cost_per_1k: float | None = None

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)


@dataclass(slots=True)
class ModelEntry:
    """One registry row (``[[models]]`` or the admin API)."""

    name: str
    identifier: str
    provider: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    is_public: bool = True
    input_cost_per_1k: float | None = None
    output_cost_per_1k: float | None = None
    cached_input_cost_per_1k: float | None = None
    cache_write_cost_per_1k: float | None = None
    #: One-hour prompt-cache writes (Anthropic's ``ttl: "1h"``), dearer than the five-minute ones.
    cache_write_1h_cost_per_1k: float | None = None
    context_window: int | None = None
    #: What an image generation costs on this model, in the shape ``data/prices.json`` uses under
    #: ``images`` (:mod:`._image_price_config`): it wins over the built-in table, and gives a
    #: self-hosted or new image model the price a budget needs. Checked as the entry loads.
    image_price: ImagePrice | Mapping[str, Any] | None = None
    additional_config: dict[str, Any] = field(default_factory=dict)
    data_retention_days: int | None = None
    #: Why the entry's own provider key cannot be used, set by the server when a stored key
    #: cannot be decrypted: calls to the entry fail saying so, rather than going out without
    #: the key (or with another one from the environment). Not a cloverleaf.toml key.
    key_problem: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEntry:
        known = {f.name for f in fields(cls)} - {"key_problem"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"[[models]] entry {data.get('name')!r}: unknown keys {sorted(unknown)}; "
                              f"allowed: {sorted(known)}")
        for required in ("name", "identifier", "provider"):
            if not data.get(required):
                raise ConfigError(f"[[models]] entry {dict(data).get('name', '?')!r} needs {required!r}")
        return cls(**dict(data))


@dataclass(slots=True)
class Settings:
    default_model: str | None = None
    embedding_model: str | None = None
    image_model: str | None = None
    #: "fake" sends every call to the fake provider (CLOVERLEAF_BACKEND=fake).
    backend: str | None = None
    #: Timeouts in seconds (see cloverleaf.transport.base.Timeouts): a call's deadline to its
    #: response head, retries included; opening a connection; the wait for the response head;
    #: the wait between two pieces of a body. A hanging upstream fails over after
    #: ``first_byte_timeout``.
    timeout: float = 600.0
    connect_timeout: float = 5.0
    first_byte_timeout: float = 30.0
    idle_timeout: float = 30.0
    max_retries: int = 2
    #: Async HTTP client for real network calls: "auto" (the lean "h1" client when httptools is
    #: installed and no proxy is set, else aiohttp, else httpx), "h1", "aiohttp", "httpx".
    http_client: str = "auto"
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    models: list[ModelEntry] = field(default_factory=list)
    routes: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    breaker: dict[str, Any] = field(default_factory=dict)
    budgets: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    telemetry: dict[str, Any] = field(default_factory=dict)
    #: ``[privacy]``: default policy and data classes (parsed by ``cloverleaf._privacy``).
    privacy: dict[str, Any] = field(default_factory=dict)
    #: Force the gateway on even without routes/limits (the server always uses it).
    gateway: bool = False
    source_path: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return masked_repr(self)   # a printed or logged config shows no credential (_secret_repr)

    @property
    def uses_gateway(self) -> bool:
        return bool(self.gateway or self.routes or self.limits or self.budgets or self.store or self.breaker
                    or self.state or self.cache or self.telemetry)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
             **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        settings = cls(env=env)
        file = _config_path(path, env)
        if file is not None:
            settings = _apply_toml(settings, file)
        settings = _apply_env(settings, env)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if "backend" in given:
            checked_backend("the backend setting", given["backend"])
        out = replace(settings, **given)
        if given.keys() & {"providers", "models", "attachments"}:  # the file's were checked as it loaded
            check_keys(out, where="settings")
        return out

    def model_entry(self, name: str) -> ModelEntry | None:
        for entry in self.models:
            if entry.name == name:
                return entry
        return None


def _config_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        if not str(path).strip():   # Path("") is ".": "config file '.' not found" named no file given
            raise ConfigError("the config file path is empty: give the path of a cloverleaf.toml (--config FILE)")
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} not found")
        return p
    if env.get("CLOVERLEAF_CONFIG"):
        p = Path(env["CLOVERLEAF_CONFIG"]).expanduser()
        if not p.is_file():
            raise ConfigError(f"CLOVERLEAF_CONFIG points to {str(p)!r}, which does not exist")
        return p
    p = Path.cwd() / CONFIG_FILE_NAME
    return p if p.is_file() else None


_TABLES = ("routes", "limits", "breaker", "budgets", "store", "state", "attachments", "server", "cache",
           "telemetry", "privacy")
_DEFAULT_KEYS = {"model": "default_model", "default_model": "default_model", "embedding_model": "embedding_model",
                 "image_model": "image_model", "backend": "backend", "timeout": "timeout",
                 "connect_timeout": "connect_timeout", "first_byte_timeout": "first_byte_timeout",
                 "idle_timeout": "idle_timeout", "max_retries": "max_retries", "gateway": "gateway",
                 "http_client": "http_client"}
_PROVIDER_KEYS = {f.name for f in fields(ProviderSettings)} - {"name"}
_SECONDS = ("timeout", "connect_timeout", "first_byte_timeout", "idle_timeout")
_TEXT_DEFAULTS = ("model", "default_model", "embedding_model", "image_model", "backend", "http_client")


def _apply_toml(settings: Settings, file: Path) -> Settings:
    try:
        source = file.read_text(encoding="utf-8")
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        advice = config_file_advice(source, file.suffix)   # a LiteLLM config.yaml brought along
        raise ConfigError(f"{file}: {advice}" if advice else f"{file}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:        # TOML is UTF-8 by definition
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    unknown = set(data) - {"defaults", "providers", "models", *_TABLES}
    if unknown:
        raise ConfigError(f"{file}: unknown table(s) {sorted(unknown)}; allowed: defaults, providers, models, "
                          + ", ".join(_TABLES))
    for name in ("defaults", "providers", *_TABLES):
        if name in data and not isinstance(data[name], dict):
            raise ConfigError(f"{file}: " + not_a_table(f"[{name}]", data[name], _TABLE_EXAMPLES[name]))
    changes: dict[str, Any] = {"source_path": file}
    for key, value in (data.get("defaults") or {}).items():
        if key not in _DEFAULT_KEYS:
            raise ConfigError(f"{file}: unknown key [defaults].{key}; allowed: {sorted(_DEFAULT_KEYS)}")
        if key in _SECONDS:
            value = seconds(f"{file}: [defaults] {key}", value)
        if key == "max_retries":
            value = whole(f"{file}: [defaults] max_retries", value)
        if key == "gateway":
            boolean(f"{file}: [defaults] gateway", value)
        if key in _TEXT_DEFAULTS:
            text(f"{file}: [defaults] {key}", value)
        if key == "backend":
            value = checked_backend(f"{file}: [defaults] backend", value)
        changes[_DEFAULT_KEYS[key]] = value
    providers = {}
    for name, table in (data.get("providers") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: " + not_a_table(f"[providers.{name}]", table, 'kind = "openai"'))
        bad = set(table) - _PROVIDER_KEYS
        if bad:
            raise ConfigError(f"{file}: [providers.{name}] unknown keys {sorted(bad)}; allowed: {sorted(_PROVIDER_KEYS)}")
        if "api_key" in table:
            raise ConfigError(f"{file}: [providers.{name}] must not hold a literal api_key; "
                              f"set api_key_env to the name of an environment variable instead")
        providers[name] = ProviderSettings(name=name, **_values_checked(f"{file}: [providers.{name}]", table))
    changes["providers"] = providers
    models = data.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise ConfigError(f"{file}: models must be an array of tables: [[models]]")
    changes["models"] = [ModelEntry.from_dict(_values_checked(f"{file}: [[models]] entry {m.get('name')!r}", m))
                         for m in models]
    for table in _TABLES:
        if table in data:
            changes[table] = data[table]
    out = replace(settings, **changes)
    check_keys(out, where=str(file))
    return out


def check_keys(settings: Settings, where: str = "cloverleaf.toml") -> None:
    """At load time, not at first use: every registry entry names a provider that exists, and
    every ``additional_config``/``extra`` and ``[attachments]`` key is one its reader knows (a
    typo would otherwise be silently ignored, or a raw TypeError at the first attachment)."""
    from .providers.registry import KINDS, PROVIDER_ALIASES, canonical_kind, check_config_keys, kind_of, provider_names

    custom = {name: ps.kind for name, ps in settings.providers.items()}
    for name, ps in settings.providers.items():   # the file's were checked as they loaded; these may come from code
        _values_checked(f"{where}: [providers.{name}]", _as_table(ps))
    for entry in settings.models:
        _values_checked(f"{where}: [[models]] entry {entry.name!r}", _as_table(entry))
    for name, ps in settings.providers.items():
        if ps.kind is None and name not in provider_names() and name not in PROVIDER_ALIASES:
            raise ConfigError(f"{where}: [providers.{name}] is not a built-in provider; add kind = \"openai\" "
                              "(or another kind) to define it")
        if ps.kind is not None and (not isinstance(ps.kind, str) or canonical_kind(ps.kind) not in KINDS):
            # a typo ("opneai") passed here and failed every call to the provider instead
            raise ConfigError(f"{where}: [providers.{name}] kind = {ps.kind!r} is not a provider kind; "
                              f"kinds: {', '.join(KINDS)}")
        check_config_keys(name, kind_of(name, custom), ps.extra, f"{where}: [providers.{name}] extra")
    for entry in settings.models:
        try:
            kind = kind_of(entry.provider, custom)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [[models]] entry {entry.name!r}: {exc}") from None
        check_config_keys(entry.provider, kind, entry.additional_config,
                          f"{where}: [[models]] entry {entry.name!r} additional_config")
    if settings.attachments:
        from dataclasses import fields as dc_fields

        from .attachments.policy import AttachmentPolicy

        if not isinstance(settings.attachments, Mapping):
            raise ConfigError(f"{where}: " + not_a_table("[attachments]", settings.attachments,
                                                         _TABLE_EXAMPLES["attachments"]))
        allowed = {f.name for f in dc_fields(AttachmentPolicy) if f.init}
        unknown = set(settings.attachments) - allowed
        if unknown:
            raise ConfigError(f"{where}: [attachments] unknown key(s) {sorted(unknown)}; allowed: "
                              f"{', '.join(sorted(allowed))}")
        try:   # its values too (numbers in range), not at the first attachment
            AttachmentPolicy(**settings.attachments)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


#: a key of each table, for the message when a table is written as ``store = "..."``
_TABLE_EXAMPLES = {"defaults": 'model = "openai/gpt-4o-mini"', "providers": '[providers.NAME] kind = "openai"',
                   "routes": '[routes.NAME] targets = ["openai/gpt-4o"]', "limits": "[limits.NAME] rpm = 60",
                   "budgets": "[budgets.NAME] limit_usd = 5.0", "breaker": "failure_threshold = 5",
                   "store": 'url = "sqlite:///cloverleaf.db"', "state": 'url = "redis://127.0.0.1:6379/0"',
                   "attachments": "max_bytes = 20971520", "server": "port = 4000", "cache": 'mode = "exact"',
                   "telemetry": 'otlp_endpoint = "http://127.0.0.1:4318"', "privacy": 'default = "local-only"'}


#: the keys of a [providers.NAME] table and of a [[models]] entry, by the kind of value they take
_PRICES = ("input_cost_per_1k", "output_cost_per_1k", "cached_input_cost_per_1k", "cache_write_cost_per_1k",
           "cache_write_1h_cost_per_1k")
_AT_LEAST_ONE = ("context_window",)
#: (``kind`` is checked with the other provider rules in check_keys, whose message lists the kinds)
_TEXT = ("name", "identifier", "provider", "base_url", "api_key_env", "api_key")
_BOOLEANS = ("is_public",)
_TABLES_OF_ANY = ("extra", "additional_config")
_TABLES_OF_TEXT = ("headers",)


def _values_checked(where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` with every value checked for its key's kind, naming the key: a price of "0.01"
    or NaN failed, or billed nothing, only when the first call was costed; ``identifier = 5``,
    ``base_url = 5`` or ``headers = "x"`` made every call to the model a 500; and
    ``is_public = "false"`` listed the model (the string is true) while privacy read it as false."""
    out = dict(table)
    for key, value in table.items():
        if value is None:
            continue
        if key == "timeout":
            out[key] = seconds(f"{where} timeout", value)
        elif key == "max_retries":
            out[key] = whole(f"{where} max_retries", value)
        elif key in _PRICES:
            out[key] = number(f"{where} {key}", value)
        elif key in _AT_LEAST_ONE:
            out[key] = whole(f"{where} {key}", value, minimum=1)
        elif key == "data_retention_days":   # 0: the store's own, as the admin API takes it
            out[key] = whole(f"{where} {key}", value, minimum=0)
        elif key in _TEXT:
            text(f"{where} {key}", value)
        elif key in _BOOLEANS:
            boolean(f"{where} {key}", value)
        elif key in _TABLES_OF_TEXT:
            out[key] = text_table(f"{where} {key}", value)
        elif key in _TABLES_OF_ANY:
            inline_table(f"{where} {key}", value)
        elif key == "image_price":
            out[key] = image_price(where, value)
    return out


#: The values ``backend`` takes: "fake" sends every call to the offline fake provider.
BACKENDS = ("fake",)


def checked_backend(where: str, value: Any) -> str:
    """``[defaults] backend`` or ``CLOVERLEAF_BACKEND``, which only ``"fake"`` means anything to:
    any other value (``FAKE``, ``offline``, a typo) was kept, shown by ``cloverleaf doctor`` as
    "every call goes to the fake provider", and ignored by every call, which then reached the
    real providers with the real keys: the opposite of what was asked, paid for."""
    text(where, value)
    if value not in BACKENDS:
        raise ConfigError(f"{where} must be \"fake\" (every call goes to the offline fake provider), got "
                          f"{value!r}; leave it unset (or empty) to call the real providers")
    return str(value)


def _as_table(row: ProviderSettings | ModelEntry) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    changes: dict[str, Any] = {}
    if env.get("CLOVERLEAF_MODEL"):
        changes["default_model"] = env["CLOVERLEAF_MODEL"]
    if env.get("CLOVERLEAF_EMBEDDING_MODEL"):
        changes["embedding_model"] = env["CLOVERLEAF_EMBEDDING_MODEL"]
    if env.get("CLOVERLEAF_IMAGE_MODEL"):
        changes["image_model"] = env["CLOVERLEAF_IMAGE_MODEL"]
    if env.get("CLOVERLEAF_BACKEND"):   # empty is unset: `CLOVERLEAF_BACKEND= scripts/run`
        changes["backend"] = checked_backend("CLOVERLEAF_BACKEND", env["CLOVERLEAF_BACKEND"])
    for var, name in (("CLOVERLEAF_TIMEOUT", "timeout"), ("CLOVERLEAF_CONNECT_TIMEOUT", "connect_timeout"),
                      ("CLOVERLEAF_FIRST_BYTE_TIMEOUT", "first_byte_timeout"),
                      ("CLOVERLEAF_IDLE_TIMEOUT", "idle_timeout")):
        if env.get(var):   # the same check as the file's [defaults] key: a 0 or NaN timed out every call
            changes[name] = env_seconds(var, env[var])
    if env.get("CLOVERLEAF_MAX_RETRIES"):
        changes["max_retries"] = env_whole("CLOVERLEAF_MAX_RETRIES", env["CLOVERLEAF_MAX_RETRIES"])
    if env.get("CLOVERLEAF_STORE_URL"):
        changes["store"] = {**settings.store, "url": env["CLOVERLEAF_STORE_URL"]}
    if env.get("CLOVERLEAF_STATE_URL"):
        changes["state"] = {**settings.state, "url": env["CLOVERLEAF_STATE_URL"]}
    return replace(settings, **changes) if changes else settings
