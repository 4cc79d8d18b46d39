"""A process forked from one whose gateway records calls (multiprocessing's ``fork``, gunicorn
``--preload``, celery's prefork pool) records its own calls, once, and never the parent's.

The store's writer thread did not come along into the child: the child's call records were
queued and never written while its ``store.flush()`` said True, and it held the parent's
database connections (a PostgreSQL socket both processes would write on) and the parent's
queued records and spend sums (which the parent writes). The child here is a real
``os.fork()`` of the test process, reporting through a pipe and leaving with ``os._exit``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloverleaf.gateway import Gateway

from .conftest import Harness, chat_request
from .stores import STORE_KINDS, store_url

ROUTES = {name: {"targets": ["fake/echo"]} for name in ("before-fork", "pending-at-fork", "in-child")}


def in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a forked child and return what it reported (its exception, as text)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: never back into pytest
        try:
            os.close(read)
            try:
                report = work()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                report = {"error": repr(exc)}
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "the child reported nothing"}')


def connection_used(gw: Gateway) -> int:
    """Which driver connection the store's pool hands out now (a fork keeps objects' ids)."""
    assert gw.store is not None
    with gw.store.engine.connect() as conn:
        return id(conn.connection.dbapi_connection)


def recorded(gw: Gateway) -> list[str]:
    assert gw.store is not None
    return sorted(call.requested_model for call in gw.store.recent_calls(100))


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_forked_child_records_its_calls_once_and_the_parents_pending_ones_are_written_once(
        harness: Harness, tmp_path: Path, kind: str) -> None:
    with store_url(kind, tmp_path) as url:
        # a writer that wakes only when flushed: what is queued at the fork stays queued
        gw = harness.gateway(routes=ROUTES, store={"url": url, "flush_ms": 600_000})
        store = gw.store
        assert store is not None
        gw.chat("before-fork", chat_request())
        assert store.flush() and recorded(gw) == ["before-fork"]   # the writer's thread and connection in use
        gw.chat("pending-at-fork", chat_request())
        store.record_spend("project:forks", "total", 1.0)
        assert store.writer.pending > 0
        parents = connection_used(gw)

        def child() -> dict[str, Any]:
            assert connection_used(gw) != parents, "the child was handed the parent's pooled connection"
            gw.chat("in-child", chat_request())
            store.record_spend("project:forks", "total", 2.0)
            flushed = store.flush(30)
            return {"flushed": flushed, "seen": recorded(gw), "spent": store.budget_usage("project:forks", "total")[0]}

        report = in_child(child)
        # the child's call is written by the child; the parent's queued one is not (yet): the parent's to write
        assert report == {"flushed": True, "seen": ["before-fork", "in-child"], "spent": 2.0}
        assert store.flush()
        assert recorded(gw) == ["before-fork", "in-child", "pending-at-fork"]
        assert store.budget_usage("project:forks", "total")[0] == 3.0


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_forked_child_that_records_nothing_flushes_and_closes_at_once(harness: Harness, tmp_path: Path,
                                                                          kind: str) -> None:
    with store_url(kind, tmp_path) as url:
        gw = harness.gateway(routes=ROUTES, store={"url": url, "flush_ms": 600_000})
        store = gw.store
        assert store is not None
        gw.chat("pending-at-fork", chat_request())

        def child() -> dict[str, Any]:
            flushed = store.flush(30)
            store.close()
            return {"flushed": flushed, "pending": store.writer.pending, "seen": recorded(gw)}

        assert in_child(child) == {"flushed": True, "pending": 0, "seen": []}
        assert store.flush()
        assert recorded(gw) == ["pending-at-fork"]


FORKING_PROGRAM = textwrap.dedent("""
    import os, sys
    import cloverleaf

    client = cloverleaf.Client()
    client.chat("smart", "in the parent")
    store = client.gateway.store
    store.flush()

    def connection_used():   # the pool replaces a connection its ping finds dead (ended by the child)
        with store.engine.connect() as conn:
            return id(conn.connection.dbapi_connection)

    before = connection_used()
    pid = os.fork()
    if pid == 0:   # a worker that ends as programs do: its interpreter shuts down, nothing closed
        client.chat("smart", "in the child")
        print("child flushed", store.flush(), flush=True)
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print("parent's connection kept", connection_used() == before, flush=True)
    client.chat("smart", "in the parent after")
    store.flush()
    print("child exit", os.waitstatus_to_exitcode(status), "records", len(store.recent_calls(100)), flush=True)
""")


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_forked_worker_that_exits_normally_leaves_no_warning_and_the_parent_keeps_recording(
        tmp_path: Path, kind: str) -> None:
    """The child's interpreter shutdown collects nothing the parent uses (a PostgreSQL
    connection collected there would say it was deleted while open, or end the parent's
    session): run under ``-W error``, stderr stays empty."""
    with store_url(kind, tmp_path) as url:
        config = tmp_path / "cloverleaf.toml"
        config.write_text(f'[routes.smart]\ntargets = ["fake/echo"]\n\n[store]\nurl = "{url}"\n')
        script = tmp_path / "forking_program.py"
        script.write_text(FORKING_PROGRAM)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
        run = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                             timeout=120, env={**env, "CLOVERLEAF_CONFIG": str(config)})
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.splitlines() == ["child flushed True", "parent's connection kept True",
                                          "child exit 0 records 3"]
        assert run.stderr == ""
