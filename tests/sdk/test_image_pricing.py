"""Image generation is priced (``data/prices.json`` ``images``, ``_image_pricing.py``): every image
model cost None, so its spend went unrecorded and a budget refused every image call as unpriced.
Each family bills its own way: gpt-image models by three kinds of tokens from the answer's usage,
DALL-E, Imagen, Nova Canvas, Titan Image and Stability per image made, by quality and size. A
budget reserves the most a request can cost before it is sent."""

from __future__ import annotations

import base64
import json

import pytest

from cloverleaf import Client
from cloverleaf._config import Settings
from cloverleaf._image_pricing import lookup_image, lookup_image_keys
from cloverleaf._types import GeneratedImage, ImageRequest, ImageResponse, Usage

from .upstream import Reply, Upstream

PNG = b"\x89PNG\r\n\x1a\nfake"


def _price(key: str):  # type: ignore[no-untyped-def]
    provider, _, model = key.partition("/")
    price = lookup_image(provider, model)   # through the adapter's price keys, as a resolved target
    assert price is not None, key
    return price


def _made(n: int, usage: Usage | None = None) -> ImageResponse:
    return ImageResponse([GeneratedImage(data=PNG) for _ in range(n)], "m", "p",
                         usage=usage if usage is not None else Usage(reported=False))


def test_gpt_image_bills_text_in_image_in_and_image_out_tokens_from_the_usage() -> None:
    gpt = _price("openai/gpt-image-1")
    used = Usage(input_tokens=50, output_tokens=4160, image_input_tokens=30)
    # 20 text tokens at $5/1M, 30 image tokens at $10/1M, 4,160 image tokens out at $40/1M
    assert gpt.cost(ImageRequest("gpt-image-1", "a fox", quality="high"), _made(1, used)) == \
        pytest.approx((20 * 5 + 30 * 10 + 4160 * 40) / 1e6)
    mini = _price("openai/gpt-image-1-mini")
    assert mini.cost(ImageRequest("m", "a fox"), _made(1, Usage(10, 1056))) == pytest.approx((10 * 2 + 1056 * 8) / 1e6)
    assert gpt.cost(ImageRequest("m", "a fox"), _made(1)) is None   # no usage reported: unknown, never 0


def test_gpt_image_reserves_the_most_output_tokens_openai_lists_for_its_quality_and_size() -> None:
    gpt = _price("openai/gpt-image-1")
    assert gpt.bound(ImageRequest("m", "x", quality="high", size="1024x1536"), 0) == pytest.approx(6240 * 40 / 1e6)
    assert gpt.bound(ImageRequest("m", "x", n=3, quality="low", size="1024x1024"), 100) == \
        pytest.approx((100 * 10 + 3 * 272 * 40) / 1e6)   # the prompt at the dearer input rate, n images
    # auto (or nothing said): the dearest it can bill
    assert gpt.bound(ImageRequest("m", "x", quality="auto", size="auto"), 0) == pytest.approx(6240 * 40 / 1e6)
    assert gpt.bound(ImageRequest("m", "x"), 0) == pytest.approx(6240 * 40 / 1e6)
    assert _price("openai/gpt-image-1-2025-04-15") is gpt   # a dated snapshot bills as its model


@pytest.mark.parametrize("quality,size,each", [
    (None, None, 0.04), ("standard", "1024x1024", 0.04), ("standard", "1792x1024", 0.08),
    ("hd", "1024x1024", 0.08), ("hd", "1024x1792", 0.12),
    ("auto", "1024x1024", 0.04)])   # auto is not sent: OpenAI makes its documented default, standard
def test_dall_e_3_bills_each_image_by_quality_and_size(quality: str | None, size: str | None, each: float) -> None:
    price = _price("openai/dall-e-3")
    req = ImageRequest("dall-e-3", "a fox", quality=quality, size=size)
    assert price.cost(req, _made(1)) == pytest.approx(each)
    assert price.bound(req, 10_000) == pytest.approx(each)   # per image: the prompt bills nothing


@pytest.mark.parametrize("size,each", [("256x256", 0.016), ("512x512", 0.018), ("1024x1024", 0.02), (None, 0.02)])
def test_dall_e_2_bills_by_size_for_the_images_returned(size: str | None, each: float) -> None:
    price = _price("azure/dall-e-2")   # an Azure deployment bills OpenAI's list price
    req = ImageRequest("dall-e-2", "a fox", n=4, size=size, quality="standard")
    assert price.bound(req, 0) == pytest.approx(4 * each)
    assert price.cost(req, _made(3)) == pytest.approx(3 * each)   # the images actually returned


@pytest.mark.parametrize("key,each", [
    ("gemini/imagen-4.0-generate-001", 0.04), ("gemini/imagen-4.0-fast-generate-001", 0.02),
    ("gemini/imagen-4.0-ultra-generate-001", 0.06), ("gemini/imagen-3.0-generate-002", 0.03),
    ("vertex/imagen-3.0-generate-002", 0.04), ("vertex/imagen-4.0-fast-generate-001", 0.02)])
