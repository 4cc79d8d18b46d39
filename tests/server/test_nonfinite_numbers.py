"""A number no double can hold (``1e400``: valid JSON syntax) or a ``NaN``/``Infinity`` literal in
a request body: it was sent upstream as ``null`` (orjson) or as the literal ``Infinity``, which is
not JSON (the standard library's path, taken when the body also held a 19-digit integer), so the
provider saw a different bound or could not parse the body. It is refused with a 400 that names
the number, before anything is sent."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Live

ANTHROPIC = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
TOOLS = '"tools":[{"name":"f","input_schema":{"type":"object","properties":{"a":{"type":"integer","maximum":%s}}}}]'


@pytest.mark.parametrize(("number", "shown"), [("1e400", "1e400"), ("-1e400", "-1e400"),
                                               ("1e400,\"default\":1234567890123456789012", "1e400"),
                                               ("NaN", "NaN"), ("Infinity", "Infinity")])
def test_a_non_finite_number_in_a_body_is_a_400_saying_which(open_server: Live, number: str, shown: str) -> None:
    body = ('{"model":"fake/echo","max_tokens":50,"messages":[{"role":"user","content":"hi"}],'
            + TOOLS % number + "}")
    r = httpx.post(f"{open_server.url}/v1/messages", content=body.encode(), headers=ANTHROPIC, timeout=30)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert shown in message and "finite" in message


def test_finite_numbers_still_pass(open_server: Live) -> None:
    body = ('{"model":"fake/echo","max_tokens":50,"messages":[{"role":"user","content":"hi"}],'
            + TOOLS % "1e300" + "}")
    r = httpx.post(f"{open_server.url}/v1/messages", content=body.encode(), headers=ANTHROPIC, timeout=30)
    assert r.status_code == 200, r.text
