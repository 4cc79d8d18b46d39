"""`cloverleaf.Client(config=...)` runs the gateway in-process when routes/limits/store are configured."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from cloverleaf import AllTargetsFailed, AsyncClient, Client, RateLimitExceeded, Settings
from cloverleaf.cli import main


def _settings(tmp_path, toml: str) -> Settings:
    path = tmp_path / "cloverleaf.toml"
    path.write_text(toml + f'\n[store]\nurl = "sqlite:///{tmp_path}/cl.db"\n')
    return Settings.load(path, env={}, max_retries=0)


def test_route_falls_back_and_records_the_call(tmp_path):
    s = _settings(tmp_path, '[routes.smart]\ntargets = ["fake/fail-503", "fake/echo"]\n')
    with Client(s) as c:
        trace = c.traces.create(metadata={"user": "u1"})
        r = c.chat("smart", "fall back please", trace_id=trace.id)
        assert r.content == "fall back please" and r.metadata.target == "fake/echo"
        assert [a.target for a in r.metadata.attempts][:1] == ["fake/fail-503"]
        c.traces.complete(trace.id)
        c.gateway.store.flush()
        got = c.traces.get(trace.id)
        assert got.completed and got.metadata == {"user": "u1"}
        assert got.calls[0].requested_model == "smart" and got.calls[0].target == "fake/echo"
        assert [a.ok for a in got.calls[0].attempts] == [False, True]
        snap = c.breakers["fake/fail-503"]
        assert snap.state == "closed" and snap.consecutive_failures == 1 and snap.last_error == "OverloadedError"


def test_all_targets_failing_lists_every_attempt(tmp_path):
    s = _settings(tmp_path, '[routes.bad]\ntargets = ["fake/fail-500", "fake/fail-502"]\n')
    with Client(s) as c, pytest.raises(AllTargetsFailed) as err:
        c.chat("bad", "x")
    assert [a.target for a in err.value.attempts] == ["fake/fail-500", "fake/fail-502"]
    assert "fake/fail-500" in str(err.value) and "fake/fail-502" in str(err.value)


def test_stream_through_the_gateway_falls_back_before_first_token(tmp_path):
    s = _settings(tmp_path, '[routes.s]\ntargets = ["fake/fail-500", "fake/echo"]\n')
    with Client(s) as c:
        stream = c.stream("s", "streamed answer")
        assert "".join(stream.text_stream) == "streamed answer"
        assert stream.response.metadata.target == "fake/echo"


async def test_async_client_uses_the_same_gateway(tmp_path):
    s = _settings(tmp_path, '[routes.smart]\ntargets = ["fake/fail-429", "fake/echo"]\n')
    async with AsyncClient(s) as c:
        r = await c.chat("smart", "async route")
        assert r.content == "async route"


def test_a_gateway_first_used_by_many_threads_at_once_is_built_once(tmp_path):
    """A web app's thread pool makes a fresh client's first calls all at once: they share one
    gateway, so its limits hold (each thread built its own gateway, with its own rate limiter,
    budgets and breakers, and close() left all but the last one's threads running)."""
    s = _settings(tmp_path, '[routes.r]\ntargets = ["fake/echo"]\n[limits.r]\nrpm = 5\nmax_wait = 0\n')
    threads_before = set(threading.enumerate())
    client = Client(s)
    barrier = threading.Barrier(16)

    def first(_: int) -> str:
        barrier.wait()
        try:
            return client.chat("r", "hi").content
        except RateLimitExceeded:
            return "limited"

    with ThreadPoolExecutor(16) as pool:
        assert Counter(pool.map(first, range(16))) == {"hi": 5, "limited": 11}
    gateway = client.gateway
    client.close()
    assert gateway._closed
    assert [t.name for t in set(threading.enumerate()) - threads_before if t.name.startswith("cloverleaf")] == []


def test_per_call_credentials_cannot_bypass_the_gateway(tmp_path):
    s = _settings(tmp_path, '[routes.smart]\ntargets = ["fake/echo"]\n')
    with Client(s) as c, pytest.raises(Exception, match="cannot be combined"):
        c.chat("smart", "x", api_key="sk-x")


def test_plain_sdk_use_never_imports_the_gateway():
    code = ("import sys, cloverleaf; c = cloverleaf.Client(env={}); c.chat('fake/echo', 'x'); "
            "print(any(m.startswith(('cloverleaf.gateway', 'sqlalchemy')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_cli_traces_and_spend_read_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for var in ("CLOVERLEAF_CONFIG", "CLOVERLEAF_MODEL", "CLOVERLEAF_BACKEND", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "cloverleaf.toml").write_text(
        '[routes.smart]\ntargets = ["fake/echo"]\n[store]\nurl = "sqlite:///./cl.db"\n')
    assert main(["chat", "-m", "smart", "--no-stream", "one"]) == 0
    assert main(["chat", "-m", "fake/echo", "--no-stream", "two"]) == 0
    capsys.readouterr()
    assert main(["traces", "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert "smart" in out and "fake/echo" in out and "ok" in out
    assert main(["spend", "--by", "route"]) == 0
    out = capsys.readouterr().out
    assert "smart" in out and "total: 2 calls" in out
    assert main(["spend", "--by", "model", "--json"]) == 0
    assert '"group": "fake/echo"' in capsys.readouterr().out
