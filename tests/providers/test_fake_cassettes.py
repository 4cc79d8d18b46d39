"""The fake's conformance cassettes are exactly what FakeUpstream answers today.

Run ``python -m tests.providers.test_fake_cassettes`` to rewrite them after an intended
change to the fake's answers; the test fails on any unintended drift (the fake must be
deterministic, byte for byte, across runs and machines).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from cloverleaf._http import HttpRequest
from cloverleaf._types import ChatRequest, EmbeddingRequest
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.fake.adapter import BASE_URL, FakeUpstream
from cloverleaf.providers.registry import get_adapter, get_spec
from tests.conformance.case import Case
from tests.conformance.cases_fake import CASES
from tests.wire import FIXTURES

HEADER = ("# SYNTHETIC: FakeUpstream's own reply (the fake provider has no real upstream).\n"
          "# Regenerate with: python -m tests.providers.test_fake_cassettes\n")


def build(case: Case) -> HttpRequest:
    adapter = get_adapter(get_spec("fake"))
    cfg = ProviderConfig("fake", "fake", BASE_URL)
    if isinstance(case.request, ChatRequest):
        return adapter.build_chat(case.request, cfg)
    if isinstance(case.request, EmbeddingRequest):
        return adapter.build_embed(case.request, cfg)
    return adapter.build_image(case.request, cfg)


def record(case: Case) -> str:
    http = build(case)
    with httpx.Client(transport=FakeUpstream()) as client:
        r = client.request(http.method, http.url, headers=http.headers, content=http.body)
    interaction = {
        "request": {"method": http.method, "uri": http.url, "headers": {"content-type": ["application/json"]},
                    "body": (http.body or b"").decode()},
        "response": {"status": {"code": r.status_code, "message": r.reason_phrase},
                     "headers": {"content-type": [r.headers["content-type"]]},
                     "body": {"string": r.text}},
    }
    return HEADER + yaml.safe_dump({"interactions": [interaction], "version": 1}, sort_keys=False, width=120,
                                   allow_unicode=True)


def path_of(case: Case) -> Path:
    return (FIXTURES / case.cassette).resolve()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cassette_matches_what_the_fake_answers(case):
    assert path_of(case).read_text(encoding="utf-8") == record(case), (
        "FakeUpstream's answer changed; if intended, run: python -m tests.providers.test_fake_cassettes")


if __name__ == "__main__":
    for case in CASES:
        path_of(case).parent.mkdir(parents=True, exist_ok=True)
        path_of(case).write_text(record(case), encoding="utf-8")
        print("wrote", path_of(case))
