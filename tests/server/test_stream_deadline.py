"""A gateway call's deadline (``[defaults] timeout``) bounds the wait for a stream's response
head, never the gaps in its body: those wait up to ``idle_timeout``, through the server as on
the direct SDK path (README: "timeout: a call's deadline to its response head")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloverleaf._config import ProviderSettings
from tests.gateway.flaky_upstream import FlakyUpstream

from .conftest import Live, settings, start_live, stop_live


@pytest.fixture
def flaky() -> Iterator[FlakyUpstream]:
    server = FlakyUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def live(flaky: FlakyUpstream) -> Iterator[Live]:
    provider = ProviderSettings(name="slow", kind="openai", base_url=flaky.base_url, api_key_env="SLOW_KEY")
    server = start_live(settings(env={"SLOW_KEY": "sk-slow-0123456789"}, providers={"slow": provider},
                                 timeout=1.0, idle_timeout=10.0))
    yield server
    stop_live(server)


def test_a_stream_whose_pieces_come_after_the_deadline_is_not_cut_off(live: Live, flaky: FlakyUpstream) -> None:
    flaky.then("ok", pause=2.0)   # the head and first piece at once, the next one past the 1 s deadline
    stream = live.openai().chat.completions.create(model="slow/model-a", stream=True,
                                                   messages=[{"role": "user", "content": "hi"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "word0 word1 word2 word3 word4 word5"
