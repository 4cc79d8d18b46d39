"""Azure OpenAI: the OpenAI wire format at a deployment URL, with Azure's auth and filters.

Everything about the body, the stream and the answers is the OpenAI adapter's; this
subclass changes only what Azure changes:

- URL: ``cfg.base_url`` is the deployment root
  (``https://RES.openai.azure.com/openai/deployments/DEPLOYMENT``) and each operation is
  ``{base}/chat/completions?api-version=...`` (``embeddings``, ``images/generations``
  alike). ``api_version`` comes from ``cfg.extra`` (default :data:`DEFAULT_API_VERSION`,
  ``2025-04-01-preview``, whose choice that constant's comment gives). A bare
  resource root (``https://RES.openai.azure.com``, what ``AZURE_OPENAI_ENDPOINT`` usually
  holds) gets ``/openai/deployments/{model}`` added, the model naming the deployment. A
  base ending in ``/openai/v1`` is Azure's version-less v1 API and gets no ``api-version`` unless
  the user set one (``preview``). A base ending in ``/models`` is Azure AI Foundry's models
  inference endpoint (``https://RES.services.ai.azure.com/models``, the model in the body naming
  the deployment), whose Azure AI Model Inference API has its own versions: it gets
  ``2024-05-01-preview`` (what Microsoft's docs and the ``azure-ai-inference`` SDK send), not the
  Azure OpenAI default, which that API does not have. A user's ``api_version`` (or an
  ``api-version`` in the base URL's query) is sent as given on every route; when Azure refuses a
  model or a field as newer than that version, the 400 says to change or remove ``api_version``.
- Auth: an ``api-key`` header, not a Bearer token. An Entra ID token is sent as a Bearer token
  instead, and then no key is needed. The first of these that is set wins (tokens before keys,
  as the ``openai`` SDK's ``AzureOpenAI`` prefers ``AZURE_OPENAI_AD_TOKEN`` to
  ``AZURE_OPENAI_API_KEY``; what the entry says before what the environment says):

  1. ``additional_config`` ``azure_ad_token``: a static Entra ID token;
  2. ``additional_config`` ``azure_tenant_id`` + ``azure_client_id`` + ``azure_client_secret``: a
     service principal, whose tokens the gateway gets and refreshes itself (:mod:`.entra`);
  3. a key passed to the call or set on the entry/provider (``api_key``): the ``api-key`` header;
  4. ``AZURE_OPENAI_AD_TOKEN``: a static Entra ID token;
  5. ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET`` (all three; the variables
     ``azure-identity``'s ``EnvironmentCredential`` reads): a service principal, as 2;
  6. ``AZURE_OPENAI_API_KEY``: the ``api-key`` header.

  A static token and a service principal both in ``additional_config`` is an error (which one was
  meant?). A service principal's authority host is ``azure_authority_host``, else
  ``AZURE_AUTHORITY_HOST``, else ``login.microsoftonline.com``. With none of the six, resolving
  the target fails naming them, before anything is sent.
- The model: a deployment's name is the user's (``prod-chat``) and says nothing of the model it
  runs, so ``cfg.extra["base_model"]`` (``gpt-4o``, ``o3-mini``) names it. Its price applies
  (cost, budgets, context window), and so do its request rules (a reasoning model gets
  ``max_completion_tokens`` and no ``temperature``, which Azure refuses with a 400 otherwise); the
  body still names the deployment. Without it, a deployment named like a model is that model.
- Content filtering: ``prompt_filter_results`` and ``content_filter_results`` are kept in
  ``metadata.extra``; a response or stream chunk that finishes with ``content_filter``
  raises :class:`ContentFilterError` (the answer was cut by the filter, so a partial text
  must not pass for a complete one), as does an error with code ``content_filter``. Either
  error names the categories that tripped and keeps their verdicts in ``innererror``
  (:mod:`.filters`), which the gateway's OpenAI-compatible error relays as Azure sends it.
- Streams start with a chunk whose ``choices`` is empty and ``model``/``id`` are blank
  (it only carries the prompt filter results); the shared decoder handles that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ..._capabilities import Capabilities
from ..._errors import ConfigError, ContentFilterError, NotFoundError, ProviderError
from ..._http import HttpResponse
from ..base import ProviderConfig, split_query, with_query
from ..bearer import BearerSource, BearerTokens
from ..openai.adapter import OpenAIAdapter
from ..openai.messages import Dialect
from . import filters
from .entra import AUTHORITY_SETTING, SETTINGS, client_credentials, grant_from

if TYPE_CHECKING:
    from ..spec import ProviderSpec

#: The ``api-version`` a deployment route gets when the user named none: the one that takes all
#: that this adapter sends there. Azure OpenAI's data-plane inference versions, from Microsoft's
#: "API version lifecycle" and "reasoning models" pages (learn.microsoft.com/azure/ai-foundry/openai/
#: api-version-lifecycle, .../how-to/reasoning) and Azure/azure-rest-api-specs
#: specification/cognitiveservices/data-plane/AzureOpenAI/inference/{stable,preview}/:
#:
#: - ``2024-08-01-preview`` (the former default): structured outputs, but no ``max_completion_tokens``,
#:   ``stream_options``/``include_usage``, ``parallel_tool_calls`` or ``reasoning_effort`` (all added
#:   in 2024-09-01-preview and 2024-12-01-preview), and Azure refuses o-series and gpt-5
#:   deployments on it ("Model ... is enabled only for api versions 2024-12-01-preview and later").
#: - ``2024-10-21``, the latest GA of the dated versions: its chat request
#:   (stable/2024-10-21/inference.json) has ``max_tokens`` only; no ``max_completion_tokens`` or
#:   ``reasoning_effort``, so no reasoning deployment, and no gpt-image-1.
#: - ``2025-04-01-preview``, the latest and last dated preview (newer features come only to the
#:   version-less v1 API, ``/openai/v1``): ``max_completion_tokens``, ``reasoning_effort``,
#:   ``stream_options.include_usage``, structured outputs, embeddings' ``dimensions`` and base64,
#:   dall-e-3 and gpt-image-1 images, audio, and ``/openai/responses``; the reasoning page names it
#:   (with v1) as the version for o3, o4-mini and the gpt-5 series. It still takes ``max_tokens`` from
#:   the models that are not reasoning models, which is what :mod:`..openai.messages` sends them.
#:
#: A user's ``api_version`` (or ``?api-version=`` on the base URL) is sent instead, always.
DEFAULT_API_VERSION = "2025-04-01-preview"
#: Azure's 400 for a model or a body field the api-version sent does not have: "Model o3 is enabled
#: only for api versions 2024-12-01-preview and later", "Unrecognized request argument supplied:
#: stream_options" (seen when a user pins an older version than the models or fields need).
_VERSION_REFUSAL = re.compile(r"enabled only for api versions|Unrecognized request argument supplied", re.I)
#: The Azure AI Model Inference API's version for a Foundry ``.../models`` endpoint.
MODELS_ENDPOINT_API_VERSION = "2024-05-01-preview"
#: Where the ``openai`` SDK's ``AzureOpenAI`` reads an Entra ID token when given no credentials.
AD_TOKEN_ENV = "AZURE_OPENAI_AD_TOKEN"


class AzureOpenAIAdapter(OpenAIAdapter):
    kind: ClassVar[str] = "azure"
    default_capabilities: ClassVar[Capabilities] = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        embeddings=True, image_generation=True, image_input=True, url_image_input=True, reasoning=True,
        system_attachments=True,
    )
    default_dialect: ClassVar[Dialect] = Dialect(embedding_base64=True, embedding_token_ids=True)
    config_keys: ClassVar[frozenset[str]] = OpenAIAdapter.config_keys | {
        "api_version", "azure_ad_token", "base_model", *SETTINGS, AUTHORITY_SETTING}

    def __init__(self, spec: ProviderSpec) -> None:
        super().__init__(spec)
        #: Entra ID tokens of the service principals this adapter's targets name (one cache for all)
        self.entra = BearerTokens()

    def underlying_model(self, model: str, cfg: ProviderConfig) -> str:
        base_model = cfg.extra.get("base_model")
        return base_model if isinstance(base_model, str) and base_model else model

    def endpoint(self, cfg: ProviderConfig, path: str, model: str) -> str:
        # a query on the base URL (``?api-version=...``, as Azure's portal shows endpoints) goes after
        # the path; its api-version is the one used
        base, query = split_query(cfg.base_url or self.spec.base_url)
        base = base.rstrip("/")
        if not base:
            raise ConfigError(
                "Azure OpenAI needs base_url = https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT "
                "(or AZURE_OPENAI_ENDPOINT = https://RESOURCE.openai.azure.com with the deployment as the model)")
        if urlsplit(base).path in ("", "/"):
            # a resource root (what AZURE_OPENAI_ENDPOINT usually holds): the model names the deployment
            base = f"{base}/openai/deployments/{quote(model, safe='')}"
        url = f"{base}/{path.lstrip('/')}"
        params = parse_qsl(query, keep_blank_values=True)
        if not any(name == "api-version" for name, _ in params):
            version = cfg.extra.get("api_version") or default_api_version(base)
            if version:
                params.append(("api-version", str(version)))
        return with_query(url, urlencode(params))

    def prepare_config(self, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """Settle the credential once, in the order the module docstring gives. Enterprise tenants
        often disable keys (``disableLocalAuth``), so a token alone must do; and a gateway runs for
        longer than a static token lasts, so a service principal's tokens are refreshed."""
        env = os.environ if env is None else env
        base_model = cfg.extra.get("base_model")
        if base_model is not None and not (isinstance(base_model, str) and base_model.strip()):
            raise ConfigError(f"azure: base_model must name the model the deployment runs, in quotes "
                              f"(base_model = \"gpt-4o\"), not {base_model!r}")
        configured = client_credentials(cfg.extra, env, from_env=False)
        if cfg.extra.get("azure_ad_token"):
            if configured is not None:
                raise ConfigError("azure: additional_config sets both azure_ad_token and a service principal "
                                  "(azure_tenant_id/azure_client_id/azure_client_secret); keep one")
            return cfg
        if configured is not None:
            return replace(cfg, extra={**cfg.extra, **configured})
        explicit_key = cfg.api_key and cfg.api_key_env is None
        if explicit_key:
            return cfg
        token = env.get(AD_TOKEN_ENV)
        if token:
            return replace(cfg, extra={**cfg.extra, "azure_ad_token": token})
        principal = client_credentials(cfg.extra, env, from_env=True)
        if principal is not None:
            return replace(cfg, extra={**cfg.extra, **principal})
        if not cfg.api_key:
            raise ConfigError(
                "no credential for azure: set AZURE_OPENAI_API_KEY (an api-key) or AZURE_OPENAI_AD_TOKEN "
                "(an Entra ID token), or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service "
                "principal) in the environment, or set additional_config azure_ad_token or "
                "azure_tenant_id/azure_client_id/azure_client_secret (calling from Python: pass api_key=)")
        return cfg

    def bearer_source(self, cfg: ProviderConfig) -> BearerSource | None:
        """A service principal's self-refreshing Entra ID token, when prepare_config chose one."""
        if cfg.extra.get("azure_ad_token"):
            return None
        grant = grant_from(cfg.extra, self.name)
        return None if grant is None else self.entra.source(grant)

    def auth_headers(self, cfg: ProviderConfig) -> dict[str, str]:
        token = cfg.extra.get("azure_ad_token")
        if token:
            return {"Authorization": f"Bearer {token}"}
        if cfg.extra.get("azure_client_secret"):
            return {}   # the engine sets the service principal's token (bearer_source)
        return {"api-key": cfg.api_key} if cfg.api_key else {}

    # -- content filtering -------------------------------------------------------------------
    def chunk_extra(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        extra: dict[str, Any] = {}
        if chunk.get("prompt_filter_results"):
            extra["prompt_filter_results"] = chunk["prompt_filter_results"]
        for choice in chunk.get("choices") or ():
            results = choice.get("content_filter_results") if isinstance(choice, dict) else None
            if results:
                extra["content_filter_results"] = results
        return extra or None

    def check_finish(self, raw_finish: str | None, model: str | None, choice: dict[str, Any] | None = None) -> None:
        if raw_finish == "content_filter":
            found = filters.verdicts((choice or {}).get("content_filter_results"))
            details = {"content_filter_result": found} if found else None
            which = filters.tripped(details)
            err = ContentFilterError(
                f"Azure's content filter stopped the response (finish_reason=content_filter"
                f"{'; filtered: ' + which if which else ''}); see the deployment's content filtering policy",
                provider=self.name, model=model, status=200, code="content_filter")
            err.innererror = details
            raise err

    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        err = super().parse_error(resp, model)
        if isinstance(err, ContentFilterError):
            try:
                err.innererror = filters.refusal_details(resp.json())
            except ValueError:
                err.innererror = None
            which = filters.tripped(err.innererror)
            if which:
                err.message += f" (filtered: {which})"
                err.args = (err.message,)
        if resp.status == 400 and _VERSION_REFUSAL.search(err.message):
            err.message += (f" - the api-version sent lacks this model or parameter: set api_version in the "
                            f"model's additional_config to a newer one (or remove it for {DEFAULT_API_VERSION})")
            err.args = (err.message,)
        if isinstance(err, NotFoundError) and resp.status == 404:
            err.message += (" - check that base_url is the deployment root "
                            "(https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT), that the "
                            "deployment exists, and that api_version is one Azure supports")
            err.args = (err.message,)
        return err


def default_api_version(base: str) -> str | None:
    """The ``api-version`` a route gets when the user named none (module docstring): none for the
    v1 API, the Model Inference API's for a Foundry models endpoint, else Azure OpenAI's."""
    if base.endswith("/openai/v1"):
        return None
    if base.endswith("/models"):
        return MODELS_ENDPOINT_API_VERSION
    return DEFAULT_API_VERSION
