"""``cloverleaf serve`` on a Redis Cluster: a governed server with two workers whose limits, budgets
and cache live in the Cluster (``redis+cluster://``), and a plain ``redis://`` URL to a Cluster node
refused before the server listens. Before, that plain URL started without a word, /ready said
ready, and every governed call got a 503 (CROSSSLOT)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from cloverleaf._config import Settings
from tests.ports import unused_port

from .serve_process import serve, stopped_output, wait_until_up

MASTER = "cluster-test-master-key-0123456789"


def _serve(tmp_path: Path, state_url: str, cache_url: str, *flags: str) -> subprocess.Popen[str]:
    tag = uuid.uuid4().hex
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f"""
[routes.smart]
targets = ["fake/echo"]

[limits.smart]
rpm = 1000

[budgets.smart]
limit_usd = 5.0

[store]
url = "sqlite:///{tmp_path}/serve.db"

[state]
url = "{state_url}"
prefix = "serve-test:{tag}:"

[cache]
mode = "exact"
url = "{cache_url}"
prefix = "serve-test:{tag}:cache:"
""")
    return serve(tmp_path, config, *flags, env={"CLOVERLEAF_MASTER_KEY": MASTER, "CLOVERLEAF_BACKEND": "fake"})


def _ask(url: str, key: str, text: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "smart", "temperature": 0, "max_tokens": 16,
                            "messages": [{"role": "user", "content": text}]})


@pytest.mark.redis
def test_a_governed_server_with_two_workers_keeps_its_limits_and_cache_in_a_cluster(
        tmp_path: Path, redis_cluster: str) -> None:
    port = unused_port()
    proc = _serve(tmp_path, redis_cluster, redis_cluster, "--port", str(port), "--workers", "2")
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}", probe="/ready")
        url, admin = f"http://127.0.0.1:{port}", {"authorization": f"Bearer {MASTER}"}
        limited = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "a", "rpm": 4, "budget": 1.0}).json()
        # each request on its own connection, so the two workers share the calls (and the one limit)
        statuses = [_ask(url, limited["key"], f"question {i}").status_code for i in range(8)]
        assert sorted(statuses) == [200] * 4 + [429] * 4
        cached = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "b", "budget": 1.0}).json()
        first, again = _ask(url, cached["key"], "same"), _ask(url, cached["key"], "same")
        assert first.status_code == again.status_code == 200
        assert (first.headers["x-cloverleaf-cache"], again.headers["x-cloverleaf-cache"]) == ("miss", "hit")
    finally:
        output = stopped_output(proc)
    assert "Traceback" not in output and MASTER not in output


def test_a_plain_redis_url_to_a_cluster_node_is_refused_before_listening(tmp_path: Path, redis_cluster: str) -> None:
    node = redis_cluster.removeprefix("redis+cluster://")
    proc = _serve(tmp_path, f"redis://{node}/0", "memory", "--port", str(unused_port()))
    try:
        output = proc.communicate(timeout=60)[0]
    finally:
        stopped_output(proc)
    assert proc.returncode != 0
    assert f'error: [state] url redis://{node}/0 is a Redis Cluster node' in output
    assert f'[state] url = "redis+cluster://{node}"' in output and "Traceback" not in output


def test_several_workers_on_a_cluster_count_budgets_in_it() -> None:
    from cloverleaf.gateway.config import parse
    from cloverleaf.server.cli_serve import worker_settings

    shared = Settings(env={}, state={"url": "redis+cluster://127.0.0.1:7000"})
    assert parse(worker_settings(shared, 4)).budgets_in == "state"
