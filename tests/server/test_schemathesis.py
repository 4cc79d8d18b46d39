"""Schemathesis against the server's own ``/openapi.json``: valid and invalid requests to
every operation (the admin API included, with the master key) never produce a 5xx.

Bounded to a few examples per operation so the whole run stays well under a minute;
``CLOVERLEAF_SCHEMATHESIS_EXAMPLES`` raises it for a deeper local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cloverleaf.server.openapi import document

from .conftest import MASTER, Live, start_live, stop_live
from .conftest import settings as server_settings

EXAMPLES = int(os.environ.get("CLOVERLEAF_SCHEMATHESIS_EXAMPLES", "12"))
schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Live]:
    live = start_live(server_settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    yield live
    stop_live(live)


def test_served_document_is_the_one_tested(fuzz_server: Live) -> None:
    with fuzz_server.http() as http:
        served = http.get("/openapi.json").json()
    assert served == document()
    assert served["openapi"] == "3.1.0" and "/v1/chat/completions" in served["paths"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case, fuzz_server: Live) -> None:
    headers = {"authorization": f"Bearer {MASTER}"}
    headers.update(case.headers or {})
    response = case.call(base_url=fuzz_server.url, headers=headers, timeout=15)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")
    assert "x-cloverleaf-overhead-ms" in response.headers
