"""What a 404 says when the path is one another gateway serves: where the same thing is here.

Clients written for LiteLLM's proxy often point the OpenAI SDK at the server's root
(``base_url="http://host:4000"``), so they ask for ``/chat/completions``, ``/models`` or
``/embeddings``, and its Kubernetes probes ask for ``/health/liveliness``. A bare "no route"
leaves them guessing; the answer names the path that serves it, and for the missing ``/v1`` the
``base_url`` to write. The paths are not served twice: one place for each API keeps the
OpenAPI document, the metrics and the docs in agreement.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match

#: Probes and APIs another gateway has under a path this one does not serve.
KNOWN_ELSEWHERE: dict[str, str] = {
    "/health/liveliness": "the liveness probe here is GET /health",
    "/health/liveness": "the liveness probe here is GET /health",
    "/health/readiness": "the readiness probe here is GET /ready",
    "/v1/completions": "the legacy Completions API is not served: send the prompt as a user message to "
                       "POST /v1/chat/completions",
    "/completions": "the legacy Completions API is not served: send the prompt as a user message to "
                    "POST /v1/chat/completions",
    # the openai SDK's images.edit and images.create_variation: a bare "no route" read as a typo
    "/v1/images/edits": "image edits are not served by this gateway, only new images (POST "
                        "/v1/images/generations); send edits to the provider itself",
    "/v1/images/variations": "image variations are not served by this gateway, only new images (POST "
                             "/v1/images/generations); ask the provider itself for variations",
}


def _served(path: str, method: str, routes: Iterable[BaseRoute]) -> bool:
    scope = {"type": "http", "path": path, "method": method}
    # FULL only: a PARTIAL match is the path with another method, whose answer would be a 405
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def not_found_message(path: str, method: str, routes: Iterable[BaseRoute]) -> str:
    """The 404's message for ``path``: where it is served here, when it is served elsewhere."""
    routes = list(routes)
    hint = KNOWN_ELSEWHERE.get(path.rstrip("/") or "/")
    if hint is None and not path.startswith("/v1/") and _served(f"/v1{path}", method, routes):
        hint = (f"this API is under /v1: {method} /v1{path}. Point an OpenAI client at the /v1 root "
                "(base_url=\"http://HOST:PORT/v1\"); the Anthropic SDK adds /v1 itself (base_url=\"http://HOST:PORT\")")
    return f"no route for {path}" + (f": {hint}" if hint else "")
