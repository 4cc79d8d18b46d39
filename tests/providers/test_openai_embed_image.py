"""Embeddings (recorded, base64 float32) and images (published format) through the OpenAI adapter."""

from __future__ import annotations

import base64
import struct

import pytest

from cloverleaf._http import HttpResponse
from cloverleaf._types import EmbeddingRequest, ImageRequest
from tests.providers._openai_replay import PA_ROOT, adapter, config, interaction

EMB = f"{PA_ROOT}/cassettes/test_embeddings"
SYN = "../synthetic/openai"


def _floats(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_embeddings_batch_matches_recorded_request_and_vectors() -> None:
    path = f"{EMB}/TestOpenAI.test_documents.yaml"
    recorded = interaction(path)
    inputs = recorded.request_json["input"]
    req = EmbeddingRequest("text-embedding-3-small", inputs if isinstance(inputs, list) else [inputs])
    http = adapter("openai").build_embed(req, config("openai"))
    assert http.url == "https://api.openai.com/v1/embeddings"
    body = http.json()
    assert body == {**recorded.request_json, "input": req.inputs}
    resp = adapter("openai").parse_embed(recorded.response, req)
    data = recorded.response.json()["data"]
    assert len(resp.vectors) == len(data) == len(req.inputs)
    for vector, item in zip(resp.vectors, sorted(data, key=lambda d: d["index"]), strict=True):
        assert vector == pytest.approx(_floats(item["embedding"]))
    assert len(resp.vectors[0]) == 1536
    assert resp.usage.input_tokens == recorded.response.json()["usage"]["prompt_tokens"]
    assert resp.model == "text-embedding-3-small"


def test_embeddings_with_dimensions() -> None:
    path = f"{EMB}/TestOpenAI.test_instrumentation.yaml"
    recorded = interaction(path)
    dims = recorded.request_json["dimensions"]
    inputs = recorded.request_json["input"]
    req = EmbeddingRequest("text-embedding-3-small", inputs if isinstance(inputs, list) else [inputs], dimensions=dims)
    assert adapter("openai").build_embed(req, config("openai")).json()["dimensions"] == dims
    resp = adapter("openai").parse_embed(recorded.response, req)
    assert [len(v) for v in resp.vectors] == [dims] * len(req.inputs)


def test_embeddings_float_lists_out_of_order_are_put_in_input_order() -> None:
    body = (b'{"object":"list","model":"e","data":[{"index":1,"embedding":[2.0,2.5]},'
            b'{"index":0,"embedding":[1.0,1.5]}],"usage":{"prompt_tokens":4,"total_tokens":4}}')
    resp = adapter("together").parse_embed(HttpResponse(200, {}, body), EmbeddingRequest("e", ["a", "b"]))
    assert resp.vectors == [[1.0, 1.5], [2.0, 2.5]] and resp.usage.input_tokens == 4
    # compatible servers are asked for plain floats (not every one implements base64)
    assert "encoding_format" not in adapter("together").build_embed(EmbeddingRequest("e", ["a"]), config("together")).json()


def test_dall_e_3_url_and_revised_prompt() -> None:
    recorded = interaction(f"{SYN}/images_dall_e_3_url.yaml")
    req = ImageRequest("dall-e-3", "a cute baby sea otter", size="1024x1024", response_format="url")
    http = adapter("openai").build_image(req, config("openai"))
    assert http.url == "https://api.openai.com/v1/images/generations"
    assert http.json() == recorded.request_json
    resp = adapter("openai").parse_image(recorded.response, req)
    [img] = resp.images
    assert img.url == recorded.response.json()["data"][0]["url"] and img.data is None
    assert img.revised_prompt == "A cute baby sea otter floating on its back in calm water."


def test_gpt_image_1_b64_and_usage() -> None:
    recorded = interaction(f"{SYN}/images_gpt_image_1_b64.yaml")
    req = ImageRequest("gpt-image-1", "a cute baby sea otter", n=2, size="1024x1024", response_format="b64_json")
    built = adapter("openai").build_image(req, config("openai")).json()
    assert built == recorded.request_json  # response_format is not sent: GPT image models reject it
    resp = adapter("openai").parse_image(recorded.response, req)
    assert len(resp.images) == 2
    assert resp.images[0].data is not None and resp.images[0].data.startswith(b"\x89PNG")
    assert resp.images[0].media_type == "image/png"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (50, 50)
