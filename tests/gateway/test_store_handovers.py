"""A store flush waits for the bookkeeping of calls already answered (``store/handovers.py``):
for every handover open when it was called, not for later ones, never longer than its bound,
and not at all on a thread running an event loop (that loop may be what the work needs)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from cloverleaf.gateway.store import handovers as handovers_module
from cloverleaf.gateway.store import open_store
from cloverleaf.gateway.store.handovers import Handovers
from cloverleaf.gateway.store.records import CallRecord


def _record(call_id: str) -> CallRecord:
    return CallRecord(id=call_id, created_at=1.0, requested_model="m", operation="chat", status="ok")


def test_a_flush_waits_for_a_handover_open_when_it_was_called(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    seen: list[str] = []

    def read() -> None:
        store.flush()
        seen.extend(c.id for c in store.recent_calls(10))

    try:
        handover = store.handovers.open()
        reader = threading.Thread(target=read)
        reader.start()
        while store.handovers._waiters == 0 and reader.is_alive():   # the reader is waiting for it
            time.sleep(0.001)
        later = store.handovers.open()        # a call answered after the read began: not waited for
        store.record_call(_record("call_settled"))   # the answer's bookkeeping hands its record over
        store.handovers.close(handover)
        reader.join(5)   # well within the bound: the later handover, still open, is not waited for
        assert not reader.is_alive() and seen == ["call_settled"] and store.handovers.in_flight == 1
        store.handovers.close(later)
    finally:
        store.close()


def test_a_hung_handover_delays_a_reader_no_longer_than_the_bound(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(handovers_module, "HANDOVER_WAIT_SECONDS", 0.05)
    handovers = Handovers()
    handovers.open()
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway"):
        assert handovers.wait() is False
    assert "bookkeeping of 1 answered call(s) was still running" in caplog.text


async def test_a_flush_on_the_event_loop_does_not_wait_for_it() -> None:
    handovers = Handovers()
    handover = handovers.open()
    assert handovers.wait(30.0) is False      # at once: waiting here would hold the loop the work needs
    closing = asyncio.get_running_loop().call_later(0.05, handovers.close, handover)
    assert await asyncio.to_thread(handovers.wait, 30.0) is True   # on a thread it waits, for the close
    closing.cancel()
