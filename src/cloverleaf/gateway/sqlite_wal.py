"""Switching a SQLite file (the call store, the response cache) to WAL mode when several processes
open it at the same moment.

``PRAGMA journal_mode=WAL`` needs the database to itself for an instant, and SQLite may answer
"database is locked" at once instead of calling the busy handler (``busy_timeout``) while another
connection is switching or opening the same new file: six workers started together failed about
one opening in eighty, and a server that fails to start is a poor reward for running several
workers. The mode is persistent, so a connection first reads it and only an opening that still
sees another mode switches; that switch is retried for as long as the busy timeout would have
waited, and any other error is raised as it is.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

#: How long an opening keeps trying to switch, in seconds (the call store's busy timeout).
WAIT_S = 30.0
#: What the call store's WAL file is cut back to once a checkpoint has emptied it: SQLite
#: otherwise keeps the file at the largest it ever grew to for as long as the store is open
#: (one large transaction, a burst, a long reader holding checkpoints back: 265 MB after the
#: retention cleanup of 666,000 calls, for the life of the server).
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def enable_wal(cursor: Any, wait_s: float = WAIT_S, sleep: Any = time.sleep) -> None:
    """Put the database behind ``cursor`` (a sqlite3 cursor) in WAL mode, waiting out a
    concurrent opening for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            if _mode(cursor) != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.1)


def _mode(cursor: Any) -> str:
    row = cursor.execute("PRAGMA journal_mode").fetchone()
    return str(row[0]).lower() if row else ""


def limit_wal(cursor: Any) -> None:
    """Have SQLite truncate the WAL file to :data:`WAL_SIZE_LIMIT_BYTES` each time it starts it
    over after a checkpoint (``journal_size_limit``; a setting of the connection)."""
    cursor.execute(f"PRAGMA journal_size_limit={int(WAL_SIZE_LIMIT_BYTES)}")
