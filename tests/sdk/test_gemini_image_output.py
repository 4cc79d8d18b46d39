"""Gemini's image models bill the images they answer with at an image output rate many times
their text and thinking rate (Gemini 3 Pro Image: $120/M against $12; 3.1 Flash Image: $60/M
against $3), and ``usageMetadata.candidatesTokensDetails`` says which output tokens were images.
The split was read nowhere and the Gemini 3 image models had no price: a chat call through them
cost None (a budget charged it its whole reservation, or refused it), and their image generations
had no image price at all."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cloverleaf import Client
from cloverleaf._config import Settings
from cloverleaf._image_price_config import image_price
from cloverleaf._image_pricing import lookup_image
from cloverleaf._pricing import ModelPrice, lookup
from cloverleaf._types import ImageRequest
from cloverleaf.providers.gemini.stream import usage_from
from tests.wire import cassette

from .upstream import Reply, Upstream

PNG = b"\x89PNG\r\n\x1a\nfake"
SSE = {"content-type": "text/event-stream"}
#: An answer's usage in the shape Gemini 3 Pro Image sends it: one 1K image (1,120 tokens), a line of
#: text and its thinking, which Google bills at the text rate.
MIXED_USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 1_240, "thoughtsTokenCount": 300,
               "totalTokenCount": 1_552, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
               "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 120},
                                           {"modality": "IMAGE", "tokenCount": 1_120}]}
#: 12 in at $2, 420 text and thinking out at $12, 1,120 image tokens out at $120
MIXED_COST = (12 * 2.0 + 420 * 12.0 + 1_120 * 120.0) / 1e6


def image_answer(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    parts = [{"text": "Here is your lighthouse."},
             {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}]
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model}


def client() -> Client:
    return Client(Settings.load(env={"GEMINI_API_KEY": "k"}), max_retries=0)


def test_the_recorded_image_answers_usage_says_which_output_tokens_were_images() -> None:
    """A recorded Vertex answer of gemini-2.5-flash-image: its 1,290 output tokens are one image."""
    recorded = cassette("pydantic-ai/tests/models/cassettes/test_google/"
                        "test_google_vertexai_image_generation_with_output_format.yaml")[0].response
    usage = usage_from(recorded.json()["usageMetadata"])
    assert (usage.output_tokens, usage.image_output_tokens) == (1_290, 1_290)
    assert lookup("vertex", "gemini-2.5-flash-image").cost(usage) == pytest.approx((9 * 0.3 + 1_290 * 30.0) / 1e6)  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["gemini-3-pro-image-preview", "gemini-3-pro-image"])
def test_a_chat_answer_bills_its_images_at_the_image_rate_and_the_rest_at_the_text_rate(
        upstream: Upstream, model: str) -> None:
    answer = image_answer(model, MIXED_USAGE)
    chunks = "".join(f"data: {json.dumps(c)}\n\n" for c in (
        {"candidates": [{"content": {"role": "model", "parts": [answer["candidates"][0]["content"]["parts"][0]]},
                         "index": 0}], "modelVersion": model},
        {**answer, "candidates": [{**answer["candidates"][0],
                                   "content": {"role": "model", "parts": answer["candidates"][0]["content"]["parts"][1:]}}]}))
    upstream.queue(Reply(body=json.dumps(answer).encode()), Reply(headers=SSE, body=chunks.encode()))
    with client() as c:
        whole = c.chat(f"gemini/{model}", "a lighthouse", base_url=f"{upstream.url}/v1beta")
        streamed = c.stream(f"gemini/{model}", "a lighthouse", base_url=f"{upstream.url}/v1beta")
        streamed.until_done()
    for r in (whole, streamed.response):
        assert (r.usage.output_tokens, r.usage.image_output_tokens) == (1_540, 1_120)
        assert r.cost == pytest.approx(MIXED_COST)


def test_a_budget_bounds_every_output_token_at_the_image_rate() -> None:
    """A chat call's output may be all image: its bound is at the dearest output rate."""
    assert lookup("gemini", "gemini-3-pro-image-preview").bound_rates(1_000) == (2.0, 120.0)  # type: ignore[union-attr]
    assert lookup("vertex", "gemini-3.1-flash-image").bound_rates(1_000) == (0.5, 60.0)  # type: ignore[union-attr]
    assert lookup("gemini", "gemini-3.1-flash-image-preview").scaled(2.0).image_output == 120.0  # type: ignore[union-attr]


def test_an_entrys_own_rates_keep_the_image_rate_in_proportion_and_rates_without_one_leave_it_unpriced() -> None:
    used = usage_from(MIXED_USAGE)
    half = ModelPrice.per_1k(0.001, 0.006, like=lookup("gemini", "gemini-3-pro-image"))
    assert half.image_output == 60.0
    assert half.cost(used) == pytest.approx((12 * 1.0 + 420 * 6.0 + 1_120 * 60.0) / 1e6)
    assert ModelPrice.per_1k(0.002, 0.012).cost(used) is None   # no image rate: never the text rate


@pytest.mark.parametrize("model", ["gemini/gemini-3-pro-image-preview", "vertex/gemini-3-pro-image"])
def test_an_image_generation_bills_images_and_text_apart_and_reserves_the_largest_image(model: str) -> None:
    price = lookup_image(*model.split("/"))
    assert price is not None
    req = ImageRequest(model.split("/")[1], "a lighthouse", n=2, size="1024x1024")
    # 2,000 tokens is a 4K image, which extra_body's imageSize can ask for whatever the size says
    assert price.bound(req, 100) == pytest.approx((100 * 2.0 + 2 * 2_000 * 120.0) / 1e6)
    flash = lookup_image("gemini", "gemini-3.1-flash-image-preview")
    assert flash is not None and flash.bound(ImageRequest("m", "x"), 0) == pytest.approx(2_520 * 60.0 / 1e6)


def test_a_generated_image_bills_its_thinking_at_the_text_rate(upstream: Upstream) -> None:
    answer = image_answer("gemini-3-pro-image-preview", MIXED_USAGE)
    without_split = {k: v for k, v in MIXED_USAGE.items() if k != "candidatesTokensDetails"}
    upstream.queue(Reply(body=json.dumps(answer).encode()),
                   Reply(body=json.dumps(image_answer("gemini-3-pro-image-preview", without_split)).encode()))
    with client() as c:
        split = c.generate_image("gemini/gemini-3-pro-image-preview", "a lighthouse",
                                 base_url=f"{upstream.url}/v1beta")
        unsplit = c.generate_image("gemini/gemini-3-pro-image-preview", "a lighthouse",
                                   base_url=f"{upstream.url}/v1beta")
    assert split.usage.image_output_tokens == 1_120
    assert split.cost == pytest.approx(MIXED_COST)
    # an answer that does not say which tokens were images bills them all at the image rate
    assert unsplit.cost == pytest.approx((12 * 2.0 + 1_540 * 120.0) / 1e6)


def test_an_entrys_image_price_may_give_the_text_output_rate() -> None:
    from cloverleaf._errors import ConfigError

    own = image_price("[[models]] x", {"text_input": 1.0, "output": 100.0, "text_output": 10.0, "output_tokens": 2000})
    assert own.text_output == 10.0
    with pytest.raises(ConfigError, match="text_output goes with output"):
        image_price("[[models]] x", {"per_image": 0.1, "text_output": 10.0})
