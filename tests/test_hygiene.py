"""The suite's own guards: no AWS metadata or profile, and no socket beyond loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from . import netguard


def test_aws_credential_chain_is_fenced_for_every_test() -> None:
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        with open(os.environ[var], encoding="utf-8") as f:
            assert f.read() == "", f"{var} must point at an empty file"


def test_a_connection_outside_loopback_is_refused_and_recorded() -> None:
    with netguard.expect_leaving() as caught:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(netguard.LeftLoopback):
            s.connect(("169.254.169.254", 80))  # the cloud metadata address
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u, pytest.raises(netguard.LeftLoopback):
            u.sendto(b"x", ("2001:db8::1", 53))
    assert caught == [("socket.connect", "169.254.169.254"), ("socket.sendto", "2001:db8::1")]
    assert not netguard.violations


def test_a_name_lookup_is_refused_and_loopback_is_not() -> None:
    with netguard.expect_leaving() as caught:
        with pytest.raises(netguard.LeftLoopback):
            socket.getaddrinfo("api.openai.com", 443)
    assert caught == [("socket.getaddrinfo", "api.openai.com")]
    assert socket.getaddrinfo("127.0.0.1", 80) and socket.getaddrinfo("localhost", 80)
    server = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(server.getsockname())  # loopback passes untouched
        client.close()
    finally:
        server.close()


def test_boto_credential_chain_never_asks_the_metadata_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the issue saw: Bedrock without credentials let botocore reach for 169.254.169.254."""
    session_mod = pytest.importorskip("botocore.session")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    with netguard.expect_leaving() as caught:
        credentials = session_mod.get_session().get_credentials()
    assert credentials is None and caught == []


def test_child_python_processes_are_guarded_too(tmp_path: Any) -> None:
    """A server or script the suite starts gets the hook through sitecustomize and logs to the session."""
    code = ("import socket\n"
            "try:\n    socket.create_connection(('192.0.2.7', 80), timeout=1)\n"
            "except ConnectionRefusedError as exc:\n    print(type(exc).__name__)\n")
    log = tmp_path / "child.log"
    env = {**os.environ, netguard.LOG_ENV: str(log)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "LeftLoopback", out.stderr
    assert log.read_text().split("\t")[1] == "192.0.2.7"
    assert os.environ[netguard.LOG_ENV] != str(log)  # the suite's own log was not touched
