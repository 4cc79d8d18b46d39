"""Wire gaps found by replaying real traffic: Bedrock citations, error lines inside streams, and
OpenAI refusals.

The Bedrock documents follow the Converse API reference (``CitationsContentBlock``: ``content``
is the generated text the ``citations`` support; ``CitationsDelta`` in ConverseStream); no public
recording of them was available to copy, so they are written here in the documented shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._errors import ContextWindowExceededError, RateLimitError, ServerError
from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, Citation, Message, StreamEvent
from cloverleaf.providers.anthropic.citations import citation_json
from cloverleaf.providers.bedrock.citations import citation_from as bedrock_citation
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from cloverleaf.streams.eventstream import encode_frame

BEDROCK = get_adapter(get_spec("bedrock"))
OPENAI = get_adapter(get_spec("openai"))
CITED = Citation("char_location", "Open 9 to 5, Monday to Friday.", 0, "Opening hours", 0, 30)
CITATION = {"title": "Opening hours", "sourceContent": [{"text": "Open 9 to 5, Monday to Friday."}],
            "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 30}}}


def _req(stream: bool = False) -> ChatRequest:
    return ChatRequest(model="amazon.nova-pro-v1:0", messages=[Message.user("When are you open?")], stream=stream)


def _assemble(events: list[StreamEvent], provider: str) -> Any:
    acc = StreamAccumulator("m", provider)
    for ev in events:
        acc.add(ev)
    return acc.response()


def test_bedrock_citations_content_text_is_the_answer_and_citations_are_kept() -> None:
    body = {"output": {"message": {"role": "assistant", "content": [
        {"text": "According to the document, "},
        {"citationsContent": {"content": [{"text": "the shop opens at 9 on weekdays."}], "citations": [CITATION]}},
    ]}}, "stopReason": "end_turn", "usage": {"inputTokens": 50, "outputTokens": 12, "totalTokens": 62}}
    resp = BEDROCK.parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), _req())
    assert resp.text == "According to the document, the shop opens at 9 on weekdays."
    assert "citations" not in resp.metadata.extra and resp.finish_reason == "stop"
    assert [p.citations for p in resp.parts] == [None, [CITED]]  # the cited span carries its citation


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(payload).encode())


@pytest.mark.parametrize("shape", ["citation-deltas", "citations-content-delta"])
def test_bedrock_stream_with_citations_keeps_text_and_citations(shape: str) -> None:
    if shape == "citation-deltas":  # ConverseStream's CitationsDelta next to the text deltas
        deltas = [{"text": "the shop opens "}, {"citation": CITATION}, {"text": "at 9 on weekdays."}]
    else:  # the whole block in one delta, as Nova grounding sends it
        deltas = [{"citationsContent": {"content": [{"text": "the shop opens at 9 on weekdays."}],
                                        "citations": [CITATION]}}]
    raw = b"".join([_frame("messageStart", {"role": "assistant"}),
                    *[_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": d}) for d in deltas],
                    _frame("contentBlockStop", {"contentBlockIndex": 0}),
                    _frame("messageStop", {"stopReason": "end_turn"}),
                    _frame("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7}, "metrics": {}})])
    for cut in (1, 7, len(raw)):  # any split
        dec = BEDROCK.stream_decoder(_req(stream=True))
        events = [ev for i in range(0, len(raw), cut) for ev in dec.feed(raw[i:i + cut])] + dec.close()
        resp = _assemble(events, "bedrock")
        assert resp.text == "the shop opens at 9 on weekdays."
        assert "citations" not in resp.metadata.extra   # on the text, not raw beside it
        assert [p.citations for p in resp.parts] == [[CITED]]
        assert [ev.citation for ev in events if ev.type == "citation"] == [CITED]


@pytest.mark.parametrize("location, expected", [
    ({"documentPage": {"documentIndex": 1, "start": 2, "end": 3}},
     Citation("page_location", "Open 9 to 5, Monday to Friday.", 1, "Opening hours", 2, 3)),
    ({"documentChunk": {"documentIndex": 0, "start": 0, "end": 1}},
     Citation("content_block_location", "Open 9 to 5, Monday to Friday.", 0, "Opening hours", 0, 1)),
    ({"web": {"url": "https://example.com/hours", "domain": "example.com"}},
     Citation("web_search_result_location", "Open 9 to 5, Monday to Friday.", url="https://example.com/hours",
              title="Opening hours", extra={"domain": "example.com"})),
    ({"searchResultLocation": {"searchResultIndex": 2, "start": 0, "end": 1}},
     Citation("search_result_location", "Open 9 to 5, Monday to Friday.", title="Opening hours", start=0, end=1,
              extra={"search_result_index": 2})),
    ({"somethingNew": {"a": 1}},  # a location kind added to the API later: kept as it came
     Citation("somethingNew", "Open 9 to 5, Monday to Friday.", title="Opening hours",
              extra={"location": {"somethingNew": {"a": 1}}})),
])
def test_bedrock_citation_locations_read_as_anthropic_names_them(location: dict[str, Any], expected: Citation) -> None:
    """Claude on Bedrock cites in Converse's words; the answer reads as it does through Anthropic's API."""
    assert bedrock_citation({**CITATION, "location": location}) == expected


def test_bedrock_citations_reach_an_anthropic_client_in_its_shape() -> None:
    """What the server's Messages API writes for a Bedrock citation is Anthropic's object."""
    assert citation_json(CITED) == {"type": "char_location", "cited_text": "Open 9 to 5, Monday to Friday.",
                                    "document_index": 0, "document_title": "Opening hours",
                                    "start_char_index": 0, "end_char_index": 30}


def _sse_stream(*lines: str) -> list[StreamEvent]:
    dec = OPENAI.stream_decoder(ChatRequest(model="m", messages=[Message.user("hi")], stream=True))
    return dec.feed("".join(lines).encode()) + dec.close()


CHUNK = 'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,' \
        '"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'


@pytest.mark.parametrize("line, cls, message", [
    ('error: {"error": {"code": 500, "message": "failed to decode the batch", "type": "server_error"}}\n\n',
     ServerError, "failed to decode the batch"),
    ('error: {"error": {"code": 400, "message": "the prompt exceeds the context size", '
     '"type": "invalid_request_error"}}\n\n', ContextWindowExceededError, "exceeds the context size"),
    ('error: {"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}}\n\n',
     RateLimitError, "slow down"),
    ("error: model crashed while decoding\n", ServerError, "model crashed while decoding"),  # plain words, no blank line
    ('event: error\ndata: {"error": {"message": "upstream overloaded", "code": 503}}\n\n', ServerError,
     "upstream overloaded"),
])
def test_an_error_line_inside_a_stream_raises_the_matching_provider_error(line: str, cls: type, message: str) -> None:
    with pytest.raises(cls) as info:
        _sse_stream(CHUNK, line)
    assert message in info.value.message and info.value.provider == "openai"


REFUSAL = {"id": "c1", "object": "chat.completion", "model": "gpt-4o", "choices": [{
    "index": 0, "finish_reason": "stop", "logprobs": None,
    "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}}


def test_openai_refusal_is_response_refusal_in_both_paths() -> None:
    req = ChatRequest(model="gpt-4o", messages=[Message.user("x")])
    resp = OPENAI.parse_chat(HttpResponse(200, {}, json.dumps(REFUSAL).encode()), req)
    assert resp.refusal == "I can't help with that." and resp.metadata.raw_finish_reason == "stop"
    events = _sse_stream(
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
        '"delta":{"role":"assistant","content":null,"refusal":""},"finish_reason":null}]}\n\n',
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
        '"delta":{"refusal":"I can\'t help"},"finish_reason":null}]}\n\n',
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
        '"delta":{"refusal":" with that."},"finish_reason":null}]}\n\n',
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
        '"delta":{},"finish_reason":"stop"}]}\n\n', "data: [DONE]\n\n")
    streamed = _assemble(events, "openai")
    assert streamed.refusal == resp.refusal and streamed.parts == resp.parts
