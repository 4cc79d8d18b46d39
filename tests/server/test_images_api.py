"""``/v1/images/*`` as the official openai SDK uses it, against an OpenAI-shaped upstream that
answers as OpenAI's Images API does: the Images API's own settings reach OpenAI, the answer
says what the bytes are and what the call used, and the routes the gateway lacks say so."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from cloverleaf._config import ModelEntry

from ..sdk.upstream import Reply, Upstream
from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import sign_in

JPEG = b"\xff\xd8\xff\xe0fake jpeg"
#: gpt-image-1's answer: bytes only, the format and background it made, usage in image tokens
GPT_IMAGE_ANSWER = {"created": 1, "background": "transparent", "output_format": "jpeg", "quality": "high",
                    "size": "1024x1024", "data": [{"b64_json": base64.b64encode(JPEG).decode()}],
                    "usage": {"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172,
                              "input_tokens_details": {"text_tokens": 12, "image_tokens": 0}}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    models = [ModelEntry(name=name, identifier=name, provider="openai", base_url=f"{upstream.url}/v1",
                         api_key="sk-test") for name in ("gpt-image-1", "dall-e-3")]
    server = start_live(settings(models=models))
    yield server
    stop_live(server)


def _sent(upstream: Upstream) -> dict[str, object]:
    body: dict[str, object] = json.loads(upstream.seen[-1].body)
    return body


def test_gpt_image_settings_reach_openai_and_the_answer_says_what_it_made(live: Live, upstream: Upstream) -> None:
    upstream.queue(Reply(body=json.dumps(GPT_IMAGE_ANSWER).encode()))
    result = live.openai().images.generate(model="gpt-image-1", prompt="a fox", quality="high", output_format="jpeg",
                                           background="transparent", output_compression=80, moderation="low")
    sent = _sent(upstream)
    assert (sent["output_format"], sent["background"], sent["output_compression"], sent["moderation"]) == \
        ("jpeg", "transparent", 80, "low")
    assert "response_format" not in sent   # gpt-image models refuse it
    assert base64.b64decode(result.data[0].b64_json or "") == JPEG
    assert result.output_format == "jpeg"
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (12, 4160, 4172)


def test_dall_e_3_style_reaches_openai(live: Live, upstream: Upstream) -> None:
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [
        {"url": "https://images.example/x.png", "revised_prompt": "a calm fox"}]}).encode()))
    result = live.openai().images.generate(model="dall-e-3", prompt="a fox", style="natural")
    assert _sent(upstream)["style"] == "natural"
    assert result.data[0].url == "https://images.example/x.png"
    assert result.usage is None   # dall-e bills per image and reports no tokens


def test_an_image_setting_of_no_known_value_is_a_400(live: Live, upstream: Upstream) -> None:
    before = len(upstream.seen)
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().images.generate(model="gpt-image-1", prompt="a fox", output_format="gif")  # type: ignore[arg-type]
    assert "output_format" in str(caught.value)
    assert len(upstream.seen) == before


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # the SDK marks create_variation deprecated
@pytest.mark.parametrize("call", ["edit", "create_variation"])
def test_image_edits_and_variations_say_they_are_not_served(live: Live, upstream: Upstream, call: str) -> None:
    """The SDK's multipart image routes: a 404 that says what is missing and what is served."""
    before = len(upstream.seen)
    kw = {"prompt": "add a hat"} if call == "edit" else {}
    with pytest.raises(openai.NotFoundError) as caught:
        getattr(live.openai().images, call)(model="dall-e-2", image=("fox.png", JPEG, "image/png"), **kw)
    message = str(caught.value)
    assert "not served by this gateway" in message and "POST /v1/images/generations" in message
    assert len(upstream.seen) == before
    # as bare HTTP too
    r = httpx.post(f"{live.url}/v1/images/{'edits' if call == 'edit' else 'variations'}",
                   files={"image": ("fox.png", JPEG)}, data={"model": "dall-e-2"})
    assert r.status_code == 404 and "not served by this gateway" in r.json()["error"]["message"]


#: Imagen's answer to a :predict call of four (its most a call), and its 500
IMAGEN_FOUR = {"predictions": [{"bytesBase64Encoded": base64.b64encode(b"\x89PNG\r\n\x1a\nfox").decode(),
                                "mimeType": "image/png"}] * 4}
IMAGEN_FAILED = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}


def test_a_split_image_call_half_failed_answers_what_was_made_says_so_and_bills_only_that(upstream: Upstream) -> None:
    """Imagen's n=8 is two :predict calls of four. When the second fails, the four images made are
    the answer, ``x-cloverleaf-incomplete`` says what failed (without the provider key), and the
    key's budget and the call record are charged the four made, not the eight reserved. The record
    says it is incomplete (it read as a whole "ok" call): ``error_type`` "Incomplete" and the note as
    its message, in the admin API's traces and on the dashboard's page of the call."""
    entry = ModelEntry(name="imagen", identifier="imagen-4.0-generate-001", provider="gemini",
                       base_url=f"{upstream.url}/v1beta", api_key="AIza-secret-imagen")
    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, models=[entry]))
    try:
        with live.http(MASTER) as http:
            key = http.post("/admin/keys", json={"name": "images", "budget": 1.0}).json()
        upstream.queue(Reply(body=json.dumps(IMAGEN_FOUR).encode()),
                       Reply(status=500, body=json.dumps(IMAGEN_FAILED).encode()))
        raw = live.openai(key["key"]).images.with_raw_response.generate(model="imagen", prompt="a fox", n=8)
        assert raw.status_code == 200 and len(raw.parse().data) == 4
        note = raw.headers["x-cloverleaf-incomplete"]
        assert note.startswith("4 of 8 images: this call was split into 2 requests and 1 failed"), note
        assert "Internal error encountered" in note and "AIza-secret-imagen" not in note
        live.state.backend.store.flush()
        with live.http(MASTER) as http:
            assert http.get(f"/admin/keys/{key['id']}").json()["spent"] == pytest.approx(4 * 0.04)
            [call] = http.get("/admin/traces", params={"limit": 1}).json()["data"]
            assert (call["status"], call["cost"]) == ("ok", pytest.approx(4 * 0.04))
            assert (call["error_type"], call["error_message"]) == ("Incomplete", note)
        dashboard = sign_in(live)
        try:
            assert "Incomplete" in dashboard.get("/ui/traces").text
            page = dashboard.get(f"/ui/traces/call/{call['id']}").text
            assert "Incomplete" in page and "4 of 8 images" in page and "AIza-secret-imagen" not in page
        finally:
            dashboard.close()
        upstream.queue(Reply(body=json.dumps(IMAGEN_FOUR).encode()))
        whole = live.openai(MASTER).images.with_raw_response.generate(model="imagen", prompt="a fox", n=4)
        assert "x-cloverleaf-incomplete" not in whole.headers   # only a call that lost images says so
        live.state.backend.store.flush()
        with live.http(MASTER) as http:
            [call] = http.get("/admin/traces", params={"limit": 1}).json()["data"]
            assert (call["status"], call["error_type"], call["error_message"]) == ("ok", None, None)
    finally:
        stop_live(live)
