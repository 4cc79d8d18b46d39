"""The `cloverleaf` command when something is wrong: a message and a non-zero exit, never a
traceback; read-only commands that create nothing; Ctrl-C during a workflow run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cloverleaf
from cloverleaf.cli import main

from ..loopback import Answer, Handle, LoopbackServer
from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def html_server(loopback: Callable[[Handle], LoopbackServer]) -> str:
    """A web page where cloverleaf's admin API is expected."""
    return loopback(lambda request: Answer(200, b"<html>hello</html>", {"content-type": "text/html"})).url


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """Accepts a connection, reads the request and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_keys_says_what_is_wrong_with_the_server_or_the_url(monkeypatch, capsys, html_server, dropping_server):
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "sk-master-test-0123456789")
    with pytest.raises(SystemExit, match=r"did not answer as cloverleaf's admin API \(HTTP 200, text/html\)"):
        main(["keys", "--url", html_server, "list"])
    with pytest.raises(SystemExit, match="no answer from .*RemoteProtocolError"):
        main(["keys", "--url", dropping_server, "list"])
    with pytest.raises(SystemExit, match=r"no answer from http://\[::1 \(InvalidURL"):
        main(["keys", "--url", "http://[::1", "list"])


def test_keys_without_a_server_says_how_to_name_one(monkeypatch):
    """Only `cloverleaf serve` was suggested: a server elsewhere needs --url, which went unsaid."""
    from tests.ports import unused_port

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "sk-master-test-0123456789")
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(SystemExit, match=rf"could not connect to {url}; .*--url \(or \$CLOVERLEAF_URL\)"):
        main(["keys", "--url", url, "list"])


def _config(tmp_path: Path, store_url: str, extra: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n{extra}')
    return str(path)


def test_an_unreachable_store_is_named_without_its_password(tmp_path, capsys):
    config = _config(tmp_path, "postgresql://u:hunter2@127.0.0.1:1/db")
    (tmp_path / "wf.yaml").write_text("steps:\n  - {id: a, type: llm_call, model: fake/echo, prompt: x}\n")
    for command in (["traces"], ["spend"], ["run", "wf.yaml"]):
        assert main([*command, "--config", config]) == 1, command
        err = capsys.readouterr().err
        assert err.startswith("error: cannot reach the store at postgresql://u:***@127.0.0.1:1/db ("), command
        assert "check that the database is running" in err and "hunter2" not in err
    with pytest.raises(cloverleaf.ConfigError, match="cannot reach the store"):
        from cloverleaf.gateway.store import open_store

        open_store("postgresql://u:hunter2@127.0.0.1:1/db")


def test_a_store_password_given_as_a_query_parameter_is_never_shown(tmp_path, capsys):
    """libpq takes `?password=`: `doctor`, `traces`, `spend` and the server's start-up line
    showed it whole, as only a `user:password@` one was masked."""
    from cloverleaf._config import Settings
    from cloverleaf.server.cli_serve import describe
    from cloverleaf.server.options import ServerOptions

    url = "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=hunter2"
    config = _config(tmp_path, url)
    for command in (["traces"], ["spend"], ["doctor"]):
        assert main([*command, "--config", config]) == 1, command
        out, err = capsys.readouterr()
        assert "hunter2" not in out + err, command
        assert "cannot reach the store at postgresql://u@127.0.0.1:1/db?" in out + err and "password=***" in out + err
    shown = next(line for line in describe(Settings(env={}, store={"url": url}), ServerOptions())
                 if line.startswith("store: "))
    assert "hunter2" not in shown and "password=***" in shown and "sslmode=disable" in shown
    kept = f"sqlite:///{tmp_path}/calls.db"   # an absolute path's four slashes stay four
    assert f"store: {kept}" in describe(Settings(env={}, store={"url": kept}), ServerOptions())


@pytest.mark.parametrize(("argv", "named"), [
    (["embed", "-m", "simple", "caf\udce9"], "the texts argument"),
    (["image", "-m", "fake/img", "-o", "x.png", "caf\udce9"], "the prompt argument"),
    (["run", "wf.yaml", "-i", "city=caf\udce9"], "--input"),
    (["keys", "create", "--name", "caf\udce9"], "--name"),
    (["traces", "--model", "caf\udce9"], "--model"),
    (["chat", "-m", "fake/echo", "-s", "caf\udce9", "hi"], "--system"),
])
def test_an_argument_that_is_not_utf8_is_a_usage_error_not_a_traceback(argv, named, tmp_path, capsys, monkeypatch):
    """A Latin-1 byte in an argument arrives as a lone surrogate: embed, image, run -i, keys
    create --name and traces --model ended in a UnicodeEncodeError traceback (after the file
    name, nothing else in it can be sent or stored)."""
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "sk-master-test-0123456789")
    (tmp_path / "wf.yaml").write_text("inputs: {city: {type: string}}\n"
                                      "steps:\n  - {id: a, type: llm_call, model: fake/echo, prompt: x}\n")
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert f"error: {named} is not UTF-8 text; convert it first" in capsys.readouterr().err
    assert not Path("x.png").exists()


def test_read_only_commands_do_not_create_a_store_at_a_mistyped_path(tmp_path, capsys):
    db = tmp_path / "tyop" / "calls.db"
    config = _config(tmp_path, f"sqlite:///{db}")
    for command in (["traces"], ["spend"]):
        assert main([*command, "--config", config]) == 1
        assert f"error: no store at {db}; nothing has been recorded there yet" in capsys.readouterr().err
    main(["doctor", "--config", config])
    assert f"store       none yet at {db}" in capsys.readouterr().out
    assert not db.parent.exists()


def test_doctor_resolves_every_route_and_fails_on_a_target_that_cannot_be_served(tmp_path, capsys):
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}",
                     '[routes.smart]\ntargets = ["nosuch/x", "fake/echo"]\n'
                     '[routes.nokey]\ntargets = ["anthropic/claude-haiku-4-5"]\n'
                     '[routes.fine]\ntargets = ["fake/echo", "simple/default"]\n')
    assert main(["doctor", "--config", config]) == 1
    routes = capsys.readouterr().out.split("\nroutes:\n", 1)[1]
    assert "smart            ERROR 1 target(s) cannot be served:\n    nosuch/x: unknown provider 'nosuch'" in routes
    assert "nokey            ERROR" in routes and "ANTHROPIC_API_KEY" in routes
    assert "fine             ok: fake/echo, simple/default" in routes


@pytest.mark.parametrize("argv", [
    ["image", "-m", "fake/img", "-o", "x.png", "-n", "0", "a cat"],
    ["image", "-m", "fake/img", "-o", "x.png", "-n", "-2", "a cat"],
    ["embed", "-m", "simple", "--dimensions", "0", "hi"],
    ["embed", "-m", "openai/text-embedding-3-small", "--dimensions=-3", "hi"],
    ["traces", "-n", "0"],
    ["spend", "--days", "0"],
    ["spend", "--days", "-1"],
    ["serve", "--workers", "0"],
])
def test_counts_and_sizes_below_one_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "expected a whole number of at least 1" in capsys.readouterr().err
    assert not Path("x.png").exists()


@pytest.mark.parametrize(("argv", "most"), [
    (["traces", "-n", "99999999999999999999"], "1,000,000,000"),
    (["embed", "-m", "simple", "--dimensions", "99999999999", "hi"], "65,536"),
])
def test_counts_beyond_what_can_be_held_are_refused(argv, most, tmp_path, capsys):
    """`traces -n` beyond SQLite's integers was an OverflowError traceback; `embed --dimensions
    1e11` on the offline embedder a MemoryError (the server refuses above 65,536 too)."""
    _config(tmp_path, f"sqlite:///{tmp_path / 'calls.db'}")
    from cloverleaf.gateway.store import open_store

    open_store(f"sqlite:///{tmp_path / 'calls.db'}").close()
    with pytest.raises(SystemExit) as info:
        main(["--config", str(tmp_path / "c.toml"), *argv])
    assert info.value.code == 2 and f"expected a whole number from 1 to {most}" in capsys.readouterr().err


def test_the_sdk_refuses_counts_below_one_too(monkeypatch):
    monkeypatch.setenv("CLOVERLEAF_BACKEND", "fake")
    with cloverleaf.Client() as client:
        for dims in (0, -3):                       # the fake provider raised IndexError on -3
            with pytest.raises(cloverleaf.ConfigError, match="dimensions must be a whole number of at least 1"):
                client.embed("openai", "hi", dimensions=dims)
        with pytest.raises(cloverleaf.ConfigError, match="n must be a whole number of at least 1"):
            client.generate_image("fake/img", "a cat", n=0)


def test_a_config_file_that_is_not_utf8_is_an_error_for_every_command(tmp_path, capsys):
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[defaults]\n")
    assert main(["chat", "--config", str(bad), "-m", "fake/echo", "hi"]) == 1
    assert f"error: {bad}: not UTF-8 text (byte 0)" in capsys.readouterr().err


def test_ctrl_c_during_a_run_stops_at_once_and_prints_the_resume_command(tmp_path):
    """The run is on an async client, so the call in flight is cancelled rather than waited for
    (its step is the one to resume), and the command to resume it is printed."""
    (tmp_path / "wf.yaml").write_text(
        "name: slow\nsteps:\n"
        "  - {id: a, type: llm_call, model: fake/echo, prompt: first, output: a}\n"
        "  - {id: b, type: llm_call, model: fake/echo+slow-60s, prompt: 'second {state.a}', output: b}\n")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "XDG_DATA_HOME": str(tmp_path / "data")}
    # as from a terminal: a suite started in the background (``cmd &``, nohup) runs with SIGINT
    # ignored, which its children inherit, and a process that ignores Ctrl-C is not what is tested
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "run", "wf.yaml", "--run-dir", str(runs)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        saved: dict[str, object] = {}
        for _ in range(3000):                      # until step a is saved: step b is under way
            files = list(runs.glob("*.json")) if runs.exists() else []
            if files:
                try:
                    saved = json.loads(files[0].read_text())
                except ValueError:
                    saved = {}
            if saved.get("done") == ["a"] or proc.poll() is not None:
                break
            threading.Event().wait(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)     # far less than the step's 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
    run_id = saved["run_id"]
    assert proc.returncode == 130, err
    assert f"interrupted; run {run_id} is saved" in err
    assert f"`cloverleaf run wf.yaml --resume {run_id} --run-dir {runs}`" in err
    record = json.loads((runs / f"{run_id}.json").read_text())
    assert record["status"] == "interrupted" and record["failed_step"] == "b" and record["done"] == ["a"]


def test_a_missing_or_wrong_key_is_told_in_the_shells_terms(monkeypatch, capsys, upstream):
    """At the shell (and from the server) "pass api_key=", a Python argument, was the way out
    offered for a missing key; now the variable and the config key come first, Python's way
    only marked as such."""
    from .upstream import Reply

    for var in ("OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    assert main(["chat", "-m", "openai/gpt-4o-mini", "hi"]) == 1
    err = capsys.readouterr().err
    assert "set OPENAI_API_KEY in the environment" in err and "api_key_env under [providers.openai]" in err
    assert "or pass api_key=" not in err and "(calling from Python: pass api_key=)" in err

    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    assert main(["chat", "-m", "azure/gpt-4o", "hi"]) == 1
    err = capsys.readouterr().err
    assert "AZURE_OPENAI_API_KEY" in err and ", pass api_key=" not in err and "calling from Python" in err

    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    upstream.queue(Reply(status=401, body=json.dumps({"error": {"message": "Incorrect API key provided",
                                                                "type": "invalid_request_error",
                                                                "code": "invalid_api_key"}}).encode()))
    assert main(["chat", "-m", "openai/gpt-4o-mini", "hi"]) == 1
    err = capsys.readouterr().err
    assert "check the API key in OPENAI_API_KEY" in err and "or pass api_key=" not in err, err
