"""Bedrock InvokeModel: embeddings (Titan, Nova, Cohere) on recordings, images on published formats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._errors import ContentFilterError, InvalidRequestError, MalformedResponseError
from cloverleaf._http import HttpRequest, HttpResponse
from cloverleaf._types import EmbeddingRequest, ImageRequest, Usage
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.bedrock.invoke import aspect_ratio
from cloverleaf.providers.registry import get_spec
from tests.wire import cassette

ADAPTER = BedrockAdapter(get_spec("bedrock"))
CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="",
                     extra={"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"})
EMB = "pydantic-ai/tests/cassettes/test_embeddings/TestBedrock."
SYN = "../synthetic/bedrock/"


def as_list(built: HttpRequest | list[HttpRequest]) -> list[HttpRequest]:
    return built if isinstance(built, list) else [built]


def check_requests(req: EmbeddingRequest, name: str, cfg: ProviderConfig = CFG) -> list[HttpResponse]:
    """Our requests equal the recorded ones (URL and JSON body); returns the recorded responses."""
    inters = cassette(EMB + name + ".yaml")
    built = as_list(ADAPTER.build_embed(req, cfg))
    assert [b.url for b in built] == [i.uri for i in inters]
    assert [json.loads(b.body or b"") for b in built] == [i.request_json for i in inters]
    assert all(b.headers["authorization"].startswith("AWS4-HMAC-SHA256 ") for b in built)
    return [i.response for i in inters]


def test_titan_v1() -> None:
    req = EmbeddingRequest("amazon.titan-embed-text-v1", ["Hello, world!"])
    [resp] = check_requests(req, "test_titan_v1_minimal")
    out = ADAPTER.parse_embed(resp, req)
    assert len(out.vectors) == 1 and len(out.vectors[0]) == 1536
    assert out.vectors[0][:2] == resp.json()["embedding"][:2]
    assert out.usage.input_tokens == 4 and out.provider == "bedrock"


def test_titan_v2_batch_is_one_request_per_text() -> None:
    req = EmbeddingRequest("amazon.titan-embed-text-v2:0", ["hello", "world"])
    resps = check_requests(req, "test_titan_v2_multiple_texts")
    out = ADAPTER.parse_embed(resps, req)
    assert [len(v) for v in out.vectors] == [1024, 1024]
    assert out.vectors[1] == resps[1].json()["embedding"]
    assert out.usage.input_tokens == 4


def test_titan_v2_dimensions() -> None:
    req = EmbeddingRequest("amazon.titan-embed-text-v2:0", ["Test embedding dimensions"], dimensions=256)
    [resp] = check_requests(req, "test_titan_v2_with_dimensions")
    assert len(ADAPTER.parse_embed(resp, req).vectors[0]) == 256


def test_cohere_v3_input_type() -> None:
    req = EmbeddingRequest("cohere.embed-english-v3", ["Test input type setting"], input_type="classification",
                           extra_body={"truncate": "NONE"})
    [resp] = check_requests(req, "test_cohere_v3_with_input_type")
    out = ADAPTER.parse_embed(resp, req)
    assert len(out.vectors[0]) == 1024 and out.usage.input_tokens == 4


def test_an_embedding_bedrock_did_not_count_is_an_estimate_not_a_free_call() -> None:
    """Cohere's body carries no token count, and a response without Bedrock's
    x-amzn-bedrock-input-token-count header says nothing of what was billed: the usage is an
    estimate (``reported`` False, so its cost is unknown), never a reported 0 tokens at $0.00."""
    from cloverleaf._pricing import lookup

    text = "a long document " * 500
    req = EmbeddingRequest("cohere.embed-english-v3", [text])
    body = json.dumps({"id": "e", "response_type": "embeddings_floats", "texts": [text], "embeddings": [[0.1, 0.2]]})
    out = ADAPTER.parse_embed(HttpResponse(200, {}, body.encode()), req)
    assert out.usage.reported is False
    assert out.usage.input_tokens >= len(text) // 4
    price = lookup("bedrock", "cohere.embed-english-v3")
    assert price is not None and price.cost(out.usage) is None
    counted = HttpResponse(200, {"x-amzn-bedrock-input-token-count": "7"}, body.encode())
    assert ADAPTER.parse_embed(counted, req).usage == Usage(input_tokens=7)


def test_cohere_v4_batch_in_one_call() -> None:
    req = EmbeddingRequest("cohere.embed-v4:0", ["hello", "world"], input_type="document", extra_body={"truncate": "NONE"})
    [resp] = check_requests(req, "test_cohere_v4_batch_documents")
    out = ADAPTER.parse_embed(resp, req)
    assert [len(v) for v in out.vectors] == [1536, 1536]
    assert out.vectors[1] == resp.json()["embeddings"]["float"][1]


def test_nova_embeddings() -> None:
    req = EmbeddingRequest("amazon.nova-2-multimodal-embeddings-v1:0", ["Test Nova dimensions"], dimensions=256,
                           input_type="query")
    [resp] = check_requests(req, "test_nova_with_dimensions")
    out = ADAPTER.parse_embed(resp, req)
    assert len(out.vectors[0]) == 256 and out.usage.input_tokens == 18


def test_arn_needs_a_family_hint() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/otnfa2ysixqd"
    req = EmbeddingRequest(arn, ["Hello, world!"])
    with pytest.raises(InvalidRequestError, match="model_family"):
        ADAPTER.build_embed(req, CFG)
    cfg = ProviderConfig("bedrock", "bedrock", "", extra={**CFG.extra, "model_family": "titan"})
    [resp] = check_requests(req, "test_inference_profile_embed", cfg)
    assert len(ADAPTER.parse_embed(resp, req).vectors[0]) == 1024


def test_titan_multimodal_text_embeddings_in_its_own_shape() -> None:
    """Titan Multimodal Embeddings G1 takes no ``normalize`` or ``dimensions`` (Bedrock refuses
    extraneous keys): every text embedding there was sent them, a 400. Its size goes in
    ``embeddingConfig.outputEmbeddingLength``."""
    def bodies(req: EmbeddingRequest) -> list[dict[str, Any]]:
        return [json.loads(b.body or b"") for b in as_list(ADAPTER.build_embed(req, CFG))]

    assert bodies(EmbeddingRequest("amazon.titan-embed-image-v1", ["a red car", "a cat"])) == [
        {"inputText": "a red car"}, {"inputText": "a cat"}]
    assert bodies(EmbeddingRequest("amazon.titan-embed-image-v1", ["a red car"], dimensions=384)) == [
        {"inputText": "a red car", "embeddingConfig": {"outputEmbeddingLength": 384}}]


@pytest.mark.parametrize("model,dims,allowed", [
    ("amazon.titan-embed-text-v2:0", 768, "256, 512, 1024"),
    ("amazon.titan-embed-image-v1", 512, "256, 384, 1024"),
    ("amazon.titan-embed-text-v1", 256, "1536-dimension vectors only"),
    ("cohere.embed-english-v3", 512, "1024-dimension vectors only"),   # Bedrock: extraneous key [output_dimension]
])
def test_a_titan_size_the_model_cannot_give_is_a_400_naming_the_sizes_it_can(model: str, dims: int,
                                                                            allowed: str) -> None:
    """Text v1 returned 1536-dimension vectors for a caller who asked for 256 (the size was
    dropped), Cohere Embed v3 was sent output_dimension, which it refuses, and the others met
    Bedrock's enum error."""
    with pytest.raises(InvalidRequestError, match=allowed) as err:
        ADAPTER.build_embed(EmbeddingRequest(model, ["x"], dimensions=dims), CFG)
    assert err.value.status == 400


