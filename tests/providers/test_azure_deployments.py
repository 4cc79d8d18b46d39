"""Azure OpenAI as enterprise tenants run it, end to end through the SDK against a mock Azure on
127.0.0.1 answering with recorded Azure bodies: Entra ID tokens without a key, deployments whose
name is not the model's (``base_model``), and image generation deployments."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import cloverleaf
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._errors import ConfigError
from cloverleaf._pricing import lookup
from tests.providers._openai_replay import CREW, interaction
from tests.sdk.upstream import Reply, Upstream

#: A recorded Azure chat answer (gpt-4o-mini deployment; prompt_filter_results and all): 16 in, 10 out.
CHAT = interaction(f"{CREW}/llms/azure/test_azure_async_with_max_tokens.yaml").response
IMAGE = interaction("../synthetic/azure/images_dall_e_3.yaml").response


@pytest.fixture
def azure() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def _answer(up: Upstream, response=CHAT) -> None:
    up.queue(Reply(body=response.body))


def _client(up: Upstream, env: dict[str, str] | None = None, **config: object) -> cloverleaf.Client:
    entry = ModelEntry(name="prod-chat", identifier="prod-chat", provider="azure", base_url=up.url,
                       additional_config=dict(config))
    return cloverleaf.Client(Settings(env=env or {}, models=[entry], max_retries=0))


# -- Entra ID ------------------------------------------------------------------------------------
def test_an_entra_id_token_alone_is_enough(azure: Upstream) -> None:
    """Tenants that disable keys (disableLocalAuth) have only a token: it was refused for want of
    AZURE_OPENAI_API_KEY before anything was sent."""
    _answer(azure)
    with _client(azure, azure_ad_token="eyJ-entra-token") as client:
        assert client.chat("prod-chat", "hi").text == "Once upon a time, in a realm where magic"
    [seen] = azure.seen
    assert seen.path == "/openai/deployments/prod-chat/chat/completions?api-version=2025-04-01-preview"
    assert seen.headers["authorization"] == "Bearer eyJ-entra-token" and "api-key" not in seen.headers


def test_azure_openai_ad_token_from_the_environment_as_the_openai_sdk_reads_it(azure: Upstream) -> None:
    env = {"AZURE_OPENAI_AD_TOKEN": "eyJ-env-token", "AZURE_OPENAI_API_KEY": "env-key"}
    _answer(azure)
    _answer(azure)
    with _client(azure, env) as client:
        client.chat("prod-chat", "hi")
        client.chat("prod-chat", "hi", api_key="given-key")   # a key given to the call is the one meant
    token, key = azure.seen
    assert token.headers["authorization"] == "Bearer eyJ-env-token" and "api-key" not in token.headers
    assert key.headers["api-key"] == "given-key" and "authorization" not in key.headers


def test_no_key_and_no_token_names_both_before_sending(azure: Upstream) -> None:
    with _client(azure) as client, pytest.raises(ConfigError) as err:
        client.chat("prod-chat", "hi")
    assert "AZURE_OPENAI_API_KEY" in str(err.value) and "AZURE_OPENAI_AD_TOKEN" in str(err.value)
    assert azure.seen == []


# -- deployments named by the user ---------------------------------------------------------------
def test_a_deployment_is_priced_as_the_base_model_it_names(azure: Upstream) -> None:
    """``prod-chat`` is in no price table: its cost was None (and budgets could not bound it)."""
    _answer(azure)
    _answer(azure)
    env = {"AZURE_OPENAI_API_KEY": "k"}
    with _client(azure, env) as unnamed:
        assert unnamed.chat("prod-chat", "hi").cost is None
    with _client(azure, env, base_model="gpt-4o-mini") as named:
        resp = named.chat("prod-chat", "hi")
    price = lookup("openai", "gpt-4o-mini")
    assert price is not None and resp.cost == price.cost(resp.usage) and resp.cost > 0
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (16, 10)
    assert json.loads(azure.seen[-1].body)["model"] == "prod-chat"   # the deployment is still what is called


def test_a_reasoning_deployment_gets_the_reasoning_models_parameters(azure: Upstream) -> None:
    """Azure refuses max_tokens and temperature for o-series and gpt-5 deployments with a 400;
    a deployment named ``reasoning-prod`` was sent both."""
    _answer(azure)
    with _client(azure, {"AZURE_OPENAI_API_KEY": "k"}, base_model="o3-mini") as client:
        client.chat("prod-chat", "hi", max_tokens=50, temperature=0.2)
    body = json.loads(azure.seen[0].body)
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body and "temperature" not in body


def test_base_model_must_be_text(azure: Upstream) -> None:
    with _client(azure, {"AZURE_OPENAI_API_KEY": "k"}, base_model=5) as client, \
            pytest.raises(ConfigError, match="base_model"):
        client.chat("prod-chat", "hi")


# -- images ----------------------------------------------------------------------------------------
def test_image_generation_on_a_dall_e_deployment(azure: Upstream) -> None:
    """Azure serves dall-e-3 and gpt-image-1 deployments at images/generations; the SDK refused
    the call as a capability the provider lacked."""
    azure.queue(Reply(body=IMAGE.body))
    with cloverleaf.Client(Settings(env={"AZURE_OPENAI_API_KEY": "k"}, max_retries=0)) as client:
        out = client.generate_image("azure/dall-e-3", "A badger wearing a tuxedo", base_url=azure.url)
    [image] = out.images
    assert image.url and image.url.endswith("generated_00.png") and image.revised_prompt
    [seen] = azure.seen
    assert seen.path == "/openai/deployments/dall-e-3/images/generations?api-version=2025-04-01-preview"
    assert seen.headers["api-key"] == "k"


def test_a_gpt_image_deployment_gets_no_response_format(azure: Upstream) -> None:
    azure.queue(Reply(body=IMAGE.body))
    entry = ModelEntry(name="img", identifier="img-prod", provider="azure", base_url=azure.url, api_key="k",
                       additional_config={"base_model": "gpt-image-1"})
    with cloverleaf.Client(Settings(models=[entry], max_retries=0)) as client:
        client.generate_image("img", "a cat", response_format="url")
    assert "response_format" not in json.loads(azure.seen[0].body)
