"""Gemini embeddings (embedContent / batchEmbedContents) and image generation (image models'
generateContent answering with inlineData)."""

from __future__ import annotations

import base64
import json

import pytest

from cloverleaf._errors import ContentFilterError, InvalidRequestError, MalformedResponseError
from cloverleaf._http import HttpResponse
from cloverleaf._types import EmbeddingRequest, ImageRequest
from tests.providers.test_gemini_support import API, EMBED, GOOGLE, KEY, VERTEX, adapter, config
from tests.wire import cassette

# --------------------------------------------------------------------------- embeddings


def test_batch_request_matches_the_recording():
    it = cassette(EMBED + "TestGoogle.test_documents.yaml")[0]
    req = EmbeddingRequest("gemini-embedding-2-preview", ["hello", "world"], input_type="document")
    http = adapter().build_embed(req, config())
    assert http.url == f"{API}/v1beta/models/gemini-embedding-2-preview:batchEmbedContents" == it.uri
    assert http.json() == it.request_json
    assert http.headers["x-goog-api-key"] == KEY and KEY not in http.url


def test_dimensions_and_task_type():
    it = cassette(EMBED + "TestGoogle.test_query_with_dimensions.yaml")[0]
    req = EmbeddingRequest("gemini-embedding-2-preview", ["Hello, world!"], dimensions=768, input_type="query")
    body = adapter().build_embed(req, config()).json()
    # one text goes to embedContent: the same request object, not wrapped in "requests"
    assert body == it.request_json["requests"][0]
    assert adapter().build_embed(req, config()).url.endswith(":embedContent")
    vectors = adapter().parse_embed(it.response, EmbeddingRequest("m", ["Hello, world!"])).vectors
    assert len(vectors) == 1 and len(vectors[0]) == 768


def test_batch_response_vectors_in_order():
    it = cassette(EMBED + "TestGoogle.test_documents.yaml")[0]
    out = adapter().parse_embed(it.response, EmbeddingRequest("gemini-embedding-2-preview", ["hello", "world"]))
    raw = it.response.json()["embeddings"]
    assert [len(v) for v in out.vectors] == [3072, 3072]
    assert out.vectors[0][:3] == raw[0]["values"][:3] and out.vectors[1][:3] == raw[1]["values"][:3]
    assert out.provider == "gemini" and out.model == "gemini-embedding-2-preview"


def test_single_embed_content_response_with_usage():
    it = cassette(EMBED + "test_google_task_prefix_vertex.yaml")[0]
    out = adapter().parse_embed(it.response, EmbeddingRequest("gemini-embedding-2", ["Hello, world!"]))
    assert len(out.vectors) == 1 and len(out.vectors[0]) == 3072
    assert out.usage.input_tokens == 11


def test_a_batch_answer_without_usage_metadata_has_unknown_usage():
    """The Gemini Developer API's batchEmbedContents reports no usageMetadata: unknown, not zero
    tokens (a priced embedding model would otherwise cost a made-up $0)."""
    it = cassette(EMBED + "TestGoogle.test_documents.yaml")[0]
    assert "usageMetadata" not in it.response.json()
    out = adapter().parse_embed(it.response, EmbeddingRequest("gemini-embedding-2-preview", ["hello", "world"]))
    assert out.usage.reported is False
    vertex = cassette(EMBED + "test_google_task_prefix_vertex.yaml")[0]
    assert adapter().parse_embed(vertex.response, EmbeddingRequest("m", ["Hello, world!"])).usage.reported is True


def test_task_type_names_and_unknown_input_type():
    body = adapter().build_embed(EmbeddingRequest("m", ["a"], input_type="SEMANTIC_SIMILARITY"), config()).json()
    assert body["taskType"] == "SEMANTIC_SIMILARITY"
    with pytest.raises(InvalidRequestError, match="input_type"):
        adapter().build_embed(EmbeddingRequest("m", ["a"], input_type="poetry"), config())


