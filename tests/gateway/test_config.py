"""Parsing the gateway's TOML tables: typed values, and errors that say what to fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloverleaf._client import Client
from cloverleaf._config import Settings
from cloverleaf._errors import ConfigError
from cloverleaf.attachments import AttachmentPolicy
from cloverleaf.gateway.cache.config import parse_cache
from cloverleaf.gateway.config import parse, parse_limits, parse_route
from cloverleaf.gateway.telemetry import parse_telemetry
from cloverleaf.server.options import ServerOptions


def test_full_config_parses(tmp_path: object) -> None:
    settings = Settings(
        routes={"smart": {"targets": ["openai/gpt-4o", {"model": "anthropic/claude-sonnet-4-5", "weight": 3,
                                                         "api_key_env": "K2", "name": "claude-b"}],
                          "strategy": "weighted", "retries": 1, "fallback_on_content_filter": True}},
        limits={"openai": {"rpm": 100}, "route:smart": {"tpm": 5000, "max_wait": 2}, "*": {"rpm": 0}},
        breaker={"failure_threshold": 3, "cooldown_seconds": 10},
        budgets={"smart": {"limit_usd": 5, "period": "day"}, "acme": {"limit_usd": 1}},
        store={"url": "sqlite:///x.db", "data_retention_days": 30}, state={"url": "memory"},
        env={"K2": "secret-two"})
    cfg = parse(settings)
    smart = cfg.routes["smart"]
    assert smart.strategy == "weighted" and smart.retries == 1 and smart.fallback_on_content_filter
    assert [t.key for t in smart.targets] == ["openai/gpt-4o", "claude-b"]
    assert smart.targets[1].weight == 3 and smart.targets[1].api_key == "secret-two"
    assert "secret-two" not in repr(smart)
    assert cfg.limits.for_scope("provider", "openai").rpm == 100
    assert cfg.limits.for_scope("provider", "openai").tpm == 100_000  # the default
    assert cfg.limits.for_scope("route", "smart").tpm == 5000
    assert cfg.limits.for_scope("provider", "x").rpm is None  # "*" with rpm = 0: unlimited
    assert cfg.limits.for_scope("target", "x/y") is None       # "*" is a provider default, not a model's
    assert cfg.breaker.failure_threshold == 3 and cfg.breaker.cooldown_seconds == 10
    assert [(b.key, b.period) for b in cfg.budgets] == [("route:smart", "day"), ("project:acme", "total")]
    model_budget = parse(Settings(budgets={"openai/gpt-4o": {"limit_usd": 1}})).budgets
    assert [b.key for b in model_budget] == ["route:openai/gpt-4o"]      # a model id caps that model's calls
    with pytest.raises(ConfigError, match="no route 'smrt'; did you mean 'smart'"):
        parse(Settings(routes={"smart": {"targets": ["fake/echo"]}}, budgets={"smrt": {"limit_usd": 1}}))
    typo_ok = parse(Settings(routes={"smart": {"targets": ["fake/echo"]}},
                             budgets={"smrt": {"limit_usd": 1, "scope": "project"}})).budgets
    assert [b.key for b in typo_ok] == ["project:smrt"]
    assert cfg.store.data_retention_days == 30


def test_default_store_is_in_the_user_data_dir() -> None:
    cfg = parse(Settings(env={"XDG_DATA_HOME": "/data/home"}))
    assert cfg.store.url == "sqlite:////data/home/cloverleaf/cloverleaf.db"


@pytest.mark.parametrize(("table", "message"), [
    ({"targets": []}, "needs targets"),
    ({"targets": ["a/b"], "strategy": "fastest"}, "strategy 'fastest'"),
    ({"targets": ["a/b", "a/b"]}, "appears twice"),
    ({"targets": ["a/b"], "colour": 1}, "unknown key"),
    ({"targets": [{"model": "a/b", "api_key": "sk-x"}]}, "literal api_key"),
    ({"targets": [{"model": "a/b", "api_key_env": "NOPE"}]}, "NOPE"),
    ({"targets": ["a/b"], "weights": [1, 2]}, "one number per target"),
])
def test_route_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_route("smart", table, env={})


def test_limit_errors() -> None:
    with pytest.raises(ConfigError, match="rpm must be a whole number"):
        parse_limits({"openai": {"rpm": "lots"}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_limits({"openai": {"rps": 1}})


def test_store_record_mode() -> None:
    assert parse(Settings()).store.record == "all"
    assert parse(Settings(store={"record": "errors"})).store.record == "errors"
    with pytest.raises(ConfigError, match="record must be"):
        parse(Settings(store={"record": "some"}))


def test_budget_and_breaker_errors() -> None:
    with pytest.raises(ConfigError, match="limit_usd"):
        parse(Settings(budgets={"x": {"period": "day"}}))
    with pytest.raises(ConfigError, match="period"):
        parse(Settings(budgets={"x": {"limit_usd": 1, "period": "week"}}))
    with pytest.raises(ConfigError, match="failure_threshold"):
        parse(Settings(breaker={"failure_threshold": 0}))


_NOT_BOOLEANS = ["false", "no", 0, 1]


@pytest.mark.parametrize("value", _NOT_BOOLEANS)
@pytest.mark.parametrize(("tables", "where"), [
    (lambda v: {"routes": {"r": {"targets": ["fake/echo"], "fallback_on_rate_limit": v}}},
     "[routes.r] fallback_on_rate_limit"),
    (lambda v: {"routes": {"r": {"targets": ["fake/echo"], "fallback_on_content_filter": v}}},
     "[routes.r] fallback_on_content_filter"),
    (lambda v: {"breaker": {"enabled": v}}, "[breaker] enabled"),
    (lambda v: {"routes": {"r": {"targets": ["fake/echo"], "cache": v}}}, "[routes.r] cache"),
])
def test_a_boolean_setting_takes_only_true_or_false(tables: object, where: str, value: object) -> None:
    """``bool("false")`` is True: a route written with ``fallback_on_rate_limit = "false"`` fell
    back, and ``[breaker] enabled = "false"`` kept the breaker on. Anything but a boolean is an
    error naming the key."""
    with pytest.raises(ConfigError, match=re.escape(f"{where} must be true or false, got {value!r}")):
        parse(Settings(**tables(value)))  # type: ignore[operator]


@pytest.mark.parametrize(("build", "where"), [
    (lambda v: parse_cache({"shared": v}), "[cache] shared"),
    (lambda v: parse_telemetry({"enabled": v, "otlp_endpoint": "http://127.0.0.1:4318"}, {}),
     "[telemetry] enabled"),
    (lambda v: parse_telemetry({"capture_content": v, "otlp_endpoint": "http://127.0.0.1:4318"}, {}),
     "[telemetry] capture_content"),
    (lambda v: ServerOptions.from_settings({"allow_unauthenticated": v}, {}), "[server] allow_unauthenticated"),
    (lambda v: AttachmentPolicy(allow_local_paths=v), "AttachmentPolicy.allow_local_paths"),
])
def test_every_table_refuses_a_string_for_a_boolean(build: object, where: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{where} must be true or false, got 'false'")):
        build("false")  # type: ignore[operator]


def test_defaults_gateway_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "cloverleaf.toml"
    path.write_text('[defaults]\ngateway = "false"\n')
    with pytest.raises(ConfigError, match=re.escape("[defaults] gateway must be true or false, got 'false'")):
        Settings.load(path, env={})


def test_real_booleans_are_read_as_written() -> None:
    cfg = parse(Settings(routes={"r": {"targets": ["fake/echo"], "fallback_on_rate_limit": False,
                                       "fallback_on_content_filter": True}}, breaker={"enabled": False}))
    assert cfg.routes["r"].fallback_on_rate_limit is False and cfg.routes["r"].fallback_on_content_filter is True
    assert cfg.breaker.enabled is False


_ROUTE = '[routes.r]\ntargets = ["fake/echo"]\n'


@pytest.mark.parametrize(("text", "message"), [
    # NaN passed every check (all comparisons with it are false): a call that had to wait hung
    ("[limits.r]\nrpm = 1\nmax_wait = nan\n", "[limits.r] max_wait must be a number of seconds from 0 to"),
    # ... and a budget of NaN was never reached
    (_ROUTE + "[budgets.r]\nlimit_usd = nan\n", "[budgets.r] limit_usd must be a number of at least 0, got nan"),
    (_ROUTE + '[budgets.r]\nlimit_usd = "5"\n', "[budgets.r] limit_usd must be a number of at least 0, got '5'"),
    ("[limits.r]\nrpm = inf\n", "[limits.r] rpm must be a whole number of at least 0, got inf"),   # was OverflowError
    ("[limits.r]\ntpm = 1.5\n", "[limits.r] tpm must be a whole number of at least 0, got 1.5"),
    ('[limits.r]\nrpm = "x"\n', "[limits.r] rpm must be a whole number of at least 0, got 'x'"),
    ("[breaker]\ncooldown_seconds = nan\n", "[breaker] cooldown_seconds must be a number of seconds"),
    ("[breaker]\nfailure_threshold = inf\n", "[breaker] failure_threshold must be a whole number of at least 1"),
    ("[store]\nflush_ms = inf\n", "[store] flush_ms must be a whole number from 1 to"),
    ("[store]\nbatch_size = true\n", "[store] batch_size must be a whole number of at least 1, got True"),
    ("[store]\ndata_retention_days = nan\n", "[store] data_retention_days must be a whole number of at least 1"),
    ("[state]\nlimit_window_seconds = nan\n", "[state] limit_window_seconds must be a number of seconds from 0.001"),
    ("[state]\nlimit_margin_seconds = -1\n", "[state] limit_margin_seconds must be a number of seconds from 0"),
    (_ROUTE + "retries = inf\n", "[routes.r] retries must be a whole number of at least 0, got inf"),
    ('[routes.r]\ntargets = [{ model = "fake/echo", weight = nan }]\n',
     "[routes.r] targets[0] weight must be a number of at least 0, got nan"),
    (_ROUTE + "cache_ttl = nan\n", "[routes.r] cache_ttl must be a number of seconds above 0"),
    ("[cache]\nttl = nan\n", "[cache] ttl must be a number of seconds above 0"),
    ("[cache]\nmax_entries = inf\n", "[cache] max_entries must be a whole number of at least 1, got inf"),
    ('[cache]\nsimilarity = "high"\n', "[cache] similarity must be a number above 0 and at most 1"),
    ('[telemetry]\notlp_endpoint = "http://127.0.0.1:4318"\nexport_timeout = "x"\n',
     "[telemetry] export_timeout must be a number of seconds above 0"),   # was a ValueError traceback
])
def test_a_gateway_number_that_is_not_finite_and_in_range_is_refused(tmp_path: Path, text: str,
                                                                     message: str) -> None:
    path = tmp_path / "cloverleaf.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Client(Settings.load(path, env={}))


def test_an_environment_sampler_ratio_goes_through_the_same_check() -> None:
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"}
    with pytest.raises(ConfigError, match=r"OTEL_TRACES_SAMPLER_ARG .* must be a number from 0 to 1, got nan"):
        parse_telemetry({"otlp_endpoint": "http://127.0.0.1:4318"}, env)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: parse(Settings(store="sqlite:///x.db")), "[store] must be a table, not a string: write [store]"),  # type: ignore[arg-type]
    (lambda: parse(Settings(state="redis://127.0.0.1:6379/0")), "[state] must be a table, not a string"),  # type: ignore[arg-type]
    (lambda: parse(Settings(breaker=5)), "[breaker] must be a table, not a number"),  # type: ignore[arg-type]
    (lambda: parse(Settings(routes="fake/echo")), "[routes] must be a table, not a string: write [routes.NAME]"),  # type: ignore[arg-type]
    (lambda: parse_limits({"openai": 60}), "[limits.openai] must be a table, not a number: write [limits.openai]"),
    (lambda: parse_cache("exact"), "[cache] must be a table, not a string"),
    (lambda: parse_telemetry("http://127.0.0.1:4318", {}), "[telemetry] must be a table, not a string"),  # type: ignore[arg-type]
    (lambda: ServerOptions.from_settings("127.0.0.1", {}), "[server] must be a table, not a string"),  # type: ignore[arg-type]
])
def test_settings_built_in_code_name_a_table_given_as_a_value(build: object, message: str) -> None:
    """The loader checks the file; settings built in code reach each table's parser unchecked."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: parse(Settings(routes={"r": {"targets": [{"model": "fake/echo", "base_url": 5}]}})),
     "[routes.r] targets[0] base_url must be text in quotes (\"...\"), not a number"),   # a 500 on every call
    (lambda: parse(Settings(routes={"r": {"targets": [{"model": "fake/echo", "name": 5}]}})),
     "[routes.r] targets[0] name must be text"),
    (lambda: parse(Settings(routes={"r": {"targets": [{"model": "fake/echo", "api_key_env": ["K"]}]}})),
     "[routes.r] targets[0] api_key_env must be text in quotes (\"...\"), not an array"),
    (lambda: parse(Settings(routes={"r": {"targets": [5]}})),
     "[routes.r] targets[0] must be a model name in quotes (\"openai/gpt-4o\") or a table"),
    (lambda: parse(Settings(store={"url": 5})), "[store] url must be text"),
    (lambda: parse(Settings(state={"url": 5})), "[state] url must be text"),
    (lambda: parse(Settings(state={"prefix": 5})), "[state] prefix must be text"),
    (lambda: parse_cache({"prefix": 5}), "[cache] prefix must be text"),
    (lambda: parse_cache({"mode": "semantic", "embedding_model": 5}), "[cache] embedding_model must be text"),
    (lambda: parse_telemetry({"otlp_endpoint": "http://127.0.0.1:4318", "service_name": 5}, {}),
     "[telemetry] service_name must be text"),
    (lambda: parse_telemetry({"otlp_endpoint": "http://127.0.0.1:4318", "headers": {"x-team": 5}}, {}),
     "[telemetry] headers 'x-team' must be text"),
    (lambda: parse_telemetry({"otlp_endpoint": "http://127.0.0.1:4318", "headers": "x"}, {}),
     "[telemetry] headers must be a table of text values"),
    (lambda: ServerOptions.from_settings({"host": 5}, {}), "[server] host must be text"),
    (lambda: AttachmentPolicy(allow_hosts=[5]), "[attachments] allow_hosts[0] must be text"),  # type: ignore[list-item]
    (lambda: AttachmentPolicy(resolver="x"), "AttachmentPolicy.resolver must be a function"),  # type: ignore[arg-type]
])
def test_every_table_refuses_anything_but_text_for_a_text_setting(build: object, message: str) -> None:
    """Each was kept as given (or turned into the text "5") and failed later: a route target's
    ``base_url = 5`` made every call to the route a 500, ``[server] host = 5`` was a host "5"."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()  # type: ignore[operator]


def test_attachments_verify_takes_only_true_or_false() -> None:
    """``verify = "false"`` was accepted and meant true; a real false is refused at the download
    (it says to pass an SSLContext), so a TOML boolean is all the file can give."""
    with pytest.raises(ConfigError, match=re.escape("[attachments] verify must be true or false, got 'false'")):
        AttachmentPolicy(verify="false")  # type: ignore[arg-type]
    assert AttachmentPolicy(verify=True).verify is True