def test_cohere_batches_of_96() -> None:
    req = EmbeddingRequest("cohere.embed-english-v3", [f"t{i}" for i in range(100)])
    built = as_list(ADAPTER.build_embed(req, CFG))
    assert [len(json.loads(b.body or b"")["texts"]) for b in built] == [96, 4]
    assert json.loads(built[0].body or b"")["input_type"] == "search_document"


def test_vector_count_mismatch_is_malformed() -> None:
    req = EmbeddingRequest("amazon.titan-embed-text-v2:0", ["a", "b"])
    one = HttpResponse(200, {}, b'{"embedding": [0.1], "inputTextTokenCount": 1}')
    with pytest.raises(MalformedResponseError, match="1 vectors for 2 inputs"):
        ADAPTER.parse_embed([one], req)
    with pytest.raises(MalformedResponseError):
        ADAPTER.parse_embed(HttpResponse(200, {}, b'{"nothing": 1}'), EmbeddingRequest("amazon.titan-embed-text-v2:0", ["a"]))


def test_unknown_embedding_model() -> None:
    with pytest.raises(InvalidRequestError, match="not a Bedrock embedding model"):
        ADAPTER.build_embed(EmbeddingRequest("anthropic.claude-v2", ["x"]), CFG)


# --------------------------------------------------------------------------- images (synthetic)


def synthetic(name: str) -> tuple[dict[str, Any], str, HttpResponse]:
    [inter] = cassette(SYN + name)
    return inter.request_json, inter.uri, inter.response


