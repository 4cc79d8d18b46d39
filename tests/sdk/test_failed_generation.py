"""An answer the provider says failed (finish_reason "error") is raised by the SDK, whole or
streamed: Gemini's MALFORMED_FUNCTION_CALL against a mock upstream, through ``cloverleaf.chat``
and ``cloverleaf.stream``. Before, it came back as an empty answer that read like a normal one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import cloverleaf

from .upstream import Reply, Upstream

FINISH_MESSAGE = "Malformed function call: print(default_api.get_weather(city='Paris'"
MALFORMED = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": FINISH_MESSAGE}],
             "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}, "modelVersion": "gemini-2.5-flash"}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def test_chat_raises_with_the_providers_words(upstream: Upstream) -> None:
    upstream.queue(Reply(body=json.dumps(MALFORMED).encode()))
    with pytest.raises(cloverleaf.GenerationFailedError) as info:
        cloverleaf.chat("gemini/gemini-2.5-flash", "Weather in Paris?", base_url=upstream.url, api_key="k",
                        max_retries=0)
    err = info.value
    assert isinstance(err, cloverleaf.MalformedResponseError) and err.retryable
    assert err.code == "MALFORMED_FUNCTION_CALL" and FINISH_MESSAGE in str(err)
    # what arrived is kept: the prompt was billed
    assert err.response.usage.input_tokens == 10 and err.response.cost is not None


def test_stream_raises_at_its_end(upstream: Upstream) -> None:
    upstream.queue(Reply(headers={"content-type": "text/event-stream"},
                         chunks=[f"data: {json.dumps(MALFORMED)}\r\n\r\n".encode()]))
    stream = cloverleaf.stream("gemini/gemini-2.5-flash", "Weather in Paris?", base_url=upstream.url, api_key="k",
                               max_retries=0)
    with pytest.raises(cloverleaf.GenerationFailedError, match="MALFORMED_FUNCTION_CALL"):
        for _ in stream:
            pass
