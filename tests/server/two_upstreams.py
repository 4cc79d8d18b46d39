"""What a module using ``two_upstreams_live`` (``conftest.py``: ``anth/...`` answers from the mock
upstream as Anthropic's Messages API, ``oai/...`` as OpenAI's Chat Completions) reads and writes
there: the body the upstream got, and the answer it gives."""

from __future__ import annotations

import json
from typing import Any

from ..sdk.upstream import Reply, Upstream


def sent(upstream: Upstream) -> dict[str, Any]:
    """The body of the last request the upstream received."""
    return json.loads(upstream.seen[-1].body)  # type: ignore[no-any-return]


def answer(body: dict[str, Any]) -> Reply:
    """A JSON answer for the upstream to give."""
    return Reply(headers={"content-type": "application/json"}, body=json.dumps(body).encode())
