"""Open mode (no master key, no virtual keys) ends on every replica sharing the store once a
key exists: a replica started open must not keep serving keyless calls beside keys made
through another replica, which govern every call there (README, "Security defaults")."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.ports import unused_port

from .serve_process import serve, stopped_output, wait_until_up

MASTER = "open-mode-replicas-master-key-0123"
CALL = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}
#: README: a key change reaches every worker and replica within 0.5 s; the test allows a margin
#: for a busy machine (it asserts the change lands, not how fast).
SETTLE_SECONDS = 10.0


def _replica(tmp_path: Path, port: int, master_key: str | None) -> subprocess.Popen[str]:
    """``cloverleaf serve`` on ``port``, its store the one SQLite file every replica shares."""
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/shared.db"\n')
    return serve(tmp_path, config, "--port", str(port),
                 env={"CLOVERLEAF_MASTER_KEY": master_key} if master_key else {})


@pytest.mark.slow
def test_a_key_made_through_another_replica_ends_open_mode_without_a_restart(tmp_path: Path) -> None:
    governed_port, open_port = unused_port(), unused_port()
    governed = _replica(tmp_path, governed_port, MASTER)
    opened = None
    try:
        wait_until_up(governed, f"http://127.0.0.1:{governed_port}")
        opened = _replica(tmp_path, open_port, None)   # no master key, and no key in the store yet: open
        open_url = f"http://127.0.0.1:{open_port}"
        wait_until_up(opened, open_url)
        assert httpx.post(f"{open_url}/v1/chat/completions", json=CALL, timeout=30).status_code == 200

        made = httpx.post(f"http://127.0.0.1:{governed_port}/admin/keys", json={"name": "ci-bot"},
                          headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
        assert made.status_code == 201, made.text
        secret = made.json()["key"]

        deadline = time.monotonic() + SETTLE_SECONDS
        while (answer := httpx.post(f"{open_url}/v1/chat/completions", json=CALL, timeout=30)).status_code == 200:
            assert time.monotonic() < deadline, "the replica still serves keyless calls beside a virtual key"
            time.sleep(0.1)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_api_key"
        keyed = httpx.post(f"{open_url}/v1/chat/completions", json=CALL, timeout=30,
                           headers={"authorization": f"Bearer {secret}"})
        assert keyed.status_code == 200, keyed.text   # the key made elsewhere works here

        revoked = httpx.delete(f"http://127.0.0.1:{governed_port}/admin/keys/{made.json()['id']}",
                               headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
        assert revoked.status_code in (200, 204), revoked.text
        time.sleep(1.5)   # three of the replica's looks at the store: it stays closed (fails closed)
        assert httpx.post(f"{open_url}/v1/chat/completions", json=CALL, timeout=30).status_code == 401
    finally:
        output = stopped_output(opened) if opened is not None else ""
        stopped_output(governed)
    assert "open mode is over" in output
