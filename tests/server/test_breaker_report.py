"""``/admin/breakers`` says when a circuit opened in epoch seconds on every state backend (memory
keeps its breakers on the monotonic clock; the Health page used to guess which with ``> 1e9``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from .conftest import MASTER, Live, settings, start_live, stop_live


@pytest.fixture
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                                 breaker={"failure_threshold": 1, "cooldown_seconds": 600}))
    yield server
    stop_live(server)


def test_an_open_breaker_is_listed_with_its_opening_in_epoch_seconds(live: Live) -> None:
    before = time.time()
    with pytest.raises(openai.APIStatusError):
        live.openai(MASTER).chat.completions.create(model="fake/fail-500", messages=[{"role": "user", "content": "hi"}])
    with live.http(MASTER) as http:
        listed = http.get("/admin/breakers").json()["data"]
    failing = listed["fake/fail-500"]
    assert failing["state"] == "open" and before <= failing["opened_at"] <= time.time()
