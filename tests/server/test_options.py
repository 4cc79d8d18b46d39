"""``[server]``: every number is checked as every table's are (finite, in range, a number at
all), with an error naming the key, before the server starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloverleaf._errors import ConfigError
from cloverleaf.server.options import ServerOptions


@pytest.mark.parametrize(("table", "message"), [
    ({"max_body_mb": "abc"}, "[server] max_body_mb must be a number of megabytes of at least 0.001, got 'abc'"),
    ({"max_body_mb": float("inf")}, "[server] max_body_mb must be a number of megabytes"),      # was OverflowError
    ({"max_body_mb": -1}, "[server] max_body_mb must be a number of megabytes"),   # started, then 413 for everything
    ({"max_body_mb": 0}, "[server] max_body_mb must be a number of megabytes"),
    ({"key_cache_seconds": "x"}, "[server] key_cache_seconds must be a number of seconds from 0 to"),
    ({"key_cache_seconds": -1}, "[server] key_cache_seconds must be a number of seconds from 0 to"),
    ({"body_timeout_seconds": "x"}, "[server] body_timeout_seconds must be a number of seconds above 0"),
    ({"body_timeout_seconds": float("nan")}, "[server] body_timeout_seconds must be a number of seconds above 0"),
    ({"header_timeout_seconds": float("inf")}, "[server] header_timeout_seconds must be a number of seconds above 0"),
    ({"heap_trim_seconds": -1}, "[server] heap_trim_seconds must be a number of seconds from 0 to"),
    ({"port": 4000.5}, "[server] port must be a whole number from 1 to 65535, got 4000.5"),
    ({"port": 70000}, "[server] port must be a whole number from 1 to 65535, got 70000"),
    ({"port": 0}, "[server] port must be a whole number from 1 to 65535, got 0"),   # read now: as --port 0 is
    ({"workers": 0}, "[server] workers must be a whole number of at least 1, got 0"),
    ({"max_connections": "many"}, "[server] max_connections must be a whole number of at least 1"),
])
def test_a_server_number_out_of_range_is_refused_naming_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ServerOptions.from_settings(table, {})


def test_server_numbers_in_range_are_read_as_written() -> None:
    opts = ServerOptions.from_settings({"max_body_mb": 0.25, "key_cache_seconds": 0, "heap_trim_seconds": 0,
                                        "body_timeout_seconds": 1.5, "port": 8080, "workers": 2}, {})
    assert opts.max_body_bytes == 256 * 1024 and opts.key_cache_seconds == 0 and opts.heap_trim_seconds == 0
    assert opts.body_timeout_seconds == 1.5 and opts.port == 8080 and opts.workers == 2


@pytest.mark.parametrize(("env", "message"), [
    ({"CLOVERLEAF_SERVE_WORKERS": "two"}, "CLOVERLEAF_SERVE_WORKERS must be a whole number of at least 1"),
    ({"CLOVERLEAF_SERVE_WORKERS": "2", "CLOVERLEAF_SERVE_PORT": "99999"},
     "CLOVERLEAF_SERVE_PORT must be a whole number from 0 to 65535, got 99999"),
])
def test_a_worker_process_checks_the_variables_serve_hands_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              env: dict[str, str], message: str) -> None:
    """``cloverleaf serve`` passes its workers (and granian's factory) these variables; one set
    by hand to text was a bare ValueError traceback from ``int()``."""
    from cloverleaf.server.cli_serve import worker_app

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        worker_app()