def test_stability_image() -> None:
    body, uri, resp = synthetic("stability_image_ultra.yaml")  # published format, no recording exists
    cfg = ProviderConfig("bedrock", "bedrock", "", extra={**CFG.extra, "region": "us-west-2"})
    req = ImageRequest("stability.stable-image-ultra-v1:1", "A red square", size="1024x1024")
    built = ADAPTER.build_image(req, cfg)
    assert not isinstance(built, list)
    assert built.url == uri and json.loads(built.body or b"") == body
    out = ADAPTER.parse_image(resp, req)
    [image] = out.images
    assert image.data is not None and image.data.startswith(b"\x89PNG\r\n\x1a\n") and image.media_type == "image/png"


def test_stability_makes_one_image_per_call_and_sd3_needs_mode() -> None:
    built = as_list(ADAPTER.build_image(ImageRequest("stability.sd3-5-large-v1:0", "x", n=2, size="1792x1024",
                                                     extra_body={"seed": 7}), CFG))
    assert len(built) == 2
    assert json.loads(built[0].body or b"") == {"prompt": "x", "output_format": "png", "mode": "text-to-image",
                                                "aspect_ratio": "16:9", "seed": 7}


def test_titan_image() -> None:
    body, uri, resp = synthetic("titan_image_generator.yaml")  # published format, no recording exists
    req = ImageRequest("amazon.titan-image-generator-v2:0", "Two squares", n=2, quality="standard")
    built = ADAPTER.build_image(req, CFG)
    assert not isinstance(built, list)
    assert built.url == uri and json.loads(built.body or b"") == body
    out = ADAPTER.parse_image(resp, req)
    assert len(out.images) == 2 and out.images[0].data != out.images[1].data
    premium = json.loads(as_list(ADAPTER.build_image(ImageRequest("amazon.nova-canvas-v1:0", "x", size="1280x720",
                                                                  quality="hd"), CFG))[0].body or b"")
    assert premium["imageGenerationConfig"] == {"numberOfImages": 1, "width": 1280, "height": 720, "quality": "premium"}


def test_filtered_image_is_a_content_filter_error() -> None:
    req = ImageRequest("stability.stable-image-core-v1:1", "x")
    resp = HttpResponse(200, {}, b'{"seeds": [1], "finish_reasons": ["Filter reason: prompt"], "images": []}')
    with pytest.raises(ContentFilterError, match="Filter reason"):
        ADAPTER.parse_image(resp, req)


def test_image_request_errors() -> None:
    with pytest.raises(InvalidRequestError, match="inline"):
        ADAPTER.build_image(ImageRequest("stability.stable-image-core-v1:1", "x", response_format="url"), CFG)
    with pytest.raises(InvalidRequestError, match="1024x1024"):
        ADAPTER.build_image(ImageRequest("amazon.titan-image-generator-v1", "x", size="big"), CFG)
    with pytest.raises(InvalidRequestError, match="image model"):
        ADAPTER.build_image(ImageRequest("amazon.nova-pro-v1:0", "x"), CFG)


@pytest.mark.parametrize("size,ratio", [("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1792", "9:16"),
                                        ("1216x832", "3:2"), ("2560x1080", "21:9"), ("4:5", "4:5")])
def test_aspect_ratio(size: str, ratio: str) -> None:
    assert aspect_ratio(size) == ratio


def test_a_stability_call_its_filter_stopped_is_a_content_filter_not_a_malformed_answer() -> None:
    """Bedrock's documented answer for a filtered Stability call has no 'images' key at all."""
    req = ImageRequest("stability.sd3-5-large-v1:0", "x")
    with pytest.raises(ContentFilterError, match="Filter reason: prompt"):
        ADAPTER.parse_image(HttpResponse(200, {}, b'{"finish_reasons": ["Filter reason: prompt"]}'), req)


def test_an_image_stabilitys_output_filter_caught_is_not_returned() -> None:
    """One of two calls' image was caught by the output filter: only the other one comes back,
    and when every one was caught it is a content filter; an inference error is a failed call."""
    ok = HttpResponse(200, {}, b'{"seeds": [1], "finish_reasons": [null], "images": ["iVBORw0KGgo="]}')
    caught = HttpResponse(200, {}, b'{"seeds": [2], "finish_reasons": ["Filter reason: output image"], '
                                   b'"images": ["AAAA"]}')
    req = ImageRequest("stability.stable-image-ultra-v1:1", "x", n=2)
    out = ADAPTER.parse_image([ok, caught], req)
    assert [img.data for img in out.images] == [b"\x89PNG\r\n\x1a\n"]
    with pytest.raises(ContentFilterError, match="output image"):
        ADAPTER.parse_image([caught, caught], req)
    failed = HttpResponse(200, {}, b'{"seeds": [3], "finish_reasons": ["Inference error"], "images": []}')
    with pytest.raises(MalformedResponseError, match="Inference error"):
        ADAPTER.parse_image(failed, ImageRequest("stability.stable-image-core-v1:1", "x"))
