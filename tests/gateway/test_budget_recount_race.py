"""A recount racing the store's writer: calls recorded while the records are summed.

``budget_recount`` sums the scope's call records in a read of its own, before the write that
raises the ledger row (``store/budgets.py``: the write lock is not held while a large table is
summed). The writer goes on committing meanwhile: each batch adds a call's record AND its
spend to the row, together. A raise computed as ``max(row, sum)`` then loses that spend
whenever the row was behind the records (a budget set again after spend it did not see): the
row has the new spend, the sum does not, and the max keeps only the sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import CallRecord, Store, VirtualKeyRow, open_store

from .stores import STORE_KINDS, store_url

NOW = 1_700_000_000.0   # 2023-11-14 22:13:20 UTC
DAY = "2023-11-14"


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with store_url(request.param, tmp_path) as url:
        s = open_store(url, flush_ms=20, wall=lambda: NOW)
        yield s
        s.close()


def paid_call(store: Store, n: int, cost: float, *, held: bool) -> None:
    """A call of key k_1 recorded; ``held``: it held the key's day budget, so its spend goes to
    the ledger with the same batch (as ``Budgets._record_spend`` books it)."""
    store.record_call(CallRecord(id=f"c{n}", created_at=NOW, operation="chat", requested_model="r",
                                 status="ok", key_id="k_1", cost=cost))
    if held:
        store.record_spend("key:k_1", DAY, cost)


def test_spend_committed_while_a_recount_sums_the_records_is_kept(store: Store) -> None:
    store.create_virtual_key(VirtualKeyRow(id="k_1", secret_hash="h1"))
    paid_call(store, 1, 0.125, held=True)     # while the key had a budget
    paid_call(store, 2, 1.0, held=False)      # while it had none: the ledger row is behind
    store.flush()
    committed: list[bool] = []

    def writer_commits_meanwhile(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        flat = " ".join(statement.split())
        if not committed and " FROM calls" in flat and flat.upper().startswith("SELECT"):
            committed.append(True)   # once: a call that held the (again set) budget lands now
            paid_call(store, 3, 0.5, held=True)
            assert store.flush()

    sa.event.listen(store.engine, "after_cursor_execute", writer_commits_meanwhile)
    try:
        spent, _ = store.budget_recount("key:k_1", DAY)
    finally:
        sa.event.remove(store.engine, "after_cursor_execute", writer_commits_meanwhile)
    assert committed
    # the records show 1.625 for the day, and the ledger row must not be below them
    assert spent == pytest.approx(1.625)
    assert store.budget_usage("key:k_1", DAY)[0] == pytest.approx(1.625)
    assert store.get_virtual_key("k_1").spent == pytest.approx(1.625)
