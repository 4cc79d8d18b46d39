"""Documents and citations from the SDK: ``Document`` parts sent to Claude as document blocks
and read as text by a provider without them, the answer's citations on its Text parts (whole
and streamed), and everything the engine and gateway do with a document on the way: loading
its PDF without touching the caller's object, keying the cache by its content, bounding its
tokens, and keeping cited answers in the cache.

Claude answers from fixtures built from Anthropic's documented format
(``tests/fixtures/synthetic/anthropic/*document_citations.yaml``), replayed on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloverleaf import Attachment, Citation, Client, Document, Message, Role, Text
from cloverleaf._config import ProviderSettings
from cloverleaf._types import ChatRequest, ChatResponse
from cloverleaf.gateway.cache.codec import CachedAnswer, dumps, loads
from cloverleaf.gateway.cache.keys import exact_key
from cloverleaf.gateway.estimate import input_token_bound
from tests.server.replay import Replay
from tests.wire import cassette

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
SYN = "../synthetic/anthropic/"
GRASS = Document("The grass is green. The sky is blue.", title="My Document",
                 context="This is a trustworthy document.", citations=True)
CHUNKS = Document([Text("First chunk."), Text("Second chunk.")], title="Chunks", citations=True)
QUESTION = Text("What color is the grass and sky?")


@pytest.fixture
def replay() -> Iterator[Replay]:
    r = Replay()
    yield r
    r.close()


@pytest.fixture
def claude(replay: Replay) -> Iterator[Client]:
    provider = ProviderSettings(name="claude", kind="anthropic", base_url=f"{replay.url}/anthropic",
                                api_key_env="CLAUDE_KEY")
    with Client(env={"CLAUDE_KEY": "sk-ant-test"}, providers={"claude": provider}, max_retries=0) as c:
        yield c


def test_claude_gets_the_documents_and_the_answer_its_citations(claude: Client, replay: Replay) -> None:
    replay.load("anthropic", SYN + "document_citations.yaml")
    r = claude.chat("claude/claude-sonnet-4-5", [Message.user([GRASS, CHUNKS, QUESTION])], max_tokens=1024)
    assert replay.received["anthropic"][-1] == cassette(SYN + "document_citations.yaml")[0].request_json
    cited = [p for p in r.parts if isinstance(p, Text) and p.citations]
    assert [p.text for p in cited] == ["the grass is green", "the sky is blue", "; the chunks agree"]
    assert cited[0].citations == [Citation("char_location", "The grass is green.", document_index=0,
                                           document_title="My Document", start=0, end=20, extra={"file_id": None})]
    assert r.content == "According to the document, the grass is green and the sky is blue; the chunks agree."


def test_a_streamed_answer_carries_its_citations(claude: Client, replay: Replay) -> None:
    replay.load("anthropic", SYN + "stream_document_citations.yaml")
    with claude.stream("claude/claude-sonnet-4-5", [Message.user([GRASS, QUESTION])], max_tokens=1024) as s:
        events = list(s)
    assert [e.citation.cited_text for e in events if e.type == "citation" and e.citation] == [
        "The grass is green.", "The sky is blue."]
    resp = s.response
    assert resp is not None
    assert [(p.text, [c.start for c in p.citations or ()]) for p in resp.parts if isinstance(p, Text)] == [
        ("According to the document, ", []), ("the grass is green", [0]), (" and ", []),
        ("the sky is blue", [20]), (".", [])]


def test_a_provider_without_documents_reads_title_context_and_text() -> None:
    """The fake is OpenAI-shaped: a document is its title and context as lines, then its text
    (a list's parts one per line), set off by a blank line from the text around it (OpenAI joins
    a turn's text parts with nothing between), and its PDF a file part (named after the title
    when the PDF has no file name of its own)."""
    pdf = Document(Attachment(source=str(MEDIA / "document.pdf")), title="Report", context="Q3")
    inline = Document(Attachment(source=(MEDIA / "document.pdf").read_bytes()), title="Inline")
    with Client(max_retries=0) as client:
        client.chat("fake/echo", [Message.user([GRASS, CHUNKS, pdf, inline, QUESTION])])
        sent = client.fake.requests[-1].json["messages"][0]["content"]
    texts = [p["text"] for p in sent if p["type"] == "text"]
    assert "".join(texts) == ("Document: My Document\nContext: This is a trustworthy document.\n"
                              "The grass is green. The sky is blue.\n\n"
                              "Document: Chunks\nFirst chunk.\nSecond chunk.\n\n"
                              "Document: Report\nContext: Q3\n\n"
                              "Document: Inline\n\n"
                              "What color is the grass and sky?")
    files = [p for p in sent if p["type"] == "file"]
    assert [f["file"]["filename"] for f in files] == ["document.pdf", "Inline"]


@pytest.mark.parametrize("model", ["openai/gpt-4o", "openai-responses/gpt-4o", "ollama/llama3.1"])
def test_a_document_read_as_text_is_set_off_from_the_text_around_it(model: str) -> None:
    """README's refund-policy example reached OpenAI as "...from this:Document: Refund policy ...
    purchase.How long ...": the encoders join a turn's text parts with nothing between them."""
    policy = Document("Refunds are accepted within 30 days of purchase.", title="Refund policy",
                      context="The shop's terms, 2025 edition", citations=True)
    with Client(env={"OPENAI_API_KEY": "sk-test"}, max_retries=0) as client:
        target = client.engine.resolve(model, base_url="http://127.0.0.1:9")
        req = ChatRequest(target.model, [Message.user([Text("Please answer from this:"), policy,
                                                       Text("How long do I have to return it?")])])
        body = client.engine._build_chat(target, req).json()   # what ``cloverleaf chat --dry-run`` shows
    turn = (body.get("messages") or body.get("input"))[0]
    assert turn["content"] == ("Please answer from this:\n\nDocument: Refund policy\n"
                               "Context: The shop's terms, 2025 edition\n"
                               "Refunds are accepted within 30 days of purchase.\n\n"
                               "How long do I have to return it?")


