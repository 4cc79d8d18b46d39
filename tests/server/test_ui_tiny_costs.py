"""A cost too small for six decimals is shown with its significant digits, never as "$0.".

The dashboard's dollar formatter printed six decimals and stripped the zeros: a short embedding
at $0.01 per million tokens ($0.0000004) read "$0." on the Spend, Overview and Traces pages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf.server.ui.web import fmt_usd

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import csrf_of, sign_in

#: $0.0000001 a token in or out: a short call costs less than $0.0000005
TINY = ModelEntry(name="tiny", identifier="echo", provider="fake", input_cost_per_1k=0.0001,
                  output_cost_per_1k=0.0001)


@pytest.mark.parametrize(("value", "shown"), [
    (0.0, "$0"), (4e-7, "$0.0000004"), (4.4e-7, "$0.00000044"), (1.23e-6, "$0.0000012"),
    (0.0000123, "$0.000012"), (0.004, "$0.004"), (0.1234, "$0.1234"), (5.5, "$5.5"), (123.456, "$123.46"),
    (1e-13, "<$0.000000000001"), (None, "—"),
])
def test_dollars_keep_their_significant_digits(value: float | None, shown: str) -> None:
    assert fmt_usd(value) == shown


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, models=[TINY]))
    yield server
    stop_live(server)


def test_the_spend_page_shows_a_tiny_cost(live: Live) -> None:
    live.openai(MASTER).chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
    store = live.state.backend.store
    store.flush()
    (row,) = store.spend("route")
    assert 0 < row.cost < 0.0000005      # what six decimals round to nothing
    page = sign_in(live).get("/ui/spend", params={"period": "day"}).text
    assert fmt_usd(row.cost) in page
    assert not re.search(r"\$0\.(?![0-9])", page)


def test_the_playground_shows_a_tiny_cost_as_the_pages_do(live: Live) -> None:
    """The Playground's script printed six decimals: a call the Traces page shows at
    $0.0000005 read "$0.000000" there. The answer's last line now carries the cost as the
    pages show it, and the script shows that."""
    http = sign_in(live)
    token = csrf_of(http.get("/ui/playground").text)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    with http.stream("POST", "/ui/playground/stream", json=body, headers={"x-csrf-token": token}) as r:
        done = json.loads([line for line in r.iter_lines() if line][-1])
    assert done["type"] == "done" and 0 < done["cost"] < 0.0000005
    assert done["cost_text"] == fmt_usd(done["cost"]) != "$0"
    script = http.get("/ui/static/app.js").text
    assert "ev.cost_text" in script and "toFixed(6)" not in script
