"""Bedrock Converse: the guardrail ``trace`` and the ``additionalModelResponseFields`` a request
asked for reach the caller in ``metadata.extra``, the same whole and streamed (ConverseStream puts
them in its ``metadata`` and ``messageStop`` events)."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, Message
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from cloverleaf.streams.eventstream import encode_frame

ADAPTER = BedrockAdapter(get_spec("bedrock"))
REQ = ChatRequest("us.anthropic.claude-sonnet-4-5-20250929-v1:0", [Message.user("hi")])
TRACE = {"guardrail": {"inputAssessment": {"gr1": {"contentPolicy": {"filters": [
    {"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED"}]}}}}}
FIELDS = {"stop_sequence": None, "usage": {"service_tier": "standard"}}
USAGE = {"inputTokens": 100, "outputTokens": 10, "totalTokens": 110}


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(payload).encode())


def test_trace_and_response_fields_whole_and_streamed():
    whole = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps({
        "output": {"message": {"role": "assistant", "content": [{"text": "Sorry."}]}},
        "stopReason": "guardrail_intervened", "usage": USAGE, "trace": TRACE,
        "additionalModelResponseFields": FIELDS, "metrics": {"latencyMs": 5}}).encode()), REQ)
    body = (_frame("messageStart", {"role": "assistant"})
            + _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Sorry."}})
            + _frame("contentBlockStop", {"contentBlockIndex": 0})
            + _frame("messageStop", {"stopReason": "guardrail_intervened", "additionalModelResponseFields": FIELDS})
            + _frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 5}, "trace": TRACE}))
    dec = ADAPTER.stream_decoder(REQ)
    acc = StreamAccumulator(REQ.model, "bedrock")
    for ev in [e for i in range(0, len(body), 13) for e in dec.feed(body[i:i + 13])] + dec.close():
        acc.add(ev)
    for r in (whole, acc.response()):
        assert r.text == "Sorry." and r.finish_reason == "content_filter"
        assert r.metadata.extra == {"trace": TRACE, "additional_model_response_fields": FIELDS}
