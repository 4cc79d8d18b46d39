"""``cloverleaf serve``: the secure default for network binds, the startup notes, and a
real multi-worker process answering the OpenAI SDK."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from cloverleaf._config import Settings
from cloverleaf._errors import ConfigError
from cloverleaf.server.cli_serve import check_exposure, describe
from cloverleaf.server.options import ServerOptions
from tests.ports import unused_port

from .serve_process import serve, stopped_output, wait_until_up

MASTER = "serve-test-master-key-0123456789"


def test_refuses_an_open_network_bind() -> None:
    with pytest.raises(ConfigError, match="CLOVERLEAF_MASTER_KEY"):
        check_exposure(ServerOptions(host="0.0.0.0"))
    check_exposure(ServerOptions(host="127.0.0.1"))
    check_exposure(ServerOptions(host="0.0.0.0", master_key=MASTER))
    check_exposure(ServerOptions(host="0.0.0.0", allow_unauthenticated=True))


def test_startup_lines_name_mode_store_and_worker_caveat(tmp_path: Path) -> None:
    settings = Settings(env={}, store={"url": f"sqlite:///{tmp_path}/c.db"})
    one = describe(settings, ServerOptions())
    assert any("open to loopback clients only" in line for line in one)
    assert any(line.startswith("store: sqlite:///") for line in one)
    assert any("fake/echo" in line for line in one)
    assert not any("per process" in line for line in one)
    many = describe(settings, ServerOptions(workers=3, master_key=MASTER))
    assert any("3 worker processes" in line and "per process" in line and "redis://" in line for line in many)
    shared = Settings(env={}, state={"url": "redis://127.0.0.1:6379/0"})
    assert not any("per process" in line for line in describe(shared, ServerOptions(workers=3)))
    offline = describe(Settings(env={}, backend="fake", store={"url": f"sqlite:///{tmp_path}/c.db"}), ServerOptions())
    assert any("every model answers from the offline fake provider" in line for line in offline)


def test_startup_lines_bracket_an_ipv6_address(tmp_path: Path) -> None:
    """`serve --host ::1` printed http://::1:4000, which no browser or client takes as a URL."""
    settings = Settings(env={}, store={"url": f"sqlite:///{tmp_path}/c.db"})
    lines = describe(settings, ServerOptions(host="::1", port=4100, master_key=MASTER))
    assert lines[0].startswith("cloverleaf serving on http://[::1]:4100 ")
    assert any("dashboard at http://[::1]:4100/ui" in line for line in lines)
    assert describe(settings, ServerOptions(host="127.0.0.1", port=4100))[0].startswith(
        "cloverleaf serving on http://127.0.0.1:4100 ")


def test_several_workers_without_redis_count_budgets_in_the_store(tmp_path: Path) -> None:
    """In-memory budget counters would give every worker the whole budget."""
    from cloverleaf.gateway.config import parse
    from cloverleaf.server.cli_serve import worker_settings

    settings = Settings(env={}, store={"url": f"sqlite:///{tmp_path}/c.db"})
    assert parse(worker_settings(settings, 1)).budgets_in == "state"
    assert parse(worker_settings(settings, 4)).budgets_in == "store"
    shared = Settings(env={}, state={"url": "redis://127.0.0.1:6379/0"})
    assert parse(worker_settings(shared, 4)).budgets_in == "state"
    chosen = Settings(env={}, state={"budgets": "state"})
    assert parse(worker_settings(chosen, 4)).budgets_in == "state"     # the operator's word wins



def _serve(tmp_path: Path, server_table: str, *flags: str, master_key: str | None = MASTER,
           own_session: bool = False) -> subprocess.Popen[str]:
    """``cloverleaf serve`` in a child process, with ``server_table`` as its ``[server]`` keys and a
    SQLite store of its own (``own_session``: its own process group, for a signal to all of it)."""
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/serve.db"\n[server]\n{server_table}')
    return serve(tmp_path, config, *flags, env={"CLOVERLEAF_MASTER_KEY": master_key} if master_key else {},
                 own_session=own_session)


