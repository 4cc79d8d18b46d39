"""`cloverleaf doctor` against `cloverleaf serve`: a configuration the server refuses at start is
a problem the doctor reports in the same words, and a shared state (Redis) that does not answer
is one too (every gateway call would be a 503). It passed both, checking only the store and the
routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloverleaf._config import Settings
from cloverleaf._errors import ConfigError
from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse


@pytest.fixture(autouse=True)
def _no_server_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLOVERLEAF_MASTER_KEY", "CLOVERLEAF_STATE_URL", "CLOVERLEAF_STORE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(var, raising=False)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "calls.db"}"\n{text}')
    return path


def _doctor(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["doctor", "--config", str(path)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("text", [
    '[routes.r]\ntargets = ["fake/echo"]\n[budgets.r]\nlimit_usd = "5"\n',
    '[state]\nbudgets = "bogus"\n',
    '[limits.openai]\nrpm = "x"\n',
    "[limits.r]\nmax_wait = nan\n",
    '[cache]\nmode = "exact"\nttl = -1\n',
    '[telemetry]\notlp_endpoint = "http://127.0.0.1:4318"\nexport_timeout = "soon"\n',
    '[server]\nmax_body_mb = "abc"\n',
    '[routes.r]\ntargets = [{ model = "fake/echo", base_url = 5 }]\n',   # passed both, then a 500 per call
    '[server]\nhost = 5\n',
])
def test_doctor_fails_on_what_serve_refuses_with_the_servers_words(tmp_path: Path, text: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from cloverleaf.server.app import create_app

    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as refused:   # what `cloverleaf serve` stops at, before it listens
        create_app(Settings.load(path))
    code, out = _doctor(path, capsys)
    assert code == 1
    assert f"settings    ERROR {refused.value} (cloverleaf serve would not start)" in out


def test_doctor_passes_the_tables_serve_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, '[routes.r]\ntargets = ["fake/echo"]\n[budgets.r]\nlimit_usd = 5\n'
                             '[limits.r]\nrpm = 10\nmax_wait = 1\n[server]\nmax_body_mb = 2\n')
    code, out = _doctor(path, capsys)
    assert code == 0, out
    assert "settings    ok" in out and "state       memory" in out


def test_doctor_fails_when_the_redis_state_does_not_answer(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, '[state]\nurl = "redis://:hunter2@127.0.0.1:1/0"\n')   # nothing listens on port 1
    code, out = _doctor(path, capsys)
    assert code == 1
    assert "state       ERROR the Redis state backend at redis://***@127.0.0.1:1/0 failed" in out
    assert "check that Redis is running" in out and "hunter2" not in out


def test_doctor_reports_a_redis_state_that_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ..gateway.redis_support import fresh_prefix, redis_url

    url = redis_url()
    path = _config(tmp_path, f'[state]\nurl = "{url}"\nprefix = "{fresh_prefix()}"\n')
    code, out = _doctor(path, capsys)
    assert code == 0, out
    assert "state       reachable at redis://" in out


def test_doctor_shows_a_local_servers_url_without_its_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A base URL from the environment may carry a key or a password (a proxy in front of Ollama):
    doctor printed it as set."""
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://ops:PW-SECRET@127.0.0.1:9/?api-key=KEY-SECRET&keep=this")
    _, out = _doctor(_config(tmp_path, ""), capsys)
    assert "ollama           not running at http://ops:<redacted>@127.0.0.1:9/?api-key=<redacted>&keep=this" in out
    assert "SECRET" not in out


