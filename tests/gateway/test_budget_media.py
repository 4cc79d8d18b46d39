"""Budgets hold for images and PDFs: their reservation is an upper bound at every target.

Every image used to reserve 6,400 tokens, but gpt-4o-mini bills a high-detail image up to
48,169 (2,833 + 5,667 a tile, 8 tiles): 20 concurrent calls with one image each against a
$0.10 budget spent several times the limit. A PDF whose bytes were in hand reserved its byte
count, but providers bill it by the page: a 24 kB, 300-page PDF reserved 24k tokens and billed
some 750k. Now an image is bounded by the target model's own rule, a PDF by its pages, and
each attachment at most by the target's context window.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from typing import Any

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf._errors import BudgetExceeded
from cloverleaf._types import Attachment, ChatRequest, Message, Text
from cloverleaf.gateway import SystemClock
from cloverleaf.gateway.estimate import PDF_PAGE_TEXT_TOKENS, input_token_bound, prompt_bound
from cloverleaf.gateway.image_bounds import UNKNOWN, rule_for
from cloverleaf.gateway.pdf_pages import page_count

from .conftest import Harness, chat_request, upstream

LIMIT = 0.10
MAX_TOKENS = 100
#: what gpt-4o-mini bills a 4000x3000 image at high detail, plus the question
MINI_IMAGE_TOKENS = 2_833 + 8 * 5_667


def png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR for ``width`` x ``height`` (what the provider would size it by)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 1_000


def pdf(pages: int, compressed: bool = False) -> bytes:
    """A minimal PDF of ``pages`` blank pages: the page objects in the file, or (PDF 1.5+) in a
    Flate-compressed object stream, where a byte scan for ``/Type /Page`` cannot see them."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"
    out = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    if compressed:
        body = zlib.compress(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >> " % pages + page * pages)
        out += (b"5000 0 obj\n<< /Type /ObjStm /N %d /First 0 /Filter /FlateDecode /Length %d >>\nstream\n"
                % (pages + 1, len(body)) + body + b"\nendstream\nendobj\n")
    else:
        out += b"2 0 obj\n<< /Type /Pages /Kids [" + kids + b"] /Count %d >>\nendobj\n" % pages
        out += b"".join(b"%d 0 obj\n" % (3 + i) + page + b"\nendobj\n" for i in range(pages))
    return out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def with_parts(*parts: Any, **options: Any) -> ChatRequest:
    return ChatRequest(model="", messages=[Message.user(list(parts))], **options)


def test_an_image_is_bounded_by_the_target_models_own_rule() -> None:
    bare = input_token_bound(chat_request("look"))
    assert bare is not None
    image = with_parts(Attachment(data=png(4000, 3000), type="image", media_type="image/png"), Text("look"))
    by_model = {model: (input_token_bound(image, model) or 0) - bare
                for model in ("gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4.1-nano", "o4-mini",
                              "anthropic.claude-sonnet-4-5-20250929-v1:0", "gemini-2.5-flash", "my-deployment")}
    assert by_model["gpt-4o-mini-2024-07-18"] >= MINI_IMAGE_TOKENS          # not 6,400
    assert by_model["gpt-4o"] >= 85 + 8 * 170
    assert by_model["gpt-4.1-nano"] >= 1_536 * 2.46 and by_model["o4-mini"] >= 1_536 * 1.72
    assert by_model["anthropic.claude-sonnet-4-5-20250929-v1:0"] >= 1_600
    assert by_model["gemini-2.5-flash"] >= 16 * 258
    assert by_model["my-deployment"] == max(by_model.values())               # unknown: the largest rule
    assert by_model["gpt-4o"] < by_model["gemini-2.5-flash"] < by_model["my-deployment"]


def test_low_detail_lowers_the_bound_only_where_the_provider_bills_it_less() -> None:
    def image_tokens(detail: Any, model: str) -> int:
        found = prompt_bound(with_parts(Attachment("https://example.com/cat.png", fetch="provider",
                                                   detail=detail)))
        return (found.at(model, None) or 0) - found.base

    assert image_tokens("low", "gpt-4o-mini") == 2_833 and image_tokens("high", "gpt-4o-mini") == MINI_IMAGE_TOKENS
    assert image_tokens(None, "gpt-4o-mini") == image_tokens("auto", "gpt-4o-mini") == MINI_IMAGE_TOKENS
    assert image_tokens("low", "gpt-4o") == 85
    assert image_tokens("low", "gpt-4.1-mini") == image_tokens("high", "gpt-4.1-mini")   # patches: no discount
    assert image_tokens("low", "some-local-model") == UNKNOWN.most


def test_each_attachment_is_capped_by_the_context_window() -> None:
    found = prompt_bound(with_parts(Attachment(data=png(4000, 3000)), Attachment(data=pdf(300))))
    assert found.at("gpt-4o-mini", 16_000) == found.base + 2 * 16_000
    assert (found.at("gpt-4o-mini", None) or 0) > found.base + MINI_IMAGE_TOKENS + 300 * PDF_PAGE_TEXT_TOKENS


async def test_concurrent_image_calls_to_gpt_4o_mini_never_overspend(harness: Harness) -> None:
    """Each call reserved 6,400 tokens for an image gpt-4o-mini bills 48,169 for: 20 of them
    at once against $0.10 spent several times the limit. Now each reserves what it can bill."""
    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/gpt-4o-mini"]}},
                         budgets={"r": {"limit_usd": LIMIT}})
    usage = {"input_tokens": MINI_IMAGE_TOKENS + 20, "output_tokens": MAX_TOKENS}
    upstream(gw).script.reply(text="a cat", usage=usage, times=20)
    image = Attachment(data=png(4000, 3000), type="image", media_type="image/png")

    async def one() -> bool:
        try:
            await gw.achat("r", with_parts(image, Text("what is this?"), max_tokens=MAX_TOKENS))
            return True
        except BudgetExceeded:
            return False

    ok = sum(await asyncio.gather(*(one() for _ in range(20))))
    spent, reserved = await gw.state.budget_usage("route:r|total") or (0.0, 0.0)
    assert ok == len(upstream(gw).requests) >= 1 and reserved == pytest.approx(0.0)
    assert spent == pytest.approx(ok * ((MINI_IMAGE_TOKENS + 20) * 1 + MAX_TOKENS * 2) / 1e6)
    assert spent <= LIMIT                                                     # 0 overspend


