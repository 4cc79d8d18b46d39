"""What the GenAI semantic conventions call the provider and the server an attempt went to.

Backends that read the conventions (Datadog LLM Observability, Grafana, Langfuse, ...) key
their views on ``gen_ai.provider.name``'s well-known values, so cloverleaf's own provider names
(``mistral``, ``xai``, an operator's ``[providers.mock]``) left them unrecognised. A built-in
provider whose vendor the conventions name gets that value; any other provider is named by the
API it speaks (its adapter kind: a ``[providers.NAME]`` of kind ``openai`` is ``openai``, as the
conventions ask of an OpenAI-compatible service, whose ``server.address`` then tells which one);
a kind the conventions do not know stays as it is (``ollama``, ``fake``). cloverleaf's own name
for the provider goes into ``cloverleaf.provider``.

``server.address``/``server.port`` come from the target's base URL (Bedrock's from its region).
Computed once per provider, URL and region, so a span costs a dict lookup for them.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

#: built-in providers (registry rows) whose vendor has a well-known ``gen_ai.provider.name``
#: (a ``[providers.NAME]`` table cannot take a built-in's name: it configures that row). The
#: conventions' ``cohere`` and ``ibm.watsonx.ai`` have no provider of their own here.
VENDORS: dict[str, str] = {
    "openai": "openai", "openai-responses": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock", "azure": "azure.ai.openai", "mistral": "mistral_ai", "xai": "x_ai",
    "deepseek": "deepseek", "groq": "groq", "perplexity": "perplexity",
}
#: adapter kinds -> the value for any other provider of that kind (others keep their kind)
KINDS: dict[str, str] = {
    "openai": "openai", "openai_responses": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock", "azure": "azure.ai.openai",
}
VERTEX = "gcp.vertex_ai"
_MAX_REMEMBERED = 1024


class Server(NamedTuple):
    """A target's conventions: ``gen_ai.provider.name`` and where its requests go (None: no server,
    a model run in process)."""

    provider_name: str
    address: str | None
    port: int | None


_remembered: dict[tuple[str, str, str, bool], Server] = {}


def server_of(target: Any, provider: str) -> Server:
    """``target`` is the Engine's target (``_resolve.Target``: its ``spec`` and ``cfg``) or any
    other engine's (``gateway.protocols.Target``), of which only ``provider`` is known."""
    spec, cfg = getattr(target, "spec", None), getattr(target, "cfg", None)
    if spec is None or cfg is None:
        return Server(VENDORS.get(provider, provider), None, None)
    extra = cfg.extra
    key = (spec.name, cfg.base_url or spec.base_url, str(extra.get("region") or ""), bool(extra.get("vertex")))
    found = _remembered.get(key)
    if found is None:
        if len(_remembered) >= _MAX_REMEMBERED:
            _remembered.clear()
        found = _remembered[key] = _server(spec.name, spec.kind, *key[1:])
    return found


def _server(name: str, kind: str, base_url: str, region: str, vertex: bool) -> Server:
    host: str | None = None
    port: int | None = None
    if base_url:
        try:
            parts = urlsplit(base_url)
            host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:   # a malformed URL names no server (its calls fail on their own)
            host = None
    elif kind == "bedrock" and region:   # the adapter's own endpoint (providers/bedrock/adapter.py)
        host, port = f"bedrock-runtime.{region}.amazonaws.com", 443
    if kind == "gemini" and (vertex or "aiplatform.googleapis.com" in base_url):   # as GeminiAdapter._is_vertex
        value = VERTEX
    else:
        value = VENDORS.get(name) or KINDS.get(kind, kind)
    return Server(value, host or None, port if host else None)
