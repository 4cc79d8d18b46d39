"""kill -9 a process mid-write: the SQLite store opens clean and holds every committed batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import sys
    from cloverleaf.gateway.store import AttemptRecord, CallRecord, open_store

    store = open_store("sqlite:///" + sys.argv[1], batch_size=30, flush_ms=60_000)
    batch = 0
    while True:
        for i in range(10):
            n = batch * 10 + i
            store.record_call(CallRecord(
                id=f"call_{n}", created_at=1.0 * n, operation="chat", requested_model="r", status="ok",
                target="fake/echo", input_tokens=n, output_tokens=1, metadata={"batch": batch},
                attempts=[AttemptRecord("fake/fail", "fake", False, "ServerError", "boom"),
                          AttemptRecord("fake/echo", "fake", True)]))
        store.flush()
        print(batch, flush=True)
        batch += 1
""")


def test_sigkill_never_corrupts_and_keeps_committed_batches(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = -1
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 25:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-way through writing the next batches
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert committed >= 25

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        attempts = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        ids = {row[0] for row in conn.execute("SELECT id FROM calls")}
    finally:
        conn.close()
    assert {f"call_{n}" for n in range((committed + 1) * 10)} <= ids  # every acknowledged batch
    assert calls % 10 == 0 and attempts == 2 * calls  # whole batches only, never half of one
