"""Anthropic documents and citations: Document parts sent as the Messages API's document
blocks, and the citations of an answer's text blocks read back, whole and streamed.

The citations of a real answer come from recorded web searches (the only recorded citations:
pydantic-ai's ``test_anthropic_web_search_tool*.yaml``); document citations (characters, pages,
content blocks) from fixtures built by hand from Anthropic's documented format
(``tests/fixtures/synthetic/anthropic/*document_citations.yaml``)."""

from __future__ import annotations

import json

import pytest

from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import Attachment, ChatRequest, Citation, Document, Message, StreamEvent, Text
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.anthropic.citations import citation_json
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
SYN = "../synthetic/anthropic/"
PDF = b"%PDF-1.4 tiny"
CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")

#: the request the synthetic answer answers, in neutral types
GRASS = Document("The grass is green. The sky is blue.", title="My Document",
                 context="This is a trustworthy document.", citations=True)
CHUNKS = Document([Text("First chunk."), Text("Second chunk.")], title="Chunks", citations=True)
QUESTION = Text("What color is the grass and sky?")


@pytest.fixture(scope="module")
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(get_spec("anthropic"))


def decode(adapter: AnthropicAdapter, req: ChatRequest, body: bytes) -> tuple[list[StreamEvent], object]:
    dec = adapter.stream_decoder(req)
    events = dec.feed(body) + dec.close()
    acc = StreamAccumulator(req.model, adapter.name)
    for ev in events:
        acc.add(ev)
    return events, acc.response()


# --------------------------------------------------------------------------- documents sent


def test_text_and_content_documents_are_sent_as_documented(adapter) -> None:
    req = ChatRequest("claude-sonnet-4-5", [Message.user([GRASS, CHUNKS, QUESTION])], max_tokens=1024)
    recorded = cassette(SYN + "document_citations.yaml")[0].request_json
    assert adapter.build_chat(req, CFG).json() == recorded


def test_pdf_documents_by_bytes_and_by_url_keep_title_context_citations_and_cache_hint(adapter) -> None:
    inline = Document(Attachment(type="pdf", media_type="application/pdf", data=PDF), title="Report",
                      context="Q3 figures", citations=True, cache_control={"type": "ephemeral"})
    by_url = Document(Attachment(type="pdf", fetch="provider", url="https://example.com/r.pdf"), title="Remote")
    blocks = adapter.build_chat(ChatRequest("claude-sonnet-4-5", [Message.user([inline, by_url])]),
                                CFG).json()["messages"][0]["content"]
    assert blocks == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0xLjQgdGlueQ=="},
         "title": "Report", "context": "Q3 figures", "citations": {"enabled": True},
         "cache_control": {"type": "ephemeral"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/r.pdf"}, "title": "Remote"},
    ]


def test_a_content_document_may_hold_images_but_not_a_pdf(adapter) -> None:
    png = Attachment(type="image", media_type="image/png", data=b"\x89PNG\r\n\x1a\n")
    doc = Document([Text("A chart:"), png])
    block = adapter.build_chat(ChatRequest("claude-sonnet-4-5", [Message.user([doc])]),
                               CFG).json()["messages"][0]["content"][0]
    assert block["source"]["type"] == "content"
    assert [b["type"] for b in block["source"]["content"]] == ["text", "image"]
    pdf = Attachment(type="pdf", media_type="application/pdf", data=PDF)
    with pytest.raises(InvalidRequestError, match="text parts and images only"):
        adapter.build_chat(ChatRequest("claude-sonnet-4-5", [Message.user([Document([pdf])])]), CFG)
    with pytest.raises(InvalidRequestError, match="must be a PDF"):
        adapter.build_chat(ChatRequest("claude-sonnet-4-5", [Message.user([Document(png)])]), CFG)


# --------------------------------------------------------------------------- citations read


