"""Azure OpenAI's paths, live, through the official ``openai`` SDK's ``AzureOpenAI`` and
``AsyncAzureOpenAI``: code written for Azure works pointed at the gateway, with the gateway key
(master or virtual) in Azure's ``api-key`` header and the deployment naming the model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import openai
import pytest

from cloverleaf.server import azure_api

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live
from .openai_schema import validate

HELLO = [{"role": "user", "content": "hello from Azure code"}]
API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, image_model="fake/image"))
    yield server
    stop_live(server)


def azure(live: Live, key: str = MASTER, **kw: object) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=live.url, api_key=key, api_version=API_VERSION, max_retries=0,
                              **kw)  # type: ignore[arg-type]


def test_chat_embeddings_and_images_through_azure_openai(live: Live) -> None:
    client = azure(live)
    raw = client.chat.completions.with_raw_response.create(model="fake/echo", messages=HELLO)
    assert raw.http_request.url.raw_path == b"/openai/deployments/fake%2Fecho/chat/completions?api-version=2024-10-21"
    assert raw.http_request.headers["api-key"] == MASTER and "authorization" not in raw.http_request.headers
    validate("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from Azure code"
    assert completion.model == "fake/echo" and raw.headers["x-cloverleaf-target"] == "fake/echo"

    streamed = client.chat.completions.create(model="fake/echo", messages=HELLO, stream=True,
                                              stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello from Azure code"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    vectors = client.embeddings.create(model="fake/embed", input=["one", "two"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0

    images = client.images.generate(model="fake/image", prompt="a clover leaf", response_format="b64_json")
    assert images.data and images.data[0].b64_json


def test_async_azure_openai_streams_and_embeds(live: Live) -> None:
    async def run() -> tuple[str, str, int]:
        client = openai.AsyncAzureOpenAI(azure_endpoint=live.url, api_key=MASTER, api_version=API_VERSION,
                                         max_retries=0)
        async with client:
            whole = await client.chat.completions.create(model="fake/echo", messages=HELLO)
            stream = await client.chat.completions.create(model="fake/echo", messages=HELLO, stream=True)
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            vectors = await client.embeddings.create(model="fake/embed", input="one")
        return whole.choices[0].message.content or "", "".join(pieces), len(vectors.data)

    assert asyncio.run(run()) == ("hello from Azure code", "hello from Azure code", 1)


def test_the_deployment_in_the_url_is_the_model_whatever_the_body_says(live: Live) -> None:
    client = azure(live, azure_deployment="fake/echo")   # every call goes to this deployment
    raw = client.chat.completions.with_raw_response.create(model="anything-else", messages=HELLO)
    assert raw.http_request.url.path == "/openai/deployments/fake/echo/chat/completions"   # the slash unescaped
    assert raw.parse().model == "fake/echo"
    with httpx.Client(base_url=live.url, headers={"api-key": MASTER}) as http:   # Azure's REST: no body model
        r = http.post("/openai/deployments/smart/chat/completions", params={"api-version": API_VERSION},
                      json={"messages": HELLO})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smart" and r.headers["x-cloverleaf-target"] == "fake/echo"   # a route works too


def test_virtual_keys_in_api_key_with_their_model_limits(live: Live) -> None:
    secret = create_key(live, name="azure-team", allowed_models=["fake/echo"])["key"]
    assert azure(live, secret).chat.completions.create(
        model="fake/echo", messages=HELLO).choices[0].message.content == "hello from Azure code"
    # an Entra-style client (azure_ad_token) sends the key as a bearer token: accepted as well
    token_client = openai.AzureOpenAI(azure_endpoint=live.url, azure_ad_token=secret, api_version=API_VERSION,
                                      max_retries=0)
    assert token_client.chat.completions.create(model="fake/echo", messages=HELLO).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as denied:
        azure(live, secret).embeddings.create(model="fake/embed", input="x")
    assert denied.value.body["code"] == "model_not_allowed"  # type: ignore[index]


def test_missing_and_wrong_keys_are_401_in_openais_shape_and_never_logged(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-clv-wrong-key-never-logged-0123456789"
    with pytest.raises(openai.AuthenticationError) as refused:
        azure(live, wrong).chat.completions.create(model="fake/echo", messages=HELLO)
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with httpx.Client(base_url=live.url) as http:
        r = http.post("/openai/deployments/fake%2Fecho/chat/completions", params={"api-version": API_VERSION},
                      json={"messages": HELLO})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert "api-key: <key>" in r.json()["error"]["message"]
    assert wrong not in caplog.text and MASTER not in caplog.text


def test_bad_requests_are_400s_that_say_what_to_do(live: Live) -> None:
    with httpx.Client(base_url=live.url, headers={"api-key": MASTER}) as http:
        no_version = http.post("/openai/deployments/fake%2Fecho/chat/completions", json={"messages": HELLO})
        not_json = http.post("/openai/deployments/fake%2Fecho/chat/completions",
                             params={"api-version": API_VERSION}, content=b"{not json",
                             headers={"content-type": "application/json"})
        no_such = http.post("/openai/deployments/no-such-deployment/embeddings",
                            params={"api-version": API_VERSION}, json={"input": "x"})
    assert no_version.status_code == 400
    error = no_version.json()["error"]
    assert error["param"] == "api-version" and "?api-version=" in error["message"]
    assert not_json.status_code == 400 and "error" in not_json.json()
    assert no_such.status_code == 404 and "no-such-deployment" in no_such.json()["error"]["message"]


def test_azures_v1_paths_take_the_body_model_and_the_api_key_header(live: Live) -> None:
    client = openai.OpenAI(base_url=f"{live.url}/openai/v1", api_key=MASTER, max_retries=0)
    assert client.chat.completions.create(model="fake/echo", messages=HELLO).choices[0].message.content
    assert client.embeddings.create(model="fake/embed", input="one").data
    with httpx.Client(base_url=live.url, headers={"api-key": MASTER}) as http:
        r = http.post("/openai/v1/chat/completions", json={"model": "fake/echo", "messages": HELLO})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hello from Azure code"


def test_the_openai_routes_still_refuse_an_api_key_header(live: Live) -> None:
    """Only Azure's paths read ``api-key``: the hot routes' credentials are unchanged."""
    with httpx.Client(base_url=live.url, headers={"api-key": MASTER}) as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo", "messages": HELLO})
    assert r.status_code == 401


def test_the_openapi_document_describes_the_azure_paths(live: Live) -> None:
    """``/openapi.json`` lacked every Azure path: a client generated from it, or a fuzzer, never
    saw them. Each is there, with ``api-version`` and the ``api-key`` scheme, and a request made
    from what the document says (no ``model`` in a deployment's body) is answered."""
    with live.http() as http:
        doc = http.get("/openapi.json").json()
    served = {route.path.replace("{deployment:path}", "{deployment}") for route in azure_api.routes}
    documented = {path for path in doc["paths"] if path.startswith("/openai/")}
    assert documented == served and len(served) == 6
    assert doc["components"]["securitySchemes"]["api-key"] == {
        "type": "apiKey", "in": "header", "name": "api-key", "description": doc["components"]["securitySchemes"]
        ["api-key"]["description"]}
    bodies = {"chat/completions": {"messages": HELLO}, "embeddings": {"input": "one"},
              "images/generations": {"prompt": "a clover leaf"}}
    models = {"chat/completions": "fake/echo", "embeddings": "fake/embed", "images/generations": "fake/image"}
    for path in sorted(documented):
        op = doc["paths"][path]["post"]
        assert {"api-key": []} in op["security"] and {"bearer": []} in op["security"], path
        operation = path.split("/{deployment}/")[-1].split("/openai/v1/")[-1]
        params = {p["name"]: p for p in op.get("parameters", ())}
        body = dict(bodies[operation])
        if "{deployment}" in path:
            assert params["api-version"]["in"] == "query" and params["api-version"]["required"] is True
            assert params["deployment"]["in"] == "path"
            assert "model" not in op["requestBody"]["content"]["application/json"]["schema"]["required"]
            url = path.replace("{deployment}", models[operation].replace("/", "%2F")) + f"?api-version={API_VERSION}"
        else:
            assert "api-version" not in params
            body["model"] = models[operation]
            url = path
        with httpx.Client(base_url=live.url, headers={"api-key": MASTER}) as http:
            r = http.post(url, json=body)
        assert r.status_code == 200, (path, r.text)
