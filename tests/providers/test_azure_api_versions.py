"""The ``api-version`` each Azure route gets, sent by a real client to a stand-in on loopback.

- A deployment root (``/openai/deployments/NAME``): Azure OpenAI's dated version, now
  2025-04-01-preview. The old default, 2024-08-01-preview, predates what the adapter sends there
  (``max_completion_tokens``, ``reasoning_effort``, ``stream_options``, o-series, gpt-5 and
  gpt-image-1 deployments): a stand-in that answers per version as Azure does shows each working.
- Azure's v1 API (``/openai/v1``) needs none ("removes the need for dated api-version
  parameters", learn.microsoft.com .../openai/api-version-lifecycle), but one the user set
  (``preview``) was dropped: it is sent now.
- Azure AI Foundry's models inference endpoint (``https://RES.services.ai.azure.com/models``)
  speaks the Azure AI Model Inference API, whose versions are its own (2024-05-01-preview,
  2025-04-01, ... in Azure/azure-rest-api-specs specification/ai/data-plane/ModelInference); it got
  Azure OpenAI's ``2024-08-01-preview``, which that API does not have. It gets 2024-05-01-preview.
- The user's ``api_version`` wins on every route; Azure's refusal of a model or field newer than it
  says to change or remove it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

import cloverleaf
from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from tests.loopback import Answer, LoopbackServer, Request, json_answer, sse_event, sse_stream

REPLY = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "mistral-large",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@pytest.fixture(scope="module")
def azure() -> Iterator[LoopbackServer]:
    def handle(request: Request) -> Answer:
        return Answer(200, json.dumps(REPLY).encode(), {"content-type": "application/json"})
    with LoopbackServer(handle) as server:
        yield server


def sent_path(server: LoopbackServer, route: str, **extra: object) -> str:
    settings = Settings(providers={"azure": ProviderSettings("azure", kind="azure", base_url=server.url + route,
                                                             api_key="k", extra=dict(extra))})
    with cloverleaf.Client(settings) as client:
        client.chat("azure/mistral-large", "hi")
    return server.requests[-1].path


@pytest.mark.parametrize(("route", "extra", "path"), [
    ("/openai/deployments/prod", {}, "/openai/deployments/prod/chat/completions?api-version=2025-04-01-preview"),
    ("/openai/deployments/prod", {"api_version": "2024-10-21"},
     "/openai/deployments/prod/chat/completions?api-version=2024-10-21"),
    ("/openai/v1", {}, "/openai/v1/chat/completions"),
    ("/openai/v1", {"api_version": "preview"}, "/openai/v1/chat/completions?api-version=preview"),
    ("/models", {}, "/models/chat/completions?api-version=2024-05-01-preview"),
    ("/models", {"api_version": "2025-04-01"}, "/models/chat/completions?api-version=2025-04-01"),
    ("/models?api-version=2025-05-01", {}, "/models/chat/completions?api-version=2025-05-01"),
])
def test_each_route_gets_its_api_version_and_the_user_s_own_wins(azure: LoopbackServer, route: str,
                                                                 extra: dict[str, object], path: str) -> None:
    assert sent_path(azure, route, **extra) == path


# -- what Azure takes on each version ---------------------------------------------------------------
#: The model each stand-in deployment runs (a deployment's name is its owner's).
DEPLOYMENTS = {"chat-prod": "gpt-4o", "o3-prod": "o3", "gpt5-prod": "gpt-5", "image-prod": "gpt-image-1"}
#: The first dated preview with each model or body field (Microsoft's api-version-lifecycle "changes
#: between" notes and reasoning/image pages): older ones refuse them.
MODEL_SINCE = {"o3": "2024-12-01-preview", "gpt-5": "2024-12-01-preview", "gpt-image-1": "2025-04-01-preview"}
FIELD_SINCE = {"max_completion_tokens": "2024-09-01-preview", "stream_options": "2024-09-01-preview",
               "parallel_tool_calls": "2024-09-01-preview", "reasoning_effort": "2024-12-01-preview"}
REASONING = {"o3", "gpt-5"}


def versioned_azure(request: Request) -> Answer:
    """Azure OpenAI's deployment routes as they answer per ``api-version`` (dated previews only):
    a model or a field newer than the version is refused with Azure's 400, as is ``max_tokens`` or
    a ``temperature`` for a reasoning model."""
    path, _, query = request.path.partition("?")
    version = dict(parse_qsl(query)).get("api-version", "")
    model = DEPLOYMENTS[path.split("/")[3]]
    body = request.json({})
    refusal = _refusal(version, model, body)
    if refusal is not None:
        return json_answer({"error": refusal}, 400)
    if path.endswith("/images/generations"):
        return json_answer({"created": 1, "data": [{"b64_json": base64.b64encode(b"png").decode()}]})
    if not body.get("stream"):
        return json_answer(REPLY)
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model}
    events = [sse_event({**chunk, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})]
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(sse_event({**chunk, "choices": [], "usage": REPLY["usage"]}))
    return sse_stream([*events, sse_event("[DONE]")])


def _refusal(version: str, model: str, body: dict[str, object]) -> dict[str, object] | None:
    since = MODEL_SINCE.get(model)
    if since and version < since:
        return {"code": "BadRequest", "message": f"Model {model} is enabled only for api versions {since} and later"}
    for field, since in FIELD_SINCE.items():
        if field in body and version < since:
            return {"code": None, "param": None, "type": "invalid_request_error",
                    "message": f"Unrecognized request argument supplied: {field}"}
    if model in REASONING and "max_tokens" in body:
        return {"code": "unsupported_parameter", "param": "max_tokens", "type": "invalid_request_error",
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                           "Use 'max_completion_tokens' instead."}
    return None


@pytest.fixture(scope="module")
def versioned() -> Iterator[LoopbackServer]:
    with LoopbackServer(versioned_azure) as server:
        yield server


def deployment_client(server: LoopbackServer, deployment: str, **config: object) -> cloverleaf.Client:
    entry = ModelEntry(name=deployment, identifier=deployment, provider="azure", api_key="k",
                       base_url=f"{server.url}/openai/deployments/{deployment}",
                       additional_config={"base_model": DEPLOYMENTS[deployment], **config})
    return cloverleaf.Client(Settings(models=[entry], max_retries=0))


@pytest.mark.parametrize("deployment", ["o3-prod", "gpt5-prod"])
def test_a_reasoning_deployment_works_on_the_default_version(versioned: LoopbackServer, deployment: str) -> None:
    """An o-series or gpt-5 deployment was refused on the old default (2024-08-01-preview), and so
    were the max_completion_tokens and reasoning_effort it is sent; on the default now it answers."""
    with deployment_client(versioned, deployment) as client:
        assert client.chat(deployment, "hi", max_tokens=50, temperature=0.2, reasoning="high").text == "hi"
    sent = versioned.requests[-1]
    assert sent.path.endswith("/chat/completions?api-version=2025-04-01-preview")
    body = sent.json()
    assert (body["max_completion_tokens"], body["reasoning_effort"]) == (50, "high")
    assert "max_tokens" not in body and "temperature" not in body


def test_a_stream_on_the_default_version_counts_its_usage(versioned: LoopbackServer) -> None:
    """Every stream asks for its usage (stream_options.include_usage), which versions before
    2024-09-01-preview refuse: a streamed call failed on the old default."""
    with deployment_client(versioned, "chat-prod") as client:
        stream = client.stream("chat-prod", "hi", max_tokens=20)
        assert "".join(stream.text_stream) == "hi"
    assert stream.response is not None
    assert (stream.response.usage.input_tokens, stream.response.usage.output_tokens) == (1, 1)
    body = versioned.requests[-1].json()
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 20


def test_a_gpt_image_1_deployment_works_on_the_default_version(versioned: LoopbackServer) -> None:
    with deployment_client(versioned, "image-prod") as client:
        [image] = client.generate_image("image-prod", "a cat").images
    assert image.data == b"png"
    assert versioned.requests[-1].path.endswith("/images/generations?api-version=2025-04-01-preview")


def test_a_pinned_older_version_is_sent_and_its_refusal_says_what_to_change(versioned: LoopbackServer) -> None:
    """The user's api_version still wins; when Azure refuses the model on it, the error says to
    change or remove api_version rather than leaving the user to guess."""
    with deployment_client(versioned, "o3-prod", api_version="2024-08-01-preview") as client, \
            pytest.raises(cloverleaf.ProviderError) as err:
        client.chat("o3-prod", "hi")
    assert versioned.requests[-1].path.endswith("?api-version=2024-08-01-preview")
    assert err.value.status == 400
    assert "enabled only for api versions 2024-12-01-preview" in str(err.value)
    assert "api_version" in str(err.value) and "2025-04-01-preview" in str(err.value)
