"""Issue 12 §2: 1,100 idle and slowloris connections against a server whose open-file limit
is 1,024 (soft and hard, so raising it at start-up cannot help) do not stop normal clients
from being served. Before the ``h1`` protocol, ``accept`` hit EMFILE and every normal
request failed until the idle sockets went away."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ports import unused_port

LIMIT = 1024
IDLE, SLOWLORIS = 600, 500



def _lowered_file_limit() -> None:  # runs in the server's process before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@pytest.fixture
def file_limit_for_the_test() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + SLOWLORIS + 200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"this process may open only {hard} files; the test needs {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_idle_and_slowloris_connections_do_not_starve_normal_clients(tmp_path: Path,
                                                                      file_limit_for_the_test: None) -> None:
    port = unused_port()
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/abuse.db"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    env["XDG_DATA_HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(config), "serve", "--port",
                             str(port)], env=env, cwd=tmp_path, preexec_fn=_lowered_file_limit,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    held: list[socket.socket] = []
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        for i in range(IDLE + SLOWLORIS):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i >= IDLE:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            held.append(s)
        body = {"model": "fake/echo", "messages": [{"role": "user", "content": "still here?"}]}
        answered = 0
        with httpx.Client(base_url=url, timeout=10) as client:  # one keep-alive connection
            for _ in range(5):
                r = client.post("/v1/chat/completions", json=body)
                assert r.status_code == 200, r.text
                assert r.json()["choices"][0]["message"]["content"] == "still here?"
                answered += 1
        for _ in range(10):  # a new connection each time, as many clients do
            r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
            assert r.status_code == 200, r.text
            answered += 1
        assert answered == 15
        for s in held:
            s.setblocking(False)
        evicted = sum(1 for s in held if _closed(s))
        assert evicted >= IDLE + SLOWLORIS - (LIMIT - 64) // 2  # the cap held: the oldest made way
    finally:
        for s in held:
            s.close()
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Too many open files" not in output, output[-2000:]


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
