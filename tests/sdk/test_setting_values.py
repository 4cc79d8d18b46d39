"""Numbers and tables in the configuration the SDK loads: every numeric setting, from the file
or from a ``CLOVERLEAF_*`` variable, is refused when it is not a finite number in range, with
an error naming the key and what it takes; a table written as a value is refused as such."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloverleaf._config import Settings
from cloverleaf._errors import ConfigError

TIMEOUT_VARS = {"CLOVERLEAF_TIMEOUT": "timeout", "CLOVERLEAF_CONNECT_TIMEOUT": "connect_timeout",
                "CLOVERLEAF_FIRST_BYTE_TIMEOUT": "first_byte_timeout", "CLOVERLEAF_IDLE_TIMEOUT": "idle_timeout"}


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "cloverleaf.toml"
    path.write_text(text)
    return Settings.load(path, env={})


@pytest.mark.parametrize("var", sorted(TIMEOUT_VARS))
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", "1e12"])
def test_an_environment_timeout_is_checked_as_the_files_is(var: str, value: str) -> None:
    """``CLOVERLEAF_TIMEOUT=0`` made every call fail with a ReadTimeout "after 0.001 s", and
    ``CLOVERLEAF_CONNECT_TIMEOUT=nan`` with a ConnectTimeout, though ``timeout = 0`` in the
    file was refused."""
    with pytest.raises(ConfigError, match=rf"^{var} must be a number of seconds above 0"):
        Settings.load(env={var: value})


@pytest.mark.parametrize("var", sorted(TIMEOUT_VARS))
def test_an_environment_timeout_in_range_is_used(var: str) -> None:
    assert getattr(Settings.load(env={var: "2.5"}), TIMEOUT_VARS[var]) == 2.5


@pytest.mark.parametrize("value", ["-1", "1.5", "many", "nan"])
def test_environment_retries_must_be_a_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^CLOVERLEAF_MAX_RETRIES must be a whole number of at least 0"):
        Settings.load(env={"CLOVERLEAF_MAX_RETRIES": value})
    assert Settings.load(env={"CLOVERLEAF_MAX_RETRIES": "3"}).max_retries == 3


@pytest.mark.parametrize(("text", "message"), [
    ("[defaults]\ntimeout = nan\n", "[defaults] timeout must be a number of seconds above 0"),
    ("[defaults]\nconnect_timeout = inf\n", "[defaults] connect_timeout must be a number of seconds above 0"),
    ("[defaults]\nidle_timeout = 1e12\n", "[defaults] idle_timeout must be a number of seconds above 0"),
    ("[defaults]\nmax_retries = true\n", "[defaults] max_retries must be a whole number of at least 0"),
    ('[providers.mylab]\nkind = "openai"\ntimeout = "30"\n', "[providers.mylab] timeout must be a number of seconds"),
    ('[providers.mylab]\nkind = "openai"\ntimeout = nan\n', "[providers.mylab] timeout must be a number of seconds"),
    ('[providers.mylab]\nkind = "openai"\nmax_retries = -1\n', "[providers.mylab] max_retries must be a whole number"),
    ('[providers.mylab]\nkind = "openai"\ninput_cost_per_1k = nan\n',
     "[providers.mylab] input_cost_per_1k must be a number of at least 0, got nan"),
    ('[[models]]\nname = "m"\nprovider = "openai"\nidentifier = "gpt-4o"\noutput_cost_per_1k = "0.01"\n',
     "[[models]] entry 'm' output_cost_per_1k must be a number of at least 0, got '0.01'"),
    ('[[models]]\nname = "m"\nprovider = "openai"\nidentifier = "gpt-4o"\ncontext_window = 0\n',
     "[[models]] entry 'm' context_window must be a whole number of at least 1"),
    ("[attachments]\nmax_bytes = inf\n", "[attachments] max_bytes must be a whole number of at least 1, got inf"),
    ("[attachments]\nconnect_timeout = nan\n", "[attachments] connect_timeout must be a number of seconds above 0"),
    ('[attachments]\nread_timeout = "20"\n', "[attachments] read_timeout must be a number of seconds above 0"),
    ("[attachments]\nmax_redirects = -1\n", "[attachments] max_redirects must be a whole number of at least 0"),
])
def test_a_numeric_setting_that_is_not_a_number_in_range_is_refused_at_load(tmp_path: Path, text: str,
                                                                             message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _load(tmp_path, text)


def test_numbers_in_range_load_as_written(tmp_path: Path) -> None:
    s = _load(tmp_path, '[defaults]\ntimeout = 90\nmax_retries = 0\n[providers.mylab]\nkind = "openai"\n'
                        'timeout = 12.5\n[attachments]\nmax_bytes = 1048576\nrequest_timeout = 2\n')
    assert s.timeout == 90 and s.max_retries == 0 and s.providers["mylab"].timeout == 12.5
    assert s.attachments == {"max_bytes": 1048576, "request_timeout": 2}


def test_a_model_entry_may_keep_the_stores_retention_with_0(tmp_path: Path) -> None:
    """``data_retention_days = 0`` on a model entry means the store's own (the admin API takes it
    so too), and loaded before the numbers were checked; a negative one is refused."""
    entry = '[[models]]\nname = "m"\nprovider = "openai"\nidentifier = "gpt-4o"\ndata_retention_days = {}\n'
    assert _load(tmp_path, entry.format(0)).model_entry("m").data_retention_days == 0
    with pytest.raises(ConfigError, match=re.escape("data_retention_days must be a whole number of at least 0")):
        _load(tmp_path, entry.format(-1))


_TABLES = ["defaults", "providers", "routes", "limits", "budgets", "breaker", "store", "state", "attachments",
           "server", "cache", "telemetry", "privacy"]
_NAMED = {"providers": "[providers.NAME]", "routes": "[routes.NAME]", "limits": "[limits.NAME]",
          "budgets": "[budgets.NAME]"}   # tables of tables: the header to write is one of them


@pytest.mark.parametrize("name", _TABLES)
def test_a_table_written_as_a_string_is_named_as_one(tmp_path: Path, name: str) -> None:
    """``store = "sqlite:///x.db"`` was reported as "[store]: unknown key(s) ['.', '/', ':', 'b',
    ...]", the string's characters."""
    header = _NAMED.get(name, f"[{name}]")
    with pytest.raises(ConfigError, match=re.escape(f"[{name}] must be a table, not a string: write {header} on "
                                                    "a line of its own and its keys below it (for example ")):
        _load(tmp_path, f'{name} = "sqlite:///x.db"\n')


@pytest.mark.parametrize(("text", "message"), [
    ("state = 5\n", "[state] must be a table, not a number"),
    ('server = ["x"]\n', "[server] must be a table, not an array"),
    ('[providers]\nmylab = "openai"\n', "[providers.mylab] must be a table, not a string: write [providers.mylab]"),
    ('models = ["m"]\n', "models must be an array of tables: [[models]]"),
])
def test_other_values_where_a_table_belongs(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _load(tmp_path, text)


def test_a_table_given_as_a_url_does_not_repeat_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, 'store = "postgresql://app:hunter2@db.internal/calls"\n')
    assert "[store] must be a table" in str(refused.value) and "hunter2" not in str(refused.value)