def test_document_citations_of_a_whole_answer(adapter) -> None:
    req = ChatRequest("claude-sonnet-4-5", [Message.user([GRASS, CHUNKS, QUESTION])])
    interaction = cassette(SYN + "document_citations.yaml")[0]
    resp = adapter.parse_chat(interaction.response, req)
    assert resp.text == "According to the document, the grass is green and the sky is blue; the chunks agree."
    assert [p.text for p in resp.parts if isinstance(p, Text) and p.citations] == [
        "the grass is green", "the sky is blue", "; the chunks agree"]
    grass = resp.parts[1].citations[0]
    assert grass == Citation("char_location", "The grass is green.", document_index=0, document_title="My Document",
                             start=0, end=20, extra={"file_id": None})
    blocks, pages = resp.parts[4].citations
    assert (blocks.type, blocks.document_index, blocks.start, blocks.end) == ("content_block_location", 1, 0, 2)
    assert (pages.type, pages.document_title, pages.start, pages.end) == ("page_location", None, 2, 3)
    # written back, each is the object the API sent
    recorded = json.loads(interaction.response.body)["content"]
    assert [[citation_json(c) for c in p.citations or ()] for p in resp.parts] == [
        b.get("citations", []) for b in recorded]


def test_web_search_citations_of_a_recorded_answer(adapter) -> None:
    interaction = cassette(REC + "test_anthropic_web_search_tool.yaml")[0]
    req = ChatRequest("claude-sonnet-4-0", [Message.user("What is the weather in San Francisco today?")])
    resp = adapter.parse_chat(interaction.response, req)
    recorded = [b for b in json.loads(interaction.response.body)["content"] if b["type"] == "text"]
    texts = [p for p in resp.parts if isinstance(p, Text)]
    assert [t.text for t in texts] == [b["text"] for b in recorded]
    assert [[citation_json(c) for c in t.citations or ()] for t in texts] == [b.get("citations", []) for b in recorded]
    first = texts[1].citations[0]
    assert first.type == "web_search_result_location" and first.url.startswith("https://www.accuweather.com/")
    assert first.title == "San Francisco, CA Weather Forecast | AccuWeather"
    assert first.extra is not None and first.extra["encrypted_index"].startswith("Eo8BCioIBxgC")


# --------------------------------------------------------------------------- citations streamed


def test_streamed_document_citations_assemble_as_the_whole_answer_does(adapter) -> None:
    interaction = cassette(SYN + "stream_document_citations.yaml")[0]
    req = ChatRequest("claude-sonnet-4-5", [Message.user([GRASS, QUESTION])], max_tokens=1024, stream=True)
    assert adapter.build_chat(req, CFG).json() == interaction.request_json
    events, resp = decode(adapter, req, interaction.response.body)
    kinds = [(e.type, e.index) for e in events if e.type in ("citation", "text")]
    assert kinds[:4] == [("text", 0), ("citation", 1), ("text", 1), ("text", 1)]
    whole = adapter.parse_chat(cassette(SYN + "document_citations.yaml")[0].response, req)
    assert resp.parts == whole.parts[:4] + [whole.parts[5]]   # the stream's answer has no chunk citation


def test_streamed_web_search_citations_of_a_recorded_stream(adapter) -> None:
    """Every citations_delta of the recording is on the text block it came in, split per
    block, exactly as a whole answer has them."""
    body = cassette(REC + "test_anthropic_model_web_search_tool_stream.yaml")[0].response.body
    req = ChatRequest("claude-sonnet-4-0", [Message.user("What is the weather in San Francisco today?")], stream=True)
    _, resp = decode(adapter, req, body)
    deltas: dict[int, list[dict]] = {}
    texts: dict[int, str] = {}
    for line in body.decode().splitlines():
        if line.startswith("data: ") and '"content_block_delta"' in line:
            event = json.loads(line[6:])
            if event["delta"]["type"] == "citations_delta":
                deltas.setdefault(event["index"], []).append(event["delta"]["citation"])
            elif event["delta"]["type"] == "text_delta":
                texts[event["index"]] = texts.get(event["index"], "") + event["delta"]["text"]
    cited = [p for p in resp.parts if isinstance(p, Text) and p.citations]
    assert sum(len(v) for v in deltas.values()) == 7
    assert [[citation_json(c) for c in p.citations or ()] for p in cited] == [deltas[i] for i in sorted(deltas)]
    assert [p.text for p in cited] == [texts[i] for i in sorted(deltas)]
    assert resp.text == "".join(texts[i] for i in sorted(texts))