def test_pdf_pages_are_counted_in_the_file_and_in_object_streams() -> None:
    assert page_count(pdf(1)) == 1 and page_count(pdf(300)) == 300
    assert page_count(pdf(120, compressed=True)) == 120
    assert page_count(b"%PDF-1.7\n" + b"x" * 10_000) is None                 # nothing to count
    broken = pdf(3, compressed=True).replace(b"/FlateDecode", b"/LZWDecode")
    assert page_count(broken) is None                                         # pages it cannot read


@pytest.mark.parametrize("compressed", [False, True])
def test_a_pdf_in_hand_is_bounded_by_its_pages_not_its_bytes(compressed: bool) -> None:
    doc = pdf(300, compressed)
    assert len(doc) < 30_000                     # the old bound: its byte count
    for att in (Attachment(data=doc), Attachment("data:application/pdf;base64," + base64.b64encode(doc).decode()),
                Attachment(base64.b64encode(doc).decode(), type="pdf")):
        found = prompt_bound(with_parts(att))
        for model in ("claude-sonnet-4-5", "gpt-4o", "gemini-2.5-pro"):
            tokens = (found.at(model, None) or 0) - found.base
            assert tokens >= 300 * (PDF_PAGE_TEXT_TOKENS + rule_for(model).pdf_page()) > 300 * 258


async def test_a_many_page_small_pdf_reserves_its_pages(harness: Harness, tmp_path: Any) -> None:
    """A 300-page PDF of 24 kB bills some 750k tokens (2,500 a page): it reserved 24k, so one
    call could spend $0.75 under a $0.50 budget. Now it reserves its pages — here the model's
    whole 1M-token window, the most it can bill — and the budget refuses it before it is sent."""
    doc = tmp_path / "report.pdf"
    doc.write_bytes(pdf(300))
    gw = harness.gateway(routes={"r": {"targets": ["doc-model"]}}, budgets={"r": {"limit_usd": 0.50}},
                         models=[ModelEntry(name="doc-model", identifier="echo", provider="fake",
                                            context_window=1_000_000)])
    upstream(gw).script.reply(text="a summary", usage={"input_tokens": 750_000, "output_tokens": 100})
    for source in (doc.read_bytes(), str(doc)):
        with pytest.raises(BudgetExceeded) as over:
            await gw.achat("r", with_parts(Attachment(source, type="pdf"), Text("Summarise"), max_tokens=100))
        assert over.value.requested == pytest.approx(((prompt_bound(with_parts(Text("Summarise"))).base
                                                       + 1_000_000) * 2 + 100 * 2) / 1e6, rel=1e-3)
    assert upstream(gw).requests == []
    spent, _ = await gw.state.budget_usage("route:r|total") or (0.0, 0.0)
    assert spent == 0.0