@pytest.mark.slow
def test_serve_with_two_workers(tmp_path: Path) -> None:
    """Port and workers from ``[server]`` in the file (no flag gives them), the host from its flag."""
    port = unused_port()
    proc = _serve(tmp_path, f"port = {port}\nworkers = 2\n", "--host", "127.0.0.1")
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER, max_retries=0)
        for _ in range(4):  # likely spread over both workers
            out = client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "hi"}])
            assert out.choices[0].message.content == "hi"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="nope", max_retries=0).models.list()
        _a_deleted_entry_leaves_every_worker(port)
    finally:
        output = stopped_output(proc)
    assert f"cloverleaf serving on http://127.0.0.1:{port} " in output
    assert "2 worker processes" in output and "per process" in output
    assert MASTER not in output


def _a_deleted_entry_leaves_every_worker(port: int) -> None:
    """An entry created and then deleted through one worker's admin API: every worker (each
    had used it, so each had it in memory) stops serving it without a restart. Each request
    opens its own connection, so they spread over the workers."""
    url = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {MASTER}"}

    def ask() -> int:
        return httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10,
                          json={"model": "team", "messages": [{"role": "user", "content": "hi"}]}).status_code

    entry = {"name": "team", "identifier": "echo", "provider": "fake"}
    assert httpx.post(f"{url}/admin/models", headers=headers, json=entry).status_code == 201
    assert {ask() for _ in range(12)} == {200}
    assert httpx.delete(f"{url}/admin/models/team", headers=headers).status_code == 200
    deadline = time.monotonic() + 30
    gone_in_a_row = 0
    while gone_in_a_row < 16:  # answers in a row, from whichever workers take them
        assert time.monotonic() < deadline, "a worker still serves the deleted entry"
        status = ask()
        assert status in (200, 404)
        gone_in_a_row = gone_in_a_row + 1 if status == 404 else 0


def test_flags_win_over_the_server_table_and_the_table_over_the_defaults(tmp_path: Path) -> None:
    """``[server] host``, ``port`` and ``workers`` were silently ignored: the flags' argparse
    defaults (127.0.0.1, 4000, 1) were always passed, and a passed value wins over the file."""
    from cloverleaf.cli import build_parser
    from cloverleaf.cli.common import load_settings

    config = tmp_path / "cloverleaf.toml"

    def options(*flags: str) -> ServerOptions:
        args = build_parser().parse_args(["serve", "--config", str(config), *flags])
        settings = load_settings(args)   # then as `cloverleaf serve` hands them over
        return ServerOptions.from_settings(settings.server, settings.env, host=args.host, port=args.port,
                                           workers=args.workers, http=args.http)

    config.write_text('[server]\nhost = "::1"\nport = 4711\nworkers = 3\nhttp = "uvicorn"\n')
    read = options()
    assert (read.host, read.port, read.workers, read.http) == ("::1", 4711, 3, "uvicorn")
    given = options("--host", "127.0.0.2", "--port", "4712", "--workers", "2", "--http", "h1")
    assert (given.host, given.port, given.workers, given.http) == ("127.0.0.2", 4712, 2, "h1")
    config.write_text("")
    default = options()
    assert (default.host, default.port, default.workers, default.http) == ("127.0.0.1", 4000, 1, "auto")


@pytest.mark.parametrize(("host", "message"), [("", r"\[server\] host is empty: give an address"),
                                             (" ", r"\[server\] host is empty: give an address"),
                                             (["0.0.0.0"], r"\[server\] host must be text in quotes")])
