"""Replay helpers shared by the OpenAI, compatible-row and Azure adapter tests."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._types import ChatRequest, ChatResponse, StreamEvent
from cloverleaf.providers.base import Adapter, ProviderConfig
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.wire import Interaction, cassette, chunks

PA = "pydantic-ai/tests/models/cassettes"
PA_ROOT = "pydantic-ai/tests"
CREW = "crewAI/lib/crewai/tests/cassettes"


def adapter(row: str) -> Adapter:
    return get_adapter(get_spec(row))


def config(row: str, *, base_url: str | None = None, api_key: str | None = "sk-test-secret",
           **extra: Any) -> ProviderConfig:
    spec = get_spec(row)
    return ProviderConfig(name=row, kind=spec.kind, base_url=base_url or spec.base_url, api_key=api_key,
                          extra={**spec.extra, **extra})


def interaction(relpath: str, index: int = -1) -> Interaction:
    return cassette(relpath)[index]


def replay_chat(row: str, relpath: str, req: ChatRequest, index: int = -1) -> ChatResponse:
    return adapter(row).parse_chat(interaction(relpath, index).response, req)


def decode_stream(row: str, body: bytes, req: ChatRequest, size: int | None = None) -> list[StreamEvent]:
    dec = adapter(row).stream_decoder(req)
    events: list[StreamEvent] = []
    for piece in (chunks(body, size) if size else [body]):
        events.extend(dec.feed(piece))
    events.extend(dec.close())
    return events


def accumulate(row: str, events: list[StreamEvent], req: ChatRequest) -> ChatResponse:
    acc = StreamAccumulator(req.model, adapter(row).name)
    for ev in events:
        acc.add(ev)
    return acc.response()


def replay_stream(row: str, relpath: str, req: ChatRequest, index: int = -1,
                  size: int | None = None) -> tuple[list[StreamEvent], ChatResponse]:
    events = decode_stream(row, interaction(relpath, index).response.body, req, size)
    return events, accumulate(row, events, req)


def recorded_chunks(relpath: str, index: int = -1) -> list[dict[str, Any]]:
    """The JSON data payloads of a recorded SSE body, read independently of our decoder."""
    text = interaction(relpath, index).response.body.decode()
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            out.append(json.loads(line[5:]))
    return out


def merged(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """Events as comparable tuples with adjacent text/reasoning/argument deltas merged,
    so that two decodings of differently split input can be compared."""
    out: list[list[Any]] = []
    for ev in events:
        key = (ev.type, ev.index)
        piece = ev.text if ev.type in ("text", "reasoning") else ev.arguments
        mergeable = ev.type in ("text", "reasoning") or (ev.type == "tool_call_delta" and not ev.id and not ev.name)
        if mergeable and out and out[-1][0] == key and out[-1][2]:
            out[-1][1] = (out[-1][1] or "") + (piece or "")
            continue
        usage = (ev.usage.input_tokens, ev.usage.output_tokens, ev.usage.cached_tokens,
                 ev.usage.reasoning_tokens) if ev.usage else None
        out.append([key, piece, mergeable, ev.id, ev.name, ev.signature, ev.redacted, usage,
                    ev.finish_reason, ev.raw_finish_reason, ev.model])
    return [tuple(x) for x in out]
