"""``GET /admin/spend`` counts the calls answered a moment ago, as ``GET /admin/keys/{id}`` does.

Call records reach the store with the writer's next batch (``[store] flush_ms``); the spend
report read the table without flushing first, so right after a call it trailed the key's
spend, which flushes before it reads. Here the writer would wait a minute on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import MASTER, Live, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def slow_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('spend')) / 'store.db'}"
    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url, "flush_ms": 60_000}))
    yield live
    stop_live(live)


def test_the_spend_report_counts_a_call_whose_record_is_still_queued(slow_writer: Live) -> None:
    slow_writer.openai(MASTER).chat.completions.create(model="priced", messages=HELLO, max_tokens=10)
    writer = slow_writer.state.backend.store.writer
    deadline = time.monotonic() + 30
    while writer.pending == 0:   # the record is handed to the writer after the answer is sent
        assert time.monotonic() < deadline, "the call's record never reached the writer"
        time.sleep(0.01)
    with slow_writer.http(MASTER) as http:
        rows = http.get("/admin/spend", params={"by": "route"}).json()["data"]
    assert [(r["group"], r["calls"]) for r in rows] == [("priced", 1)]
    assert rows[0]["cost"] > 0


def test_spend_by_model_is_one_row_per_model_whatever_name_the_calls_used(slow_writer: Live) -> None:
    """The entry "priced" is fake/echo, as is "fake:echo": one model, which a budget on
    "fake/echo" counts as one; the report split it into a row per name."""
    client = slow_writer.openai(MASTER)
    for name in ("priced", "fake:echo", "fake/echo"):
        client.chat.completions.create(model=name, messages=HELLO, max_tokens=10)
    with slow_writer.http(MASTER) as http:
        deadline = time.monotonic() + 30
        while sum(r["calls"] for r in http.get("/admin/spend", params={"by": "route"}).json()["data"]) < 3:
            assert time.monotonic() < deadline, "the calls' records never reached the store"
            time.sleep(0.01)
        by_route = http.get("/admin/spend", params={"by": "route"}).json()["data"]
        by_model = http.get("/admin/spend", params={"by": "model"}).json()["data"]
    assert [r["group"] for r in by_model] == ["fake/echo"]
    assert by_model[0]["calls"] == sum(r["calls"] for r in by_route)
    assert by_model[0]["cost"] == pytest.approx(sum(r["cost"] for r in by_route))
