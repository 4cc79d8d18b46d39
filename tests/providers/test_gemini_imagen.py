"""Imagen through the Client: ``:predict`` as Google's API takes it, against a mock that refuses
what Google refuses (an Imagen model at ``generateContent``, more than four samples a call, an
aspect ratio Imagen has not) and withholds what its safety filter would."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloverleaf import Client
from cloverleaf._errors import ContentFilterError, InvalidRequestError
from cloverleaf._types import ImageRequest
from tests.providers.test_gemini_support import KEY, VERTEX, adapter, config

PNG = b"\x89PNG\r\n\x1a\nimagen"


def _google_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}})


def imagen_api(request: httpx.Request, *, withhold: int = 0) -> httpx.Response:
    """Imagen as the Gemini API serves it; ``withhold`` images of each call the filter keeps back."""
    model, _, method = request.url.path.rpartition("/models/")[2].partition(":")
    if method != "predict":
        return _google_error(400, f"models/{model} is not supported for {method}. Call ListModels to see the "
                                  "list of available models and their supported methods.")
    body = json.loads(request.content)
    params = body.get("parameters", {})
    count = params.get("sampleCount", 4)
    if not 1 <= count <= 4:
        return _google_error(400, "Number of images must be between 1 and 4")
    if params.get("aspectRatio", "1:1") not in ("1:1", "3:4", "4:3", "9:16", "16:9"):
        return _google_error(400, "Unsupported aspect ratio")
    if [list(i) for i in body["instances"]] != [["prompt"]]:
        return _google_error(400, "Invalid JSON payload: instances[0] takes a prompt")
    made = [{"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"}] * (count - withhold)
    kept = [{"raiFilteredReason": "Unable to show generated images. (58061214)"}] * withhold
    if not params.get("includeRaiReason"):
        kept = []   # without includeRaiReason, a withheld image is left out, unexplained
    return httpx.Response(200, json={"predictions": made + kept} if made or kept else {})


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


def _client(sent: list[httpx.Request], withhold: int = 0) -> Iterator[Client]:
    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return imagen_api(request, withhold=withhold)

    client = Client()
    client.engine.transport.mount("all://", httpx.MockTransport(upstream))
    yield client
    client.close()


@pytest.fixture
def client(sent: list[httpx.Request]) -> Iterator[Client]:
    yield from _client(sent)


def test_imagen_generates_through_predict(client: Client, sent: list[httpx.Request]) -> None:
    out = client.generate_image("gemini/imagen-4.0-generate-001", "a lighthouse at dusk", n=2, size="1792x1024",
                                api_key=KEY)
    assert [img.data for img in out.images] == [PNG, PNG]
    assert out.images[0].media_type == "image/png"
    [request] = sent
    assert request.url.path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert request.headers["x-goog-api-key"] == KEY
    body = json.loads(request.content)
    assert body == {"instances": [{"prompt": "a lighthouse at dusk"}],
                    "parameters": {"includeRaiReason": True, "aspectRatio": "16:9", "sampleCount": 2}}
    assert not out.usage.reported   # Imagen bills per image and reports no tokens:
    assert out.cost == 0.08         # its price is the images it made, $0.04 each


def test_more_than_four_images_are_several_calls(client: Client, sent: list[httpx.Request]) -> None:
    out = client.generate_image("gemini/imagen-3.0-generate-002", "a fox", n=6, api_key=KEY)
    assert len(out.images) == 6
    assert [json.loads(r.content)["parameters"]["sampleCount"] for r in sent] == [4, 2]


def test_a_size_imagen_has_no_ratio_for_is_a_400_before_sending(client: Client, sent: list[httpx.Request]) -> None:
    with pytest.raises(InvalidRequestError, match="1:1, 3:4, 4:3, 9:16, 16:9"):
        client.generate_image("gemini/imagen-4.0-generate-001", "a fox", size="3:2", api_key=KEY)
    assert sent == []


def test_every_image_withheld_is_a_content_filter_naming_the_reason(sent: list[httpx.Request]) -> None:
    for client in _client(sent, withhold=1):
        with pytest.raises(ContentFilterError, match="58061214"):
            client.generate_image("gemini/imagen-4.0-generate-001", "something it refuses", api_key=KEY)


def test_some_images_withheld_returns_those_made(sent: list[httpx.Request]) -> None:
    for client in _client(sent, withhold=1):
        out = client.generate_image("gemini/imagen-4.0-generate-001", "a crowd", n=3, api_key=KEY)
        assert len(out.images) == 2


def test_imagen_on_vertex_ai_is_the_publisher_models_predict() -> None:
    http = adapter().build_image(ImageRequest("imagen-4.0-generate-001", "a fox"), config(VERTEX))
    assert not isinstance(http, list)
    assert http.url == f"{VERTEX}/models/imagen-4.0-generate-001:predict"
    assert imagen_api(httpx.Request("POST", http.url, content=http.body)).status_code == 200


def _failing(counts: set[int], sent: list[httpx.Request]) -> httpx.MockTransport:
    """Imagen failing (a 500) each call that asks for one of ``counts`` images."""
    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if json.loads(request.content)["parameters"]["sampleCount"] in counts:
            return httpx.Response(500, json={"error": {"code": 500, "message": "Internal error encountered.",
                                                       "status": "INTERNAL"}})
        return imagen_api(request)

    return httpx.MockTransport(upstream)


@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_later_piece_failing_returns_the_images_made_billed_and_marked(sent: list[httpx.Request], run: str) -> None:
    """n=6 is a call of four and one of two: when the second failed, the whole call raised, and the
    four images Google had made (and billed) were lost, their cost recorded nowhere. They are
    returned, billed, and the answer says what failed."""
    import asyncio

    from cloverleaf import AsyncClient

    if run == "sync":
        with Client(max_retries=0) as client:
            client.engine.transport.mount("all://", _failing({2}, sent))
            out = client.generate_image("gemini/imagen-4.0-generate-001", "a fox", n=6, api_key=KEY)
    else:
        async def call() -> Any:
            async with AsyncClient(max_retries=0) as client:
                client.engine.transport.mount("all://", _failing({2}, sent))
                return await client.generate_image("gemini/imagen-4.0-generate-001", "a fox", n=6, api_key=KEY)
        out = asyncio.run(call())
    assert len(out.images) == 4 and out.cost == pytest.approx(4 * 0.04)
    assert out.incomplete is not None
    assert out.incomplete.startswith("4 of 6 images: this call was split into 2 requests and 1 failed")
    assert "Internal error encountered" in out.incomplete and KEY not in out.incomplete


def test_a_split_call_whose_every_piece_fails_raises(sent: list[httpx.Request]) -> None:
    from cloverleaf._errors import ServerError

    with Client(max_retries=0) as client, pytest.raises(ServerError, match="Internal error encountered"):
        client.engine.transport.mount("all://", _failing({4, 2}, sent))
        client.generate_image("gemini/imagen-4.0-generate-001", "a fox", n=6, api_key=KEY)
    assert len(sent) == 1   # the failing upstream is not sent the rest
