"""Translation across the three inbound APIs, on recorded provider traffic.

For one recorded provider stream: the provider's adapter decodes the bytes into neutral
events (split wherever the caller says), and each inbound API's encoder renders them —
Chat Completions chunks, Anthropic Messages events, Responses events. Each rendering is
then *folded* the way that API's client folds it and compared with the same API's
non-streamed rendering of the assembled answer (what a non-stream call returns); every
event and every object is validated against the API's published schema (OpenAI's OpenAPI
document for Chat Completions and Responses, the Anthropic SDK's event and message types).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from cloverleaf._types import ChatRequest, ChatResponse, StreamEvent
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.server import anthropic_wire as aw
from cloverleaf.server import openai_wire as ow
from cloverleaf.server.anthropic_stream import MessageStreamEncoder
from cloverleaf.server.openai_stream import ChatChunkEncoder
from cloverleaf.server.responses.stream import ResponsesStreamEncoder
from cloverleaf.server.responses.wire import completed_object, parse_request
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.server.openai_schema import SPEC, validate

INBOUND = ("chat_completions", "anthropic_messages", "responses")
MODEL = "route-name"
CREATED = 1_700_000_000


@dataclass
class Rendered:
    """One inbound API's view of one answer: the stream folded, and the non-stream object."""

    folded: Any
    expected: Any
    events: list[dict[str, Any]]


def decode(provider: str, req: ChatRequest, pieces: list[bytes]) -> list[StreamEvent]:
    adapter = get_adapter(get_spec(provider))
    dec = adapter.stream_decoder(req)
    events: list[StreamEvent] = []
    for piece in pieces:
        events.extend(dec.feed(piece))
    events.extend(dec.close())
    return events


def assemble(provider: str, req: ChatRequest, events: list[StreamEvent]) -> ChatResponse:
    acc = StreamAccumulator(req.model, provider)
    for ev in events:
        acc.add(ev)
    return acc.response()


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    out = []
    for frame in raw.decode("utf-8").split("\n\n"):
        if not frame.strip():
            continue
        name = None
        data = []
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((name, "\n".join(data)))
    return out


def render(inbound: str, events: list[StreamEvent], answer: ChatResponse, *, check: bool = True) -> Rendered:
    """``check=False`` skips schema validation (for re-renderings of an answer already checked)."""
    return {"chat_completions": _chat, "anthropic_messages": _anthropic, "responses": _responses}[inbound](
        events, answer, check)


def _validate(check: bool, component: str, instance: Any) -> None:
    if check:
        validate(component, instance)


# --------------------------------------------------------------------------- Chat Completions


def _chat(events: list[StreamEvent], answer: ChatResponse, check: bool) -> Rendered:
    enc = ChatChunkEncoder(response_id="chatcmpl-x", model=MODEL, created=CREATED, include_usage=True)
    raw = enc.start() + b"".join(enc.encode(ev) or b"" for ev in events) + enc.finish()
    chunks = []
    for _, data in sse_frames(raw):
        if data == "[DONE]":
            continue
        chunk = json.loads(data)
        _validate(check, "CreateChatCompletionStreamResponse", chunk)
        chunks.append(chunk)
    content, reasoning, calls, finish, usage = "", "", {}, None, None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for tc in delta.get("tool_calls") or ():
                call = calls.setdefault(tc["index"], {"id": None, "type": "function",
                                                      "function": {"name": "", "arguments": ""}})
                call["id"] = tc.get("id") or call["id"]
                call["function"]["name"] += (tc.get("function") or {}).get("name") or ""
                call["function"]["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    folded = {"content": content or None, "reasoning_content": reasoning or None,
              "tool_calls": [calls[i] for i in sorted(calls)] or None, "finish_reason": finish, "usage": usage}
    whole = ow.chat_completion(answer, response_id="chatcmpl-x", model=MODEL, created=CREATED)
    _validate(check, "CreateChatCompletionResponse", whole)
    message = whole["choices"][0]["message"]
    expected = {"content": message.get("content") or None, "reasoning_content": message.get("reasoning_content"),
                "tool_calls": message.get("tool_calls"), "finish_reason": whole["choices"][0]["finish_reason"],
                "usage": whole["usage"]}
    return Rendered(folded, expected, chunks)


# --------------------------------------------------------------------------- Anthropic Messages

_ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)


