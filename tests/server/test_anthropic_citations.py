"""Claude's documents and citations through ``/v1/messages``, driven by the official ``anthropic``
SDK, with Anthropic answering from fixtures (a replay server on 127.0.0.1 stands in for it).

A document block used to reach Claude as an attachment or flattened text (its ``context`` and
``citations: {"enabled": true}`` dropped), and an answer's citations were never relayed: a
client could not use Claude's citations through the gateway at all. Now the block is sent on as
the client wrote it, and the citations come back in Anthropic's own shape, whole and streamed,
from the upstream or from the response cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from tests.wire import cassette

from .conftest import Live, settings, start_live, stop_live
from .replay import Replay

SYN = "../synthetic/anthropic/"
WHOLE = SYN + "document_citations.yaml"
STREAM = SYN + "stream_document_citations.yaml"
MODEL = "claude/claude-sonnet-4-5"


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    r = Replay()
    yield r
    r.close()


@pytest.fixture(scope="module")
def live(replay: Replay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The cache is a SQLite file: a hit is the answer written as JSON and read back."""
    claude = ProviderSettings(name="claude", kind="anthropic", base_url=f"{replay.url}/anthropic",
                              api_key_env="CLAUDE_KEY")
    cache_db = tmp_path_factory.mktemp("citations") / "cache.db"
    server = start_live(settings(env={"CLAUDE_KEY": "sk-ant-test"}, providers={"claude": claude},
                                 cache={"mode": "exact", "url": f"sqlite:///{cache_db}"}))
    yield server
    stop_live(server)


def recorded_request(name: str) -> dict[str, Any]:
    return cassette(name)[0].request_json  # type: ignore[no-any-return]


def recorded_content(name: str) -> list[dict[str, Any]]:
    return json.loads(cassette(name)[0].response.body)["content"]  # type: ignore[no-any-return]


def test_documents_go_to_claude_as_sent_and_citations_come_back(live: Live, replay: Replay) -> None:
    replay.load("anthropic", WHOLE)
    sent = recorded_request(WHOLE)
    client = live.anthropic()
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=1024, messages=sent["messages"],
                                                   extra_body={"temperature": 0})
    upstream = replay.received["anthropic"][-1]
    assert upstream["messages"] == sent["messages"]     # title, context, citations switch: all of it
    assert raw.http_response.json()["content"] == recorded_content(WHOLE)   # the citations as the API wrote them
    msg = raw.parse()
    grass = msg.content[1]
    assert grass.type == "text" and grass.text == "the grass is green"
    assert grass.citations is not None and grass.citations[0].type == "char_location"
    char = grass.citations[0]
    assert (char.cited_text, char.document_index, char.document_title, char.start_char_index,  # type: ignore[union-attr]
            char.end_char_index) == ("The grass is green.", 0, "My Document", 0, 20)  # type: ignore[union-attr]
    blocks, pages = msg.content[4].citations  # type: ignore[union-attr,misc]
    assert (blocks.type, blocks.start_block_index, blocks.end_block_index) == ("content_block_location", 0, 2)  # type: ignore[union-attr]
    assert (pages.type, pages.start_page_number, pages.end_page_number) == ("page_location", 2, 3)  # type: ignore[union-attr]
    assert msg.content[0].citations is None  # type: ignore[union-attr]

    # the same question again is a cache hit, whole and streamed, with the same citations
    assert replay.queues["anthropic"] == []             # a call upstream now would be a 500
    again = client.messages.with_raw_response.create(model=MODEL, max_tokens=1024, messages=sent["messages"],
                                                     extra_body={"temperature": 0})
    assert again.headers["x-cloverleaf-cache"] == "hit"
    assert again.http_response.json()["content"] == recorded_content(WHOLE)
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=sent["messages"],
                                extra_body={"temperature": 0}) as stream:
        final = stream.get_final_message()
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in msg.content]


def test_streamed_citations_reach_the_sdk(live: Live, replay: Replay) -> None:
    replay.load("anthropic", STREAM)
    sent = recorded_request(STREAM)
    client = live.anthropic()
    with client.messages.with_streaming_response.create(model=MODEL, max_tokens=1024, messages=sent["messages"],
                                                        extra_body={"temperature": 0}, stream=True) as resp:
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
    assert replay.received["anthropic"][-1]["messages"] == sent["messages"]
    events = [json.loads(line[6:]) for line in lines]
    cited = [e for e in events if e["type"] == "content_block_start" and "citations" in e["content_block"]]
    assert [e["content_block"] for e in cited] == [{"type": "text", "text": "", "citations": []}] * 2
    # in each cited block, its citation comes before its text, as Anthropic streams it
    first = cited[0]["index"]
    kinds = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta" and e["index"] == first]
    assert kinds == ["citations_delta", "text_delta", "text_delta"]

    # the SDK's own stream accumulator, on the cached replay of that stream
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=sent["messages"],
                                extra_body={"temperature": 0}) as stream:
        final = stream.get_final_message()
    got = [b.model_dump() for b in final.content]
    assert [b["text"] for b in got] == ["According to the document, ", "the grass is green", " and ",
                                        "the sky is blue", "."]
    assert [b.get("citations") for b in got] == [None, recorded_content(WHOLE)[1]["citations"], None,
                                                 recorded_content(WHOLE)[3]["citations"], None]
