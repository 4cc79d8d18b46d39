"""Claude on Vertex AI (``vertex/claude-sonnet-4-5@20250929``): the Messages API behind Google's auth.

Vertex AI serves Anthropic's models under the publisher ``anthropic``:
``POST {root}/publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict`` for SSE),
with the root of Gemini on Vertex (:mod:`.vertex_urls`: project, location, host
``aiplatform.googleapis.com`` for ``global``). The body is the Anthropic Messages body without
``model`` (the URL names it) and with ``anthropic_version: "vertex-2023-10-16"`` (a body field
here, not a header); answers and SSE events are Anthropic's. So this adapter *is* the Anthropic
adapter (its encoder, the Claude rules, its response parser and stream decoder, unchanged) with
the Vertex row's credentials, project, quota project and URL: the ``vertex`` row's Gemini adapter
hands calls for a Claude model to it (``GeminiAdapter.for_model``), and lends it its
:meth:`prepare_config` and :meth:`bearer_source`, so one token cache serves both publishers.

What Vertex AI lacks beside the Messages API: an image or PDF by URL (``source.type: url``) is not
taken, so such attachments are downloaded by cloverleaf and sent inline (``url_*_input`` off);
there is no API-key (express) mode for partner models. Beta features travel in the
``anthropic-beta`` header as on Anthropic's API, but only those Vertex AI takes: a client's
others are renamed or dropped (:mod:`.vertex_betas`), since one it does not take fails the call. Errors come in two envelopes: Anthropic's
(``{"type": "error", "error": {"type": "overloaded_error"}}``, from the model) and Google's
(``{"error": {"code", "status"}}``, from Vertex AI itself: auth, quota, an unknown model), read by
the Gemini adapter's mapping, which names the Google credentials rather than an Anthropic key.

Prices: the Anthropic list price on the ``global`` endpoint; on a regional endpoint Claude Sonnet
4.5 and later models cost 10% more (Anthropic's "Claude on Vertex AI" page, "Global vs regional
endpoints": "Regional endpoints include a 10% pricing premium over global endpoints"; older
models keep their single price).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from ..._capabilities import Capabilities
from ..._errors import AuthenticationError, ConfigError, ProviderError
from ..._http import HttpRequest, HttpResponse, json_body
from .._common import claude_reasoning_source
from ..anthropic.adapter import AnthropicAdapter, beta_names
from ..anthropic.messages import encode_chat
from ..base import Adapter, ProviderConfig, split_query, with_query
from .vertex_betas import vertex_betas
from .vertex_urls import VERSIONED, model_path, quota_headers, vertex_root

if TYPE_CHECKING:
    from ..._types import ChatRequest
    from ..bearer import BearerSource
    from ..spec import ProviderSpec

#: The ``anthropic_version`` Vertex AI takes, in the body.
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
#: Regional endpoints bill these models (Sonnet 4.5 and everything after it) 10% above global.
REGIONAL_PREMIUM = 1.10
#: Models from before the global/regional split: one price wherever they run.
_SINGLE_PRICE = re.compile(r"^claude-(3|instant|2|sonnet-4(@|$)|opus-4(@|$)|opus-4-1(@|$))")

log = logging.getLogger("cloverleaf.providers")


def is_claude(model: str) -> bool:
    """A model of the publisher ``anthropic`` (``claude-...``, or ``publishers/anthropic/models/...``)."""
    return model.startswith(("claude-", "publishers/anthropic/"))


class VertexClaudeAdapter(AnthropicAdapter):
    """The Anthropic adapter, reached through Vertex AI. ``host`` is the ``vertex`` row's adapter
    (what knows the Google credentials); it is asked at each call, never copied."""

    config_keys: ClassVar[frozenset[str]] = frozenset()
    operation_paths: ClassVar[dict[str, str]] = {}
    default_capabilities: ClassVar[Capabilities] = AnthropicAdapter.default_capabilities.with_(
        url_image_input=False, url_pdf_input=False)

    def __init__(self, spec: ProviderSpec, host: Adapter) -> None:
        super().__init__(spec)
        self.host = host
        self.capabilities = self.default_capabilities   # not the row's (Gemini's): audio, gs:// ...

    @property
    def reasoning_source(self) -> str:
        """Claude's thinking, marked as Claude's (``vertex#claude``): its signatures verify on
        Anthropic's API and on Bedrock too, and never on the row's Gemini."""
        return claude_reasoning_source(self.name)

    # -- configuration -------------------------------------------------------------------
    def prepare_config(self, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderConfig:
        if cfg.api_key:
            raise ConfigError("Claude on Vertex AI takes Google credentials, not an API key (express mode "
                              "serves Gemini only): drop api_key and set credentials_file or "
                              "GOOGLE_APPLICATION_CREDENTIALS")
        return self.host.prepare_config(cfg, env)

    def bearer_source(self, cfg: ProviderConfig) -> BearerSource | None:
        return self.host.bearer_source(cfg)

    def with_client_betas(self, cfg: ProviderConfig, betas: tuple[str, ...]) -> ProviderConfig:
        """The caller's beta features that Vertex AI takes (renamed where its name differs); the
        others are dropped, said in the debug log: Vertex AI refuses a call naming one it lacks."""
        kept, dropped = vertex_betas(betas)
        if dropped:
            log.debug("anthropic-beta %s left out for Claude on Vertex AI (provider %s): Vertex AI does not take "
                      "them", ", ".join(dropped), self.name)
        return super().with_client_betas(cfg, tuple(kept)) if kept else cfg

    def price_keys(self, model: str) -> list[str]:
        """``claude-sonnet-4-5@20250929`` is priced as ``anthropic/claude-sonnet-4-5``."""
        name = model.removeprefix("publishers/anthropic/models/").partition("@")[0]
        return [f"{self.name}/{name}", f"anthropic/{name}"]

    def price_factor(self, model: str, cfg: ProviderConfig) -> float:
        """The regional endpoint's 10% premium for Sonnet 4.5 and later models."""
        location = str(cfg.extra.get("location") or "global")
        name = model.removeprefix("publishers/anthropic/models/")
        return 1.0 if location == "global" or _SINGLE_PRICE.match(name) else REGIONAL_PREMIUM

    # -- request -------------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        body = encode_chat(self, req, cfg)
        body.pop("model", None)
        body = {"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body}   # extra_body may name another
        headers = {"content-type": "application/json", "accept": "text/event-stream" if req.stream
                   else "application/json", **quota_headers(cfg)}
        betas = beta_names(cfg.extra.get("beta"))
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        headers.update(cfg.headers)
        method = "streamRawPredict" if req.stream else "rawPredict"
        return HttpRequest("POST", self._url(cfg, req.model, method), headers, json_body(body), stream=req.stream,
                           timeout=cfg.timeout)

    @staticmethod
    def _url(cfg: ProviderConfig, model: str, method: str) -> str:
        """``{root}/publishers/anthropic/models/{model}:{method}``; a base URL naming a version is
        a publisher root already (its ``/publishers/google`` becomes ``/publishers/anthropic``)."""
        base, query = split_query(cfg.base_url)
        base = base.rstrip("/")
        if VERSIONED.search(base):
            root = re.sub(r"/publishers/[^/]+$", "", base) + "/publishers/anthropic"
        else:
            root = vertex_root(cfg, base, "anthropic", express_ok=False)
        model = model_path(model.removeprefix("publishers/anthropic/models/"), "vertex")
        return with_query(f"{root}/models/{model}:{method}", query)

    # -- errors --------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        """Anthropic's envelope as the Anthropic adapter reads it; Google's (and any refused
        credential) as the Gemini adapter does, with its hint about the Google credentials."""
        if _google_envelope(resp):
            return self.host.parse_error(resp, model)
        error = super().parse_error(resp, model)
        return self.host.parse_error(resp, model) if isinstance(error, AuthenticationError) else error


def _google_envelope(resp: HttpResponse) -> bool:
    """``{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}`` (or a list of one): Vertex AI's own."""
    try:
        data = resp.json()
    except ValueError:
        return False
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, dict) and ("status" in error or isinstance(error.get("code"), int)) \
        and data.get("type") != "error"