def test_imagen_bills_per_image_whatever_its_size(key: str, each: float) -> None:
    price = _price(key)
    req = ImageRequest("imagen", "a fox", n=4, size="16:9")
    assert price.bound(req, 0) == pytest.approx(4 * each)
    assert price.cost(req, _made(2)) == pytest.approx(2 * each)   # two withheld by its filter: not billed


@pytest.mark.parametrize("quality,size,each", [
    (None, None, 0.04), ("standard", "1280x720", 0.04), ("premium", "1024x1024", 0.06), ("hd", "1024x1024", 0.06),
    ("high", "2048x2048", 0.08), ("standard", "1600x900", 0.06), ("low", "2048x2048", 0.06)])
def test_nova_canvas_bills_by_quality_and_pixels(quality: str | None, size: str | None, each: float) -> None:
    """The qualities as the adapter sends them: hd/high/premium are premium, anything else standard."""
    price = _price("bedrock/us.amazon.nova-canvas-v1:0")
    assert price.cost(ImageRequest("amazon.nova-canvas-v1:0", "x", quality=quality, size=size), _made(1)) == \
        pytest.approx(each)


def test_titan_image_and_stability_on_bedrock_bill_per_image() -> None:
    titan = _price("bedrock/amazon.titan-image-generator-v2:0")
    assert titan.cost(ImageRequest("m", "x", size="512x512"), _made(2)) == pytest.approx(0.016)
    assert titan.cost(ImageRequest("m", "x", quality="premium", size="768x768"), _made(1)) == pytest.approx(0.012)
    for model, each in (("stability.sd3-5-large-v1:0", 0.08), ("stability.stable-image-core-v1:1", 0.04),
                        ("stability.stable-image-ultra-v1:1", 0.14)):
        assert _price(f"bedrock/{model}").bound(ImageRequest(model, "x", n=2), 0) == pytest.approx(2 * each)


def test_an_image_model_the_table_does_not_list_has_no_price() -> None:
    assert lookup_image_keys(["openai/gpt-image-2"]) is None
    assert lookup_image_keys(["mylab/dall-e-3"]) is None   # a custom endpoint is not OpenAI's list price
    assert lookup_image_keys(["openai/gpt-4o"]) is None    # a chat model is no image model


def test_a_call_through_the_sdk_carries_its_cost(upstream: Upstream) -> None:
    """The engine prices what came back: gpt-image-1's usage, its image input tokens at their rate."""
    usage = {"input_tokens": 40, "output_tokens": 1056, "total_tokens": 1096,
             "input_tokens_details": {"text_tokens": 10, "image_tokens": 30}}
    upstream.queue(Reply(body=json.dumps({"created": 1, "usage": usage,
                                          "data": [{"b64_json": base64.b64encode(PNG).decode()}]}).encode()))
    settings = Settings(env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{upstream.url}/v1"})
    with Client(settings) as client:
        out = client.generate_image("openai/gpt-image-1", "a fox", quality="medium")
    assert out.usage.image_input_tokens == 30
    assert out.cost == pytest.approx((10 * 5 + 30 * 10 + 1056 * 40) / 1e6)


def test_dall_e_3_asked_for_auto_quality_is_billed_as_the_standard_image_it_makes(upstream: Upstream) -> None:
    """quality="auto" was sent on and billed as hd ($0.08), the dearest reading, though OpenAI documents
    standard as dall-e-3's default: auto is now left unsent, so OpenAI makes standard, billed $0.04."""
    for quality in ("auto", None):
        upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]})
                             .encode()))
        settings = Settings(env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{upstream.url}/v1"})
        with Client(settings) as client:
            out = client.generate_image("openai/dall-e-3", "a fox", quality=quality)
        assert "quality" not in upstream.seen[-1].json()
        assert out.cost == pytest.approx(0.04)


@pytest.mark.parametrize("model", ["gemini-2.5-flash-image", "gemini-2.5-flash-image-preview",
                                   "gemini-2.5-flash-image-preview-09-2025"])
def test_gemini_flash_image_bills_its_image_output_tokens(model: str) -> None:
    """gemini-2.5-flash-image had no image price: a budget refused it, its spend went unrecorded. Google
    bills $0.30/1M input and $30/1M output, 1,290 output tokens an image ($0.039)."""
    price = _price(f"gemini/{model}")
    assert price.bound(ImageRequest(model, "x", n=2), 100) == pytest.approx((100 * 0.3 + 2 * 1290 * 30) / 1e6)
    assert price.cost(ImageRequest(model, "x"), _made(1, Usage(12, 1290))) == \
        pytest.approx((12 * 0.3 + 1290 * 30) / 1e6)
    assert _price(f"vertex/{model}").bound(ImageRequest(model, "x"), 0) == pytest.approx(0.0387)


@pytest.mark.parametrize("model,each", [("imagen-4.0-generate-preview-06-06", 0.04),
                                        ("imagen-4.0-ultra-generate-preview-06-06", 0.06),
                                        ("imagen-4.0-fast-generate-preview-06-06", 0.02)])
def test_imagen_4_preview_names_bill_as_their_released_models(model: str, each: float) -> None:
    assert _price(f"gemini/{model}").bound(ImageRequest(model, "x", n=3), 0) == pytest.approx(3 * each)