def test_a_server_host_that_is_no_address_is_refused(host: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerOptions.from_settings({"host": host}, {})


@pytest.mark.slow
def test_a_network_host_in_the_server_table_needs_authentication_as_the_flag_does(tmp_path: Path) -> None:
    """The loopback-by-default rule holds for ``[server] host`` as for ``--host``: without a master
    key (or allow_unauthenticated) the server refuses to start, before it listens."""
    proc = _serve(tmp_path, 'host = "0.0.0.0"\n', "--port", str(unused_port()), master_key=None)
    try:
        proc.wait(timeout=60)
    finally:
        output = stopped_output(proc)
    assert proc.returncode == 1, output
    assert "error: refusing to serve on 0.0.0.0 without authentication" in output
    assert "Traceback" not in output


def _in_flight(port: int, at_least: int) -> None:
    """Wait until the server counts ``at_least`` requests in flight (the scrape is not one of them)."""
    deadline = time.monotonic() + 30
    while True:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        now = next(int(line.split()[1]) for line in text.splitlines()
                   if line.startswith("cloverleaf_in_flight_requests"))
        if now >= at_least:
            return
        assert time.monotonic() < deadline, f"{now} requests in flight"
        time.sleep(0.05)


def _words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def _streamed(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGHUP", "SIGTERM"])
def test_a_stop_signal_lets_the_requests_in_flight_finish_then_exits_cleanly(tmp_path: Path, stop: str) -> None:
    """SIGHUP (a closed terminal, ``kill -HUP`` from a supervisor) killed the server at once: the
    one-shot answer in flight was never sent and the stream was cut without its error event.
    Now it drains as SIGTERM does. SIGTERM drained, then the process died of it (status -15
    where Ctrl-C gave 0); a drained stop now exits with 0 whichever signal asked for it."""
    port = unused_port()
    proc = _serve(tmp_path, "", "--port", str(port), master_key=None)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(model="fake/echo+drip-100ms", stream=True,
                                                messages=[{"role": "user", "content": _words(12)}])
        chunks = [next(iter(stream))]            # the answer is under way
        with ThreadPoolExecutor(1) as pool:
            one_shot = pool.submit(client.chat.completions.create, model="fake/echo+slow-2s",
                                   messages=[{"role": "user", "content": "still answered"}])
            _in_flight(port, 2)                  # the stream and the one-shot call (a scrape is not counted)
            proc.send_signal(getattr(signal, stop))
            chunks += list(stream)
            assert one_shot.result(timeout=30).choices[0].message.content == "still answered"
        assert _streamed(chunks) == _words(12)
        assert proc.wait(timeout=30) == 0
    finally:
        output = stopped_output(proc)
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_hangup_to_every_process_of_several_workers_cuts_no_answer(tmp_path: Path) -> None:
    """A closed terminal sends SIGHUP to every process of the group: each worker died at once
    (its answers in flight lost) while uvicorn's supervisor began replacing them. A worker now
    leaves SIGHUP to the supervisor, which replaces the workers one at a time, each draining."""
    port = unused_port()
    proc = _serve(tmp_path, "", "--port", str(port), "--workers", "2", master_key=None, own_session=True)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(model="fake/echo+drip-100ms", stream=True,
                                                messages=[{"role": "user", "content": _words(12)}])
        chunks = [next(iter(stream))]
        os.killpg(proc.pid, signal.SIGHUP)
        chunks += list(stream)
        assert _streamed(chunks) == _words(12)
        out = client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "hi"}])
        assert out.choices[0].message.content == "hi"   # still serving, on the replaced workers
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    finally:
        output = stopped_output(proc)
    assert "Received SIGHUP, restarting processes" in output


def test_serve_tunes_the_collector_for_a_long_running_process() -> None:
    """``tune_gc`` (called by ``serve`` once the app is built) freezes the startup objects and
    raises the young-generation threshold; run in a child so this test process is untouched."""
    import subprocess

    code = ("import gc; from cloverleaf.server.cli_serve import tune_gc, GC_GEN0_THRESHOLD; "
            "before = gc.get_threshold(); tune_gc(); after = gc.get_threshold(); "
            "print(after[0] == GC_GEN0_THRESHOLD, after[1:] == before[1:], gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "True"]


@pytest.mark.parametrize("flags", [("--http", "h1"), ("--http", "uvicorn"), ("--workers", "2")])
def test_a_port_in_use_is_refused_with_what_to_do(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """uvicorn's "[Errno 98] ... address already in use" and exit status 3, with no hint (after
    the app had started): now a message naming the port and what to do, whichever server runs."""
    import socket

    port = unused_port()
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", port))
        other_server.listen()
        proc = _serve(tmp_path, "", "--port", str(port), *flags)
        out = proc.communicate(timeout=120)[0]
    assert proc.returncode not in (0, None), out
    assert f"port {port} on 127.0.0.1 is in use; pass --port or stop the other server" in out
    assert "Errno" not in out and "Traceback" not in out
