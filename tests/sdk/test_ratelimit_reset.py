"""A 429's rate-limit reset headers are its wait when it names no Retry-After: OpenAI's
``x-ratelimit-reset-*`` (Go durations), Anthropic's ``anthropic-ratelimit-*-reset`` (RFC 3339).
Read by the adapters' errors (``RateLimitError.retry_after``, which the gateway's breaker and
fallback and its client's ``Retry-After`` follow) and by the SDK's own retries alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cloverleaf import RateLimitError
from cloverleaf._http import HttpResponse
from cloverleaf._ratelimit_reset import go_duration, reset_wait
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.openai.adapter import OpenAIAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.transport.httpx import map_httpx_exception
from cloverleaf.transport.retry import Retry, RetryPolicy

OPENAI_429 = json.dumps({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                   "code": "rate_limit_exceeded"}}).encode()
ANTHROPIC_429 = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                       "message": "Number of request tokens has exceeded"}}).encode()


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5),
                                           ("0s", 0.0), ("2", 2.0), ("soon", None), ("", None), ("1x", None)])
def test_go_durations(text: str, seconds: float | None) -> None:
    assert go_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_the_spent_limit_names_the_wait() -> None:
    both = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-remaining-tokens": "512", "x-ratelimit-reset-tokens": "20ms"}
    assert reset_wait(both) == 360.0
    assert reset_wait({**both, "x-ratelimit-remaining-tokens": "0"}) == 360.0   # the later of the spent ones
    assert reset_wait({**both, "x-ratelimit-remaining-requests": "3"}) is None   # nothing spent: not these limits
    assert reset_wait({"x-ratelimit-reset-tokens": "1.5s"}) == 1.5   # remaining unsaid: the reset given
    assert reset_wait({}) is None


def test_an_openai_429_without_retry_after_carries_the_reset_wait() -> None:
    adapter = OpenAIAdapter(get_spec("openai"))
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
               "x-ratelimit-remaining-tokens": "90000", "x-ratelimit-reset-tokens": "6m0s"}
    err = adapter.parse_error(HttpResponse(429, headers, OPENAI_429), "gpt-4o-mini")
    assert isinstance(err, RateLimitError) and err.retry_after == 1.0
    # Retry-After, where given, still wins
    err = adapter.parse_error(HttpResponse(429, {**headers, "retry-after": "7"}, OPENAI_429), "gpt-4o-mini")
    assert err.retry_after == 7.0
    # only a 429 reads them: a 500 with rate-limit headers is no throttle
    assert adapter.parse_error(HttpResponse(500, headers, b"{}"), "gpt-4o-mini").retry_after is None


def test_an_anthropic_429_reads_its_rfc3339_resets() -> None:
    adapter = AnthropicAdapter(get_spec("anthropic"))
    soon = (datetime.now(UTC) + timedelta(seconds=42)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(seconds=600)).isoformat()
    headers = {"anthropic-ratelimit-input-tokens-remaining": "0", "anthropic-ratelimit-input-tokens-reset": soon,
               "anthropic-ratelimit-requests-remaining": "49", "anthropic-ratelimit-requests-reset": later}
    err = adapter.parse_error(HttpResponse(429, headers, ANTHROPIC_429), "claude-sonnet-4-5")
    assert isinstance(err, RateLimitError) and err.retry_after is not None and 35 <= err.retry_after <= 42


def test_the_sdks_own_retries_wait_the_reset_or_hand_the_429_back() -> None:
    def retry() -> Retry:
        return Retry(RetryPolicy(), "http://127.0.0.1:9/v1", None, map_httpx_exception)

    short = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    assert retry().after_answer(HttpResponse(429, short, OPENAI_429)) == 2.0
    # a limit that fills in six minutes is past max_retry_wait: the 429 comes back at once
    long = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}
    assert retry().after_answer(HttpResponse(429, long, OPENAI_429)) is None


def http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_a_reset_already_come_names_no_wait_and_the_backoff_stays() -> None:
    """A reset in the past (our clock ahead of the provider's) or of ``"0s"`` was a wait of 0:
    ``retry_after`` 0 and the SDK's retries sent at once, one after another, into the same wall.
    It names no wait now: the error has none and the retries back off as for any 429."""
    past = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    anthropic = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": past}
    openai = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "0s"}
    err = AnthropicAdapter(get_spec("anthropic")).parse_error(HttpResponse(429, anthropic, ANTHROPIC_429),
                                                              "claude-sonnet-4-5")
    assert isinstance(err, RateLimitError) and err.retry_after is None
    for headers in (anthropic, openai):
        assert reset_wait(headers) is None
        retry = Retry(RetryPolicy(), "http://127.0.0.1:9/v1", None, map_httpx_exception)
        waits = [retry.after_answer(HttpResponse(429, headers, OPENAI_429)) for _ in range(2)]
        assert all(w is not None and w > 0 for w in waits), waits


def test_anthropic_resets_are_read_on_the_answers_own_clock() -> None:
    """The reset time and the answer's ``Date`` come from the provider's clock; ours may be off
    by minutes. Read against ours, a clock 10 minutes ahead made a reset 20 s away a wait of 0,
    and one 10 minutes behind made it 10 min 20 s (past max_retry_wait: the SDK gave up)."""
    for skew in (timedelta(minutes=10), timedelta(minutes=-10)):
        theirs = datetime.now(UTC).replace(microsecond=0) - skew
        headers = {"date": http_date(theirs), "anthropic-ratelimit-input-tokens-remaining": "0",
                   "anthropic-ratelimit-input-tokens-reset": (theirs + timedelta(seconds=20)).isoformat()}
        assert reset_wait(headers) == pytest.approx(20.0)
    # no Date (or an unreadable one): our clock, as before
    soon = (datetime.now(UTC) + timedelta(seconds=42)).isoformat()
    for date in ({}, {"date": "yesterday"}):
        wait = reset_wait({**date, "anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": soon})
        assert wait is not None and 35 <= wait <= 42