def test_more_than_100_inputs_are_batched_and_joined_in_order():
    req = EmbeddingRequest("gemini-embedding-001", [f"text {i}" for i in range(250)])
    built = adapter().build_embed(req, config())
    assert isinstance(built, list) and [len(b.json()["requests"]) for b in built] == [100, 100, 50]
    assert built[2].json()["requests"][-1]["content"]["parts"][0]["text"] == "text 249"
    responses = [HttpResponse(200, {}, json.dumps({"embeddings": [
        {"values": [float(i)]} for i in range(start, start + len(b.json()["requests"]))]}).encode())
        for start, b in zip((0, 100, 200), built, strict=True)]
    out = adapter().parse_embed(responses, req)
    assert [v[0] for v in out.vectors] == [float(i) for i in range(250)]


def test_vector_count_mismatch_is_malformed():
    it = cassette(EMBED + "TestGoogle.test_documents.yaml")[0]
    with pytest.raises(MalformedResponseError):
        adapter().parse_embed(it.response, EmbeddingRequest("m", ["only one"]))


# --------------------------------------------------------------------------- images

IMAGE = GOOGLE + "test_google_vertexai_image_generation_with_output_format.yaml"


def test_image_request():
    recorded = cassette(IMAGE)[0]
    http = adapter().build_image(ImageRequest("gemini-2.5-flash-image", "Generate an image of an axolotl.",
                                              size="16:9"), config(VERTEX))
    assert http.url == recorded.uri
    body = http.json()
    assert body["contents"] == recorded.request_json["contents"]
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}
    with pytest.raises(InvalidRequestError):
        adapter().build_image(ImageRequest("m", "x", size="huge"), config())


def test_several_images_are_several_calls():
    it = cassette(IMAGE)[0]
    built = adapter().build_image(ImageRequest("gemini-2.5-flash-image", "axolotl", n=2), config(VERTEX))
    assert isinstance(built, list) and len(built) == 2
    out = adapter().parse_image([it.response, it.response], ImageRequest("gemini-2.5-flash-image", "axolotl", n=2))
    assert len(out.images) == 2 and out.usage.output_tokens == 2 * 1290


def test_image_response():
    it = cassette(IMAGE)[0]
    out = adapter().parse_image(it.response, ImageRequest("gemini-2.5-flash-image", "axolotl"))
    [image] = out.images
    raw = it.response.json()["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert image.media_type == "image/jpeg" == raw["mimeType"]
    assert image.data == base64.b64decode(raw["data"]) and image.data[:3] == b"\xff\xd8\xff"
    assert out.model == "gemini-2.5-flash-image" and out.usage.output_tokens == 1290


def test_image_response_without_image_is_malformed():
    body = b'{"candidates":[{"content":{"parts":[{"text":"I cannot draw that."}]},"finishReason":"STOP"}]}'
    with pytest.raises(MalformedResponseError, match="I cannot draw that"):
        adapter().parse_image(HttpResponse(200, {}, body), ImageRequest("m", "x"))


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY"])
def test_an_image_the_filter_stopped_is_a_content_filter_error(reason: str):
    """Gemini answers 200 with no image part and a filter's finishReason: the prompt's matter (a
    400 through the server, saying which filter), not a "malformed response" 502."""
    body = json.dumps({"candidates": [{"content": {"role": "model"}, "finishReason": reason,
                                       "finishMessage": "Unable to show the generated image."}],
                       "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}).encode()
    with pytest.raises(ContentFilterError, match=reason) as info:
        adapter().parse_image(HttpResponse(200, {}, body), ImageRequest("gemini-2.5-flash-image", "x"))
    assert info.value.code == reason and "Unable to show the generated image" in str(info.value)


def test_an_image_answer_without_image_names_geminis_reason():
    body = b'{"candidates":[{"content":{"role":"model"},"finishReason":"NO_IMAGE"}]}'
    with pytest.raises(MalformedResponseError, match="NO_IMAGE"):
        adapter().parse_image(HttpResponse(200, {}, body), ImageRequest("m", "x"))
