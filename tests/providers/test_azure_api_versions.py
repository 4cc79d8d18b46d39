"""The ``api-version`` each Azure route gets, sent by a real client to a stand-in on loopback.

- A deployment root (``/openai/deployments/NAME``): Azure OpenAI's dated version.
- Azure's v1 API (``/openai/v1``) needs none ("removes the need for dated api-version
  parameters", learn.microsoft.com .../openai/api-version-lifecycle), but one the user set
  (``preview``) was dropped: it is sent now.
- Azure AI Foundry's models inference endpoint (``https://RES.services.ai.azure.com/models``)
  speaks the Azure AI Model Inference API, whose versions are its own (2024-05-01-preview,
  2025-04-01, ... in Azure/azure-rest-api-specs specification/ai/data-plane/ModelInference); it got
  Azure OpenAI's ``2024-08-01-preview``, which that API does not have. It gets 2024-05-01-preview.
- The user's ``api_version`` wins on every route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import cloverleaf
from cloverleaf._config import ProviderSettings, Settings
from tests.loopback import Answer, LoopbackServer, Request

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
    ("/openai/deployments/prod", {}, "/openai/deployments/prod/chat/completions?api-version=2024-08-01-preview"),
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