def _anthropic(events: list[StreamEvent], answer: ChatResponse, check: bool) -> Rendered:
    enc = MessageStreamEncoder(message_id="msg_x", model=MODEL)
    raw = enc.start() + b"".join(enc.encode(ev) or b"" for ev in events) + enc.finish()
    payloads, snapshot, bufs = [], None, {}
    for name, data in sse_frames(raw):
        payload = json.loads(data)
        assert payload["type"] == name
        payloads.append(payload)
        if name == "ping":
            continue
        event = _ANTHROPIC_EVENT.validate_python(payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    assert snapshot is not None
    folded = AnthropicMessage.model_validate(snapshot.model_dump()).model_dump()
    expected = AnthropicMessage.model_validate(aw.message_json(answer, message_id="msg_x", model=MODEL)).model_dump()
    return Rendered(folded, expected, payloads)


# --------------------------------------------------------------------------- Responses


@cache
def _stream_event_components() -> dict[str, str]:
    """Responses stream event type -> the OpenAPI component describing it."""
    doc = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = doc["components"]["schemas"]
    out = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        kinds = schemas[name].get("properties", {}).get("type", {}).get("enum") or ()
        for kind in kinds:
            out[kind] = name
    return out


def validate_responses_event(payload: dict[str, Any]) -> None:
    component = _stream_event_components().get(payload["type"])
    assert component is not None, f"{payload['type']} is not a Responses stream event"
    validate(component, payload)


_GENERATED = re.compile(r"^(rs|msg|fc)_[0-9a-f]{24}")


def fold_responses(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold Responses events as a client does: items from ``output_item.added``, grown by
    the deltas, replaced by ``output_item.done``; the terminal event's Response last."""
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads))), "sequence numbers 0, 1, 2..."
    assert payloads[0]["type"] == "response.created" and payloads[1]["type"] == "response.in_progress"
    output: list[dict[str, Any]] = []
    summary: dict[tuple[int, int], str] = {}
    terminal = None
    for p in payloads:
        kind = p["type"]
        if kind == "response.output_item.added":
            assert p["output_index"] == len(output), "items are added in order"
            output.append(json.loads(json.dumps(p["item"])))
        elif kind == "response.content_part.added":
            output[p["output_index"]]["content"].append(dict(p["part"]))
        elif kind == "response.output_text.delta":
            output[p["output_index"]]["content"][p["content_index"]]["text"] += p["delta"]
        elif kind == "response.function_call_arguments.delta":
            output[p["output_index"]]["arguments"] += p["delta"]
        elif kind == "response.function_call_arguments.done":
            assert output[p["output_index"]]["arguments"] == p["arguments"]
        elif kind == "response.reasoning_summary_text.delta":
            key = (p["output_index"], p["summary_index"])
            summary[key] = summary.get(key, "") + p["delta"]
        elif kind == "response.reasoning_summary_text.done":
            assert summary.get((p["output_index"], p["summary_index"]), "") == p["text"]
        elif kind == "response.output_item.done":
            item = output[p["output_index"]]
            done = p["item"]
            assert done["id"] == item["id"] and done["type"] == item["type"]
            if done["type"] == "message":
                assert [c["text"] for c in done["content"]] == [c["text"] for c in item["content"]]
            elif done["type"] == "function_call":
                assert done["arguments"] == item["arguments"]
            else:
                texts = [summary.get((p["output_index"], i), "") for i in range(len(done["summary"]))]
                assert [s["text"] for s in done["summary"]] == texts
            output[p["output_index"]] = done
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            terminal = p["response"]
    assert terminal is not None and payloads[-1]["response"] is terminal
    assert terminal["output"] == output, "the terminal Response holds exactly the streamed items"
    return terminal


def normalise_ids(response: dict[str, Any]) -> dict[str, Any]:
    """Item ids the gateway generates differ between two renderings; upstream ids must not."""
    out = json.loads(json.dumps(response))
    for i, item in enumerate(out["output"]):
        found = _GENERATED.match(item["id"])
        if found:  # a generated id, and the call's provider data after it (compared as is)
            item["id"] = f"generated-{i}" + item["id"][found.end():]
    for key in ("created_at", "completed_at"):
        out[key] = 0 if out[key] is not None else None
    return out


def _responses(events: list[StreamEvent], answer: ChatResponse, check: bool) -> Rendered:
    req = parse_request({"model": MODEL, "input": "recorded"})
    enc = ResponsesStreamEncoder(req, response_id="resp_x", model=MODEL, created_at=CREATED)
    raw = enc.start() + b"".join(enc.encode(ev) or b"" for ev in events)
    enc.complete(CREATED)
    raw += enc.finish()
    payloads = []
    for name, data in sse_frames(raw):
        payload = json.loads(data)
        assert payload["type"] == name
        if check:
            validate_responses_event(payload)
        payloads.append(payload)
    folded = fold_responses(payloads)
    whole = completed_object(req, answer, response_id="resp_x", model=MODEL, created_at=CREATED,
                             completed_at=CREATED)
    _validate(check, "Response", whole)
    return Rendered(normalise_ids(folded), normalise_ids(whole), payloads)
