"""Azure OpenAI's paths, so code built on ``openai.AzureOpenAI`` works pointed at the gateway.

``AzureOpenAI(azure_endpoint="http://gateway:4000", api_key=KEY, api_version=...)`` calls
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (``embeddings``,
``images/generations`` alike) with the key in an ``api-key`` header, and names the model by
the deployment in the path. These routes are aliases of the OpenAI routes (:mod:`.openai_api`,
the same ``serve_*`` code, the same answers and errors in OpenAI's error shape, which is
Azure's): what differs is only what is read from the request.

- The deployment is the model: a gateway model, alias or route (``smart``, ``openai/gpt-4o``;
  a slash may be sent as ``%2F``, as the SDK does). A ``model`` in the body is replaced by it,
  as Azure ignores it.
- ``?api-version=`` must be present, as Azure requires it (a 400 says what to add); its value
  is not checked: every version gets the current OpenAI shape.
- The gateway key (the master key or a virtual key) is accepted in ``api-key``, besides
  ``Authorization: Bearer`` (what ``AzureOpenAI(azure_ad_token=KEY)`` sends) and
  ``x-api-key``; it is checked like any other key and never logged.

Azure's version-less v1 API (``/openai/v1/chat/completions``, ``/embeddings``,
``/images/generations``, what ``OpenAI(base_url=".../openai/v1")`` calls) is served too: the
OpenAI routes as they are (``model`` in the body), with ``api-key`` accepted and no
``api-version`` needed.

These paths go through Starlette, not the dispatcher's hot routes (:mod:`.fast_path`): the
``/v1`` routes' path is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Principal
from .errors import BadRequest
from .openai_api import serve_chat, serve_embeddings, serve_images
from .state import ServerState, endpoint

API_VERSION = "api-version"
#: what a request without a key is told to send on these paths
SEND_A_KEY = "send 'api-key: <key>' (AzureOpenAI's api_key) or 'Authorization: Bearer <key>'"
Serve = Callable[[Request, ServerState, Principal, dict[str, Any]], Awaitable[Response]]


async def authenticate(request: Request, st: ServerState) -> Principal:
    """The caller, with Azure's ``api-key`` header accepted after the two the other routes take."""
    headers = request.headers
    client = request.client
    return await st.auth.authenticate(headers.get("authorization"),
                                      headers.get("x-api-key") or headers.get("api-key"),
                                      client.host if client else None, headers.get("host"), SEND_A_KEY)


def deployment_route(serve: Serve, name: str) -> Callable[[Request], Awaitable[Response]]:
    """``/openai/deployments/{deployment}/...``: the deployment names the model."""

    async def handler(request: Request, st: ServerState) -> Response:
        principal = await authenticate(request, st)
        if not request.query_params.get(API_VERSION):
            raise BadRequest("api-version: required as a query parameter on Azure OpenAI paths, as Azure "
                             "requires it (add ?api-version=2024-10-21; any version is accepted)",
                             param=API_VERSION, code="missing_api_version")
        body = await st.read_json(request)
        body["model"] = request.path_params["deployment"]
        return await serve(request, st, principal, body)

    handler.__name__ = handler.__qualname__ = f"azure_deployment_{name}"
    return endpoint("openai")(handler)


def v1_route(serve: Serve, name: str) -> Callable[[Request], Awaitable[Response]]:
    """``/openai/v1/...``: the OpenAI route, with ``api-key`` accepted."""

    async def handler(request: Request, st: ServerState) -> Response:
        return await serve(request, st, await authenticate(request, st), await st.read_json(request))

    handler.__name__ = handler.__qualname__ = f"azure_v1_{name}"
    return endpoint("openai")(handler)


OPERATIONS: dict[str, Serve] = {"chat/completions": serve_chat, "embeddings": serve_embeddings,
                                "images/generations": serve_images}

routes = [
    *(Route(f"/openai/deployments/{{deployment:path}}/{operation}",
            deployment_route(serve, operation.replace("/", "_")), methods=["POST"])
      for operation, serve in OPERATIONS.items()),
    *(Route(f"/openai/v1/{operation}", v1_route(serve, operation.replace("/", "_")), methods=["POST"])
      for operation, serve in OPERATIONS.items()),
]
