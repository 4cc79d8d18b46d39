"""An image call under a virtual key's budget, through the official openai SDK: every image model
had no price, so a budgeted key was refused every image (402 ``budget_unpriced``) and an unbudgeted
one spent unrecorded. Now the budget reserves the most the request can cost, the call is recorded
at what the images cost, and once the budget is spent the next image is refused before it is sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from cloverleaf._config import ModelEntry

from ..sdk.upstream import Reply, Upstream
from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

PNG = b"\x89PNG\r\n\x1a\nfake"
DALL_E_ANSWER = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode(), "revised_prompt": "a fox"}]}
#: gpt-image-1, low quality, 1024x1024: 12 text tokens in, 272 image tokens out
GPT_IMAGE_ANSWER = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}],
                    "usage": {"input_tokens": 12, "output_tokens": 272, "total_tokens": 284,
                              "input_tokens_details": {"text_tokens": 12, "image_tokens": 0}}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    models = [ModelEntry(name=name, identifier=name, provider="openai", base_url=f"{upstream.url}/v1",
                         api_key="sk-test") for name in ("gpt-image-1", "dall-e-3", "gpt-image-2")]
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, models=models))
    yield server
    stop_live(server)


def _spent(live: Live, key_id: str) -> tuple[float, float, list[float | None]]:
    """The key's budget spent, /admin/spend's total for it, and its answered image calls' recorded costs."""
    live.state.backend.store.flush()
    with live.http(MASTER) as http:
        spent = http.get(f"/admin/keys/{key_id}").json()["spent"]
        by_key = sum(r["cost"] for r in http.get("/admin/spend", params={"by": "key"}).json()["data"]
                     if r["group"] == key_id)
    calls = live.state.backend.store.recent_calls(50)
    return spent, by_key, [c.cost for c in calls if c.key_id == key_id and c.operation == "image" and c.status == "ok"]


def test_a_budget_admits_image_calls_records_their_cost_and_refuses_once_spent(live: Live, upstream: Upstream) -> None:
    key = create_key(live, name="images", budget=0.10)
    client = live.openai(key["key"])
    upstream.queue(Reply(body=json.dumps(DALL_E_ANSWER).encode()))
    client.images.generate(model="dall-e-3", prompt="a fox", quality="hd", size="1024x1024",
                           response_format="b64_json")
    spent, by_key, costs = _spent(live, key["id"])
    assert spent == pytest.approx(0.08) and by_key == pytest.approx(0.08) and costs == [pytest.approx(0.08)]

    # another hd image needs $0.08 more: over the $0.10, refused before it is sent
    sent = len(upstream.seen)
    with pytest.raises(openai.APIStatusError) as refused:
        client.images.generate(model="dall-e-3", prompt="a fox", quality="hd", size="1024x1024")
    assert refused.value.status_code == 402 and "exhausted" in str(refused.value)
    assert len(upstream.seen) == sent

    # a low-quality gpt-image-1 image reserves what it can bill (272 tokens out at $40/1M): it fits
    upstream.queue(Reply(body=json.dumps(GPT_IMAGE_ANSWER).encode()))
    result = client.images.generate(model="gpt-image-1", prompt="a fox", quality="low", size="1024x1024")
    assert result.usage is not None and result.usage.output_tokens == 272
    spent, by_key, costs = _spent(live, key["id"])
    gpt_cost = (12 * 5 + 272 * 40) / 1e6
    assert spent == pytest.approx(0.08 + gpt_cost) and by_key == pytest.approx(spent)
    assert sorted(c if c is not None else -1.0 for c in costs) == [pytest.approx(gpt_cost), pytest.approx(0.08)]


def test_an_image_model_with_no_price_is_refused_under_a_budget_and_says_why(live: Live,
                                                                            upstream: Upstream) -> None:
    key = create_key(live, name="unpriced-images", budget=5.0)
    sent = len(upstream.seen)
    with pytest.raises(openai.APIStatusError) as refused:
        live.openai(key["key"]).images.generate(model="gpt-image-2", prompt="a fox")
    assert refused.value.status_code == 402
    body = refused.value.response.json()["error"]
    assert body["code"] == "budget_unpriced" and "no image price" in body["message"]
    assert "gpt-image-1" in body["message"]   # what to use instead
    assert len(upstream.seen) == sent
