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


def test_an_empty_answer_gemini_stopped_for_another_reason_is_raised(upstream: Upstream) -> None:
    """finishReason OTHER with nothing said: raised with Gemini's reason, whole and streamed,
    not returned as an empty answer (a server client read it as an empty ``stop``)."""
    other = {"candidates": [{"content": {"role": "model"}, "finishReason": "OTHER"}],
             "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}, "modelVersion": "gemini-2.5-flash"}
    upstream.queue(Reply(body=json.dumps(other).encode()),
                   Reply(headers={"content-type": "text/event-stream"},
                         chunks=[f"data: {json.dumps(other)}\r\n\r\n".encode()]))
    with pytest.raises(cloverleaf.GenerationFailedError, match="OTHER"):
        cloverleaf.chat("gemini/gemini-2.5-flash", "Hi", base_url=upstream.url, api_key="k", max_retries=0)
    with pytest.raises(cloverleaf.GenerationFailedError, match="OTHER"):
        for _ in cloverleaf.stream("gemini/gemini-2.5-flash", "Hi", base_url=upstream.url, api_key="k",
                                   max_retries=0):
            pass


# --------------------------------------------------------------------------- an answer the provider cut short

INTERRUPTED_TEXT = "The three steps are: 1."
DEEPSEEK_USAGE = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}


def _deepseek_whole() -> Reply:
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": INTERRUPTED_TEXT},
                         "finish_reason": "insufficient_system_resource"}], "usage": DEEPSEEK_USAGE}
    return Reply(body=json.dumps(body).encode())


def _deepseek_streamed() -> Reply:
    head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-chat"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": INTERRUPTED_TEXT},
                                    "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {"content": ""},
                                    "finish_reason": "insufficient_system_resource"}]},
              {**head, "choices": [], "usage": DEEPSEEK_USAGE}]
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"])


def test_an_answer_deepseek_interrupted_is_raised_not_returned(upstream: Upstream) -> None:
    """DeepSeek's finish_reason insufficient_system_resource: its inference system ran short and
    cut the answer off. It read as a finished answer (finish_reason "other"); it is an error the
    caller may retry, keeping what came and what it cost (DeepSeek bills the tokens it reports)."""
    upstream.queue(_deepseek_whole())
    with pytest.raises(cloverleaf.GenerationInterruptedError) as info:
        cloverleaf.chat("deepseek/deepseek-chat", "Three steps?", base_url=f"{upstream.url}/v1", api_key="k",
                        max_retries=0)
    err = info.value
    assert isinstance(err, cloverleaf.GenerationFailedError) and err.retryable
    assert err.code == "insufficient_system_resource" and "ran short of resources" in str(err)
    assert err.response.text == INTERRUPTED_TEXT
    assert (err.response.usage.input_tokens, err.response.usage.output_tokens) == (10, 7)
    assert err.response.usage.reported and err.response.cost is not None and err.response.cost > 0


def test_a_stream_deepseek_interrupted_raises_after_its_text(upstream: Upstream) -> None:
    upstream.queue(_deepseek_streamed())
    stream = cloverleaf.stream("deepseek/deepseek-chat", "Three steps?", base_url=f"{upstream.url}/v1", api_key="k",
                               max_retries=0)
    text = ""
    with pytest.raises(cloverleaf.GenerationInterruptedError) as info:
        for event in stream:
            text += event.text or "" if event.type == "text" else ""
    assert text == INTERRUPTED_TEXT
    assert info.value.response.usage.output_tokens == 7 and info.value.response.usage.reported
