"""Azure's content filter, seen through the gateway: which category tripped it was dropped, so
a client of the OpenAI-compatible endpoint (the official SDK) could not tell why it was refused.
Azure's 400 ``innererror`` for a filtered prompt, and the verdicts behind a cut answer, now reach
it in Azure's own shape, whole or streamed; an Anthropic client gets its own error shape, the
categories named in the message; no key or other upstream text is relayed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from cloverleaf._config import ProviderSettings
from tests.providers._openai_replay import interaction

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

SYN = "../synthetic/azure"
KEY = "az-secret-key-0123456789"
HI: Any = [{"role": "user", "content": "hi"}]
FILTERED_PROMPT = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
    "hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": True, "severity": "high"}}}
CUT = {"content_filter_result": {**FILTERED_PROMPT["content_filter_result"],
                                 "violence": {"filtered": True, "severity": "medium"}}}


def recorded(name: str) -> Reply:
    """A synthetic Azure answer from tests/fixtures (Azure's documented shapes)."""
    response = interaction(f"{SYN}/{name}.yaml").response
    return Reply(status=response.status, headers={"content-type": response.headers.get("content-type",
                                                                                      "application/json")},
                 body=response.body)


@pytest.fixture(scope="module")
def azure_upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def live(azure_upstream: Upstream) -> Iterator[Live]:
    base = f"{azure_upstream.url}/openai/deployments/gpt-4o-mini"
    server = start_live(settings(providers={"azure": ProviderSettings("azure", base_url=base, api_key=KEY)}))
    yield server
    stop_live(server)


def test_a_filtered_prompt_relays_azures_innererror(live: Live, azure_upstream: Upstream) -> None:
    azure_upstream.queue(recorded("error_content_filter"))
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().chat.completions.create(model="azure/gpt-4o-mini", messages=HI)
    body: Any = caught.value.body
    assert body["code"] == "content_filter" and body["param"] == "prompt"
    assert body["innererror"] == FILTERED_PROMPT
    assert "violence (high)" in body["message"] and KEY not in json.dumps(body)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_cut_answer_relays_the_categories_that_cut_it(live: Live, azure_upstream: Upstream, stream: bool) -> None:
    client = live.openai()
    if not stream:
        azure_upstream.queue(recorded("finish_content_filter"))
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="azure/gpt-4o-mini", messages=HI)
        error: Any = caught.value.body
    else:
        azure_upstream.queue(recorded("stream_content_filter"))
        with pytest.raises(openai.APIError) as streamed:
            for _ in client.chat.completions.create(model="azure/gpt-4o-mini", messages=HI, stream=True):
                pass
        error = streamed.value.body
    assert error["code"] == "content_filter" and error["innererror"] == CUT
    assert "violence (medium)" in error["message"]


def test_the_anthropic_surface_keeps_its_own_shape(live: Live, azure_upstream: Upstream) -> None:
    azure_upstream.queue(recorded("error_content_filter"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        live.anthropic().messages.create(model="azure/gpt-4o-mini", max_tokens=64, messages=HI)
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "innererror" not in body["error"] and "violence (high)" in body["error"]["message"]


def test_the_responses_surface_gets_the_details_in_openais_shape(live: Live, azure_upstream: Upstream) -> None:
    azure_upstream.queue(recorded("error_content_filter"))
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().responses.create(model="azure/gpt-4o-mini", input="hi")
    body: Any = caught.value.body
    assert body["code"] == "content_filter" and body["innererror"] == FILTERED_PROMPT
