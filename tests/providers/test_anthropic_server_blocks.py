"""Anthropic's server tool blocks (web search's ``server_tool_use`` and ``web_search_tool_result``)
are kept streamed as they are whole, and go back in place with the assistant turn, so a
``pause_turn`` answer can be resumed: Claude needs the paused turn's blocks to continue it."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message
from cloverleaf.gateway.cache import codec
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
ADAPTER = AnthropicAdapter(get_spec("anthropic"))
CFG = ProviderConfig(name="anthropic", kind="anthropic", base_url="https://api.anthropic.com", api_key="k")
ASK = Message.user("who won euro 2024")
SEARCH = [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "euro 2024"}},
          {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
              {"type": "web_search_result", "url": "https://www.uefa.com/", "title": "UEFA",
               "encrypted_content": "Eqg", "page_age": None}]}]


def _streamed(body: bytes, req: ChatRequest) -> ChatResponse:
    dec = ADAPTER.stream_decoder(req)
    events = [ev for i in range(0, len(body), 97) for ev in dec.feed(body[i:i + 97])] + dec.close()
    acc = StreamAccumulator(req.model, ADAPTER.name)
    for ev in events:
        acc.add(ev)
    return acc.response()


def _sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def _sent_back(r: ChatResponse) -> list[dict[str, Any]]:
    """The assistant turn's content as the next request sends it."""
    body = json.loads(ADAPTER.build_chat(ChatRequest("claude-sonnet-4-5", [ASK, r.to_message()]), CFG).body or b"")
    assert body["messages"][-1]["role"] == "assistant"
    return list(body["messages"][-1]["content"])


def test_a_recorded_web_search_stream_keeps_its_server_blocks_in_place():
    body = cassette(REC + "test_anthropic_model_web_search_tool_stream.yaml")[0].response.body
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, str] = {}
    texts: dict[int, str] = {}
    for line in body.decode().splitlines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
            inputs[event["index"]] = inputs.get(event["index"], "") + event["delta"]["partial_json"]
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            texts[event["index"]] = texts.get(event["index"], "") + event["delta"]["text"]
    for index, raw in inputs.items():
        blocks[index]["input"] = json.loads(raw)
    server = [blocks[i] for i in sorted(blocks) if blocks[i]["type"] not in ("text", "thinking", "tool_use")]
    assert {b["type"] for b in server} == {"server_tool_use", "web_search_tool_result"}

    r = _streamed(body, ChatRequest("claude-sonnet-4-0", [Message.user("weather in SF?")], stream=True))
    assert r.metadata.extra["server_tool_blocks"] == server
    assert server[0]["input"] == {"query": json.loads(inputs[min(inputs)])["query"]}
    # sent back, the turn has the stream's blocks in the stream's order (text blocks with text)
    order = [blocks[i]["type"] for i in sorted(blocks) if blocks[i]["type"] != "text" or texts.get(i)]
    assert [b["type"] for b in _sent_back(r)] == order
    back = codec.loads(codec.dumps(codec.CachedAnswer(r))).response   # a gateway's cache keeps them
    assert back.metadata.extra == r.metadata.extra


def test_a_paused_turn_is_sent_back_with_its_server_blocks_whole_and_streamed():
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "text", "text": "Let me search."}, *SEARCH], "stop_reason": "pause_turn",
               "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 10}}
    whole = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(message).encode()),
                               ChatRequest("claude-sonnet-4-5", [ASK]))
    start = {**message, "content": [], "stop_reason": None}
    stream = _sse([
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me search."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {**SEARCH[0], "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": json.dumps(SEARCH[0]["input"])}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": SEARCH[1]},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
         "usage": {"output_tokens": 10}},
        {"type": "message_stop"}])
    streamed = _streamed(stream, ChatRequest("claude-sonnet-4-5", [ASK], stream=True))
    for r in (whole, streamed):
        assert r.metadata.raw_finish_reason == "pause_turn"
        assert r.metadata.extra["server_tool_blocks"] == SEARCH
        assert _sent_back(r) == message["content"]


def test_server_blocks_go_back_only_to_the_provider_kind_that_made_them():
    turn = Message("assistant", "Spain.", extra={"provider": "openai", "server_tool_blocks": SEARCH,
                                                 "server_tool_block_positions": [0, 0]})
    body = json.loads(ADAPTER.build_chat(ChatRequest("claude-sonnet-4-5", [ASK, turn]), CFG).body or b"")
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "Spain."}]


def test_a_lone_surrogate_in_a_streamed_server_tool_input_is_read_as_the_whole_answer_reads_it():
    """A ``server_tool_use`` input with a lone surrogate escape (``"\\ud800"``, which JSON allows):
    every upstream decode reads it as U+FFFD, and so did the whole answer, but the stream's joined
    ``input_json_delta`` text was read with a plain ``json.loads`` and kept the lone surrogate, so
    the paused turn could not be sent back (no UTF-8 text carries it)."""
    use = {**SEARCH[0], "input": {"query": "euro \ud800 2024"}}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [use, SEARCH[1]], "stop_reason": "pause_turn", "stop_sequence": None,
               "usage": {"input_tokens": 100, "output_tokens": 10}}
    whole = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(message).encode()),
                               ChatRequest("claude-sonnet-4-5", [ASK]))
    stream = _sse([
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {**use, "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": json.dumps(use["input"])}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": SEARCH[1]},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
         "usage": {"output_tokens": 10}},
        {"type": "message_stop"}])
    streamed = _streamed(stream, ChatRequest("claude-sonnet-4-5", [ASK], stream=True))
    assert streamed.metadata.extra["server_tool_blocks"][0]["input"] == {"query": "euro \ufffd 2024"}
    assert streamed.metadata.extra["server_tool_blocks"] == whole.metadata.extra["server_tool_blocks"]
    assert _sent_back(streamed) == _sent_back(whole)