def test_loading_a_documents_pdf_leaves_the_callers_document_as_it_was() -> None:
    att = Attachment(source=str(MEDIA / "document.pdf"))
    doc = Document(att, title="Report")
    with Client(max_retries=0) as client:
        client.chat("fake/echo", [Message.user([doc, Text("summarise")])])
    assert doc.content is att and att.data is None and att.type is None


def test_the_cache_key_sees_a_documents_content_title_and_switches(tmp_path: Path) -> None:
    """Two PDFs of one size were one key when a part was keyed by its repr (which shows the size)."""
    one, two = tmp_path / "a.pdf", tmp_path / "b.pdf"
    one.write_bytes(b"%PDF-1.4 aaaa")
    two.write_bytes(b"%PDF-1.4 bbbb")

    def key(doc: Document) -> str:
        return exact_key("s", "m", ChatRequest("m", [Message(Role.USER, [doc])]))

    base = key(Document(Attachment(source=str(one)), title="t"))
    assert base == key(Document(Attachment(source=str(one)), title="t"))
    others = [key(Document(Attachment(source=str(two)), title="t")), key(Document(Attachment(source=str(one)))),
              key(Document(Attachment(source=str(one)), title="t", context="c")),
              key(Document(Attachment(source=str(one)), title="t", citations=True))]
    assert len({base, *others}) == 5


def test_a_documents_bytes_count_toward_the_token_bound() -> None:
    """A PDF is bounded by its pages or its bytes, whichever is more (and one whose pages cannot
    be counted has no bound of its own: the target's context window bounds it)."""
    big = Attachment(type="pdf", media_type="application/pdf",
                     data=b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n" + b"x" * 200_000)
    req = ChatRequest("m", [Message.user([Document(big, title="Big")])])
    assert input_token_bound(req) > 200_000
    pageless = Attachment(type="pdf", media_type="application/pdf", data=b"%PDF" + b"x" * 200_000)
    assert input_token_bound(ChatRequest("m", [Message.user([Document(pageless, title="Big")])])) is None


def test_a_cited_answer_survives_the_caches_json() -> None:
    answer = ChatResponse(parts=[Text("plain "), Text("cited", citations=[
        Citation("page_location", "p. 2", document_index=0, start=2, end=3, extra={"file_id": None}),
        Citation("web_search_result_location", "w", url="https://e.com", title="E",
                 extra={"encrypted_index": "abc"})])], model="m", provider="claude")
    back = loads(dumps(CachedAnswer(answer)))
    assert back.response.parts == answer.parts