def _serve_refusal(path: Path | None, env: dict[str, str], tmp_path: Path) -> str:
    """What ``cloverleaf serve`` says as it refuses to start (a child process, its own free port:
    a server that did start is killed when the wait runs out, and the test fails)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    child_env.update({"XDG_DATA_HOME": str(tmp_path / "data"), **env})
    config = ["--config", str(path)] if path is not None else []
    done = subprocess.run([sys.executable, "-m", "cloverleaf", *config, "serve", "--port", str(port)], cwd=tmp_path,
                          env=child_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last.removeprefix("error: ")


@pytest.mark.parametrize(("text", "env", "line"), [
    ('[defaults]\nhttp_client = "h2"\n', {}, "http client ERROR"),      # no client takes it
    (None, {"CLOVERLEAF_MASTER_KEY": "tiny-key-1"}, "settings    ERROR"),     # no file at all
    ('[defaults]\nmodel = "fake/echo"\n', {"CLOVERLEAF_MASTER_KEY": "tiny-key-1"}, "settings    ERROR"),
    ('[server]\nhost = "0.0.0.0"\n', {}, "settings    ERROR"),          # a network bind with no key
])
def test_doctor_fails_on_what_serve_refuses_without_gateway_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str], text: str | None,
                                                                  env: dict[str, str], line: str) -> None:
    """The doctor checked [server] and the gateway's tables only when the file had a gateway
    table or [server], and never checked http_client: `serve` refused each of these files (or
    no file) while the doctor exited 0. `serve` always runs the gateway, so they are always
    checked now, and the doctor says what `serve` says."""
    path = None
    if text is not None:
        path = tmp_path / "c.toml"
        path.write_text(text)
    refused = _serve_refusal(path, env, tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["doctor", *(["--config", str(path)] if path is not None else [])])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{line} {refused} (cloverleaf serve would not start)" in out
    assert "tiny-key-1" not in out      # the key itself is never printed


def test_doctor_and_serve_refuse_a_store_that_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A [store] path under a regular file: `serve` died with a NotADirectoryError traceback,
    and the doctor said the first call would create it."""
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/afile/store.db"\n')
    refused = _serve_refusal(path, {}, tmp_path)
    assert refused.startswith(f"cannot create the store at {tmp_path}/afile/store.db: {tmp_path}/afile is a file")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out = _doctor(path, capsys)
    assert code == 1
    assert f"store       ERROR {refused} (cloverleaf serve would not start)" in out


def test_an_sdk_users_doctor_does_not_fail_over_a_store_only_the_server_uses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No gateway tables, no [server], no master key, and a home where nothing can be made (a
    service account's HOME=/dev/null): the SDK's calls never open the store, so the doctor
    says what `serve` would trip on and passes; with a master key set it fails as before."""
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "c.toml"
    path.write_text('[defaults]\nmodel = "fake/echo"\n')
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "afile" / "data"))
    monkeypatch.delenv("CLOVERLEAF_MASTER_KEY", raising=False)
    code, out = _doctor(path, capsys)
    assert code == 0 and "store       ERROR" in out and "only cloverleaf serve uses the store" in out
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "m" * 40)
    assert _doctor(path, capsys)[0] == 1


def test_doctor_and_serve_refuse_a_store_folder_nobody_can_make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``/proc/nope/x.db``: the folder's permissions say nothing (root may write anywhere), so the
    doctor said "none yet" and passed while `serve` refused to start. It now tries what `serve`
    does, and leaves nothing behind where a store can be made."""
    path = tmp_path / "c.toml"
    path.write_text('[store]\nurl = "sqlite:////proc/nope/x.db"\n')
    refused = _serve_refusal(path, {"CLOVERLEAF_MASTER_KEY": "m" * 40}, tmp_path)
    assert refused.startswith("cannot create the store at /proc/nope/x.db: No such file or directory: /proc/nope")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "m" * 40)
    code, out = _doctor(path, capsys)
    assert code == 1
    assert f"store       ERROR {refused} (cloverleaf serve would not start)" in out

    fresh = tmp_path / "fresh"
    path.write_text(f'[store]\nurl = "sqlite:///{fresh}/a/b/store.db"\n')
    code, out = _doctor(path, capsys)
    assert code == 0 and f"none yet at {fresh}/a/b/store.db" in out
    assert not fresh.exists()      # the trial's folders and file are gone


@pytest.mark.parametrize("url, shown", [
    ("memory", "'memory' is not a store URL ('memory' is a [state] or [cache] url; an in-memory store is sqlite://)"),
    ("sqlite:/calls.db", "'sqlite:/calls.db' is not a store URL"),
    ("redis://ops:hunter2@cache:6379/0", "'redis://ops:***@cache:6379/0' is not a store URL"),
    ("https://ops:hun@ter2@db.example", "'https://ops:***@db.example' is not a store URL"),
])
def test_a_store_url_that_is_not_one_is_named_with_the_forms_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str], url: str,
                                                                   shown: str) -> None:
    """CLOVERLEAF_STORE_URL=memory was refused as '<unparseable store url>', which named nothing
    to fix, and sqlite:/calls.db (one slash) was a SQLAlchemy traceback; only a password is hidden."""
    env = {"CLOVERLEAF_STORE_URL": url, "CLOVERLEAF_MASTER_KEY": "m" * 40}
    refused = _serve_refusal(None, env, tmp_path)
    assert refused == (f"[store] url (or CLOVERLEAF_STORE_URL) {shown}: use sqlite:///relative/path.db or "
                       "sqlite:////absolute/path.db (a file), sqlite:// (in memory, this process only) or "
                       "postgresql://user:password@host:5432/dbname")
    assert "hunter2" not in refused and "ter2" not in refused
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1 and f"store       ERROR {refused}" in out and "hunter2" not in out
