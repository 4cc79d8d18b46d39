"""An overloaded upstream's wait reaches the server's client, through the official SDKs.

A real OpenAI-compatible upstream on 127.0.0.1 answers 503 with ``Retry-After`` (OpenAI's
"The server is overloaded, slow down"). The gateway's client must get a 503 with that
``Retry-After`` on both surfaces (``/v1/chat/completions`` and ``/v1/messages``), streamed or
not, so its SDK waits as asked instead of retrying a 502 at once; over a route whose targets
all said so, the shortest wait.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
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
    """A server per test: five failures would open the target's breaker, whose own wait then answers."""
    provider = ProviderSettings(name="busy", kind="openai", base_url=flaky.base_url, api_key_env="BUSY_KEY")
    routes = {"one": {"targets": ["busy/model-a"], "retries": 0},
              "two": {"targets": ["busy/model-a", "busy/model-b"], "retries": 0}}
    server = start_live(settings(env={"BUSY_KEY": "sk-busy-0123456789"}, providers={"busy": provider}, routes=routes))
    yield server
    stop_live(server)


def _busy(flaky: FlakyUpstream, *waits: int) -> None:
    for wait in waits:
        flaky.then("status", status=503, headers={"retry-after": str(wait)})


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route, waits, expected", [("one", (120,), "120"), ("two", (120, 40), "40")])
def test_openai_client_gets_503_with_the_upstreams_retry_after(live: Live, flaky: FlakyUpstream, stream: bool,
                                                               route: str, waits: tuple[int, ...],
                                                               expected: str) -> None:
    _busy(flaky, *waits)
    with pytest.raises(openai.InternalServerError) as info:
        live.openai().chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}], stream=stream)
    assert info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == expected
    assert info.value.response.headers["retry-after-ms"] == str(int(expected) * 1000)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client_gets_503_overloaded_with_the_upstreams_retry_after(live: Live, flaky: FlakyUpstream,
                                                                             stream: bool) -> None:
    _busy(flaky, 120)
    with pytest.raises(anthropic.APIStatusError) as info:
        live.anthropic().messages.create(model="one", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                                         stream=stream)
    assert info.value.status_code == 503 and info.value.response.headers["retry-after"] == "120"
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("headers", [{"retry-after": "inf"}, {"retry-after": "1e999"}, {"retry-after-ms": "1e400"}])
def test_an_upstream_retry_after_beyond_any_wait_is_no_hint_not_a_500(live: Live, flaky: FlakyUpstream, status: int,
                                                                      headers: dict[str, str]) -> None:
    flaky.then("status", status=status, headers=headers)
    with pytest.raises(openai.APIStatusError) as info:
        live.openai().chat.completions.create(model="one", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status and info.value.response.headers["content-type"] == "application/json"
    assert info.value.response.headers.get("retry-after") == ("1" if status == 429 else None)


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_429_without_retry_after_passes_on_the_spent_limits_reset(live: Live, flaky: FlakyUpstream,
                                                                             stream: bool) -> None:
    """OpenAI's 429 often names no Retry-After, only when each limit fills again
    (``x-ratelimit-reset-*``, Go durations): the client was told to retry in 1 s, into the same
    wall; it is told the spent limit's reset (the requests' 6m0s here, not the tokens' 20ms)."""
    flaky.then("status", status=429, headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "20ms"})
    with pytest.raises(openai.RateLimitError) as info:
        live.openai().chat.completions.create(model="one", messages=[{"role": "user", "content": "hi"}], stream=stream)
    assert info.value.response.headers["retry-after"] == "360"
    assert info.value.response.headers["retry-after-ms"] == "360000"
