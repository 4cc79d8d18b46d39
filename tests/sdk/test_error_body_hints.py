"""What an error body says about trying again, read alike by the transport's own retries and the
adapters (``cloverleaf._quota``): Gemini's wait said in the body, Ollama's model that does not fit
in memory. Driven through a real HTTP server on 127.0.0.1 where a call count tells; the waits are
checked on the pure retry decisions (no sleeping, no timing)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloverleaf import Client, InsufficientMemoryError, ServerError
from cloverleaf._config import ProviderSettings
from cloverleaf._http import HttpResponse
from cloverleaf.gateway.config import make_route
from cloverleaf.gateway.fallback import classify
from cloverleaf.providers.gemini.adapter import GeminiAdapter
from cloverleaf.providers.ollama.adapter import OllamaAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.transport.httpx import map_httpx_exception
from cloverleaf.transport.retry import Retry, RetryPolicy

from .upstream import Reply, Upstream

OUT_OF_MEMORY = {"error": "model requires more system memory (12.5 GiB) than is available (4.0 GiB)"}


def _gemini_quota(delay: str) -> bytes:
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "You exceeded your current "
                                 "quota, please check your plan and billing details.", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "PerMinute"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}).encode()


def _retry() -> Retry:
    return Retry(RetryPolicy(), "http://127.0.0.1:9/v1beta", None, map_httpx_exception)


def test_the_sdks_own_retries_wait_geminis_retry_info_as_the_gateway_does() -> None:
    """Gemini names its wait in the body (RetryInfo "7s"), with no Retry-After: the transport
    re-sent after its own 0.5 s and 1 s backoff, burning the quota window, while the gateway (which
    reads the adapter's ``retry_after``) waited 7 s. Both read the one helper now."""
    answer = HttpResponse(429, {}, _gemini_quota("7s"))
    assert _retry().after_answer(answer) == 7.0
    gemini = GeminiAdapter(get_spec("gemini"))
    assert gemini.parse_error(answer, "gemini-2.0-flash").retry_after == 7.0
    # a Retry-After header still wins; a wait beyond max_retry_wait hands the error back at once
    assert _retry().after_answer(HttpResponse(429, {"retry-after": "3"}, _gemini_quota("7s"))) == 3.0
    assert _retry().after_answer(HttpResponse(429, {}, _gemini_quota("120s"))) is None
    # a body that names no wait keeps the backoff (under a second on the first retry)
    plain = HttpResponse(429, {}, json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}).encode())
    wait = _retry().after_answer(plain)
    assert wait is not None and wait <= RetryPolicy().base_delay


@pytest.fixture
def ollama() -> Iterator[tuple[Client, Upstream]]:
    upstream = Upstream()
    provider = ProviderSettings(name="ollama", kind="ollama", base_url=upstream.url)
    with Client(env={}, providers={"ollama": provider}) as client:   # the default retries (2)
        yield client, upstream
    upstream.close()


def test_a_model_too_large_for_ollamas_memory_is_sent_once_with_what_to_do(
        ollama: tuple[Client, Upstream]) -> None:
    """Ollama's 500 "model requires more system memory" cannot change between tries: it was retried
    twice (Ollama loading the model again each time), as a plain ServerError with no hint. Now one
    call, an InsufficientMemoryError (a ServerError, not retryable) that says what to do, and a
    route falls back to its next target without retrying this one."""
    client, upstream = ollama
    upstream.queue(*[Reply(500, body=json.dumps(OUT_OF_MEMORY).encode()) for _ in range(3)])
    with pytest.raises(InsufficientMemoryError) as raised:
        client.chat("ollama/llama3.1:70b", "hi")
    assert len(upstream.seen) == 1
    err = raised.value
    assert isinstance(err, ServerError) and not err.retryable and err.status == 500
    assert "12.5 GiB" in str(err) and "smaller model" in str(err) and "ollama stop" in str(err)
    verdict = classify(err, make_route("smart", ["ollama/llama3.1:70b", "openai/gpt-4o"]))
    assert verdict.fallback and not verdict.retry and verdict.target_fault
    # an in-stream refusal is the same error; any other 500 is still retried
    in_stream = OllamaAdapter(get_spec("ollama")).stream_error(OUT_OF_MEMORY, "llama3.1:70b")
    assert type(in_stream) is InsufficientMemoryError
    other = HttpResponse(500, {}, json.dumps({"error": "llama runner process has terminated"}).encode())
    assert _retry().after_answer(other) is not None
