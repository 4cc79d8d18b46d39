"""The native Google Gemini API (``generativelanguage.googleapis.com/v1beta``).

Requests go to ``{base}/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for streams, ``:embedContent``/``:batchEmbedContents`` for embeddings, ``generateContent``
with image output for image generation, ``:predict`` for Imagen's). The API key travels only in the
``x-goog-api-key`` header, never as the ``?key=`` query parameter, so it cannot end up in a
logged or traced URL.

A ``base_url`` that already names an API version (``.../v1beta1/projects/P/locations/L/
publishers/google`` on Vertex AI, say) is used as is: Vertex speaks the same request and
response shapes, so this adapter parses both.

Gemini on Vertex AI (the ``vertex`` row, or ``vertex = true``): without an API key, calls carry
``Authorization: Bearer`` with an access token from Google credentials (a service account key
or a gcloud login; :mod:`.vertex_auth` finds and reads them, :mod:`..bearer` caches the
tokens, the engine fetches them through its transport). The URL is
``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
publishers/google/models/{model}:{method}`` (host ``aiplatform.googleapis.com`` for location
``global``, the default); a ``base_url`` without a version gets that same path after it. The
environment (``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION``, the credential files) is read
only by :meth:`GeminiAdapter.prepare_config`, once, as Bedrock reads its region.

Shared rules (``_common``): ``tool_choice`` ``required``/``tool`` without tools is refused,
an effort is the same thinking budget as on Anthropic (``thinkingLevel`` on Gemini 3), and
reasoning from another provider is not replayed. Gemini has no switch for
``parallel_tool_calls``; it is not sent.

The conversation mapping lives in ``.messages``, the response/stream reading in
``.stream`` and the JSON Schema clean-up in ``.schema``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from ..._capabilities import Capabilities
from ..._errors import (
    AuthenticationError,
    ConfigError,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    error_class_for_status,
)
from ..._http import HttpRequest, HttpResponse, json_body
from ..._quota import retry_info_delay
from ..._types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    GeneratedImage,
    ImageRequest,
    ImageResponse,
    ResponseMetadata,
    ToolChoice,
    Usage,
)
from ...streams.accumulate import StreamAccumulator
from .._common import budget_for_effort, checked_tool_choice, read_json
from ..base import Adapter, ProviderConfig, generic_error_fields, split_query, with_query
from ..bearer import BearerSource
from ..extra_tools import gemini_tools
from .imagen import is_imagen, predict_bodies
from .imagen import read_predictions as imagen_predictions
from .messages import build_contents
from .schema import to_gemini_schema
from .stream import GeminiStreamDecoder, ResponseReader, finish_reason, first_candidate, usage_from
from .vertex_auth import VertexCredentials, find_credentials
from .vertex_claude import VertexClaudeAdapter, is_claude
from .vertex_embed import embed_requests, read_predictions
from .vertex_urls import DEFAULT_LOCATION, LOCATION, PROJECT, VERSIONED, model_path, quota_headers, vertex_root

#: ToolChoice.mode -> functionCallingConfig.mode
_CALLING_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}

#: EmbeddingRequest.input_type -> taskType
_TASK_TYPES = {
    "query": "RETRIEVAL_QUERY", "search_query": "RETRIEVAL_QUERY",
    "document": "RETRIEVAL_DOCUMENT", "search_document": "RETRIEVAL_DOCUMENT", "passage": "RETRIEVAL_DOCUMENT",
    "similarity": "SEMANTIC_SIMILARITY", "classification": "CLASSIFICATION", "clustering": "CLUSTERING",
    "code_query": "CODE_RETRIEVAL_QUERY", "question_answering": "QUESTION_ANSWERING",
    "fact_verification": "FACT_VERIFICATION",
}

#: batchEmbedContents takes at most this many requests
_EMBED_BATCH = 100

#: size ("1024x1024" or "16:9") -> imageConfig.aspectRatio
_ASPECT_RATIOS = {"1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3", "1792x1024": "16:9",
                  "1024x1792": "9:16"}

#: ErrorInfo reasons that mean the key itself is wrong or missing
_KEY_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED",
                "API_KEY_IP_ADDRESS_BLOCKED", "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED",
                "CONSUMER_INVALID", "ACCESS_TOKEN_EXPIRED", "CREDENTIALS_MISSING"}


class GeminiAdapter(Adapter):
    kind = "gemini"
    config_keys = frozenset({"api_version", "vertex", "credentials_file", "project", "location", "quota_project"})
    config_booleans = frozenset({"vertex"})
    # users copy ".../v1beta/models" from Google's docs; the adapter appends "/models/{model}:..." itself
    redundant_suffixes = ("/models",)
    default_capabilities = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        embeddings=True, image_generation=True, image_input=True, pdf_input=True, audio_input=True,
        reasoning=True,
        # by URL: Files API URIs and YouTube links (and gs://, https on Vertex AI); other URLs get an
        # InvalidRequestError from the adapter that says to use fetch="local"
        url_image_input=True, url_pdf_input=True, url_audio_input=True,
    )

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        #: Vertex AI's Google credentials and their access tokens (``tokens.clock``: tests move time).
        self.vertex = VertexCredentials(self.name)
        #: Claude on Vertex AI (``vertex/claude-...``): the Anthropic adapter's encoding, this row's auth.
        self._claude: VertexClaudeAdapter | None = None

    def for_model(self, model: str) -> Adapter:
        """Claude models on Vertex AI (publisher ``anthropic``) speak the Messages API, not Gemini's."""
        if not self.spec.extra.get("vertex") or not is_claude(model):
            return self
        if self._claude is None:
            self._claude = VertexClaudeAdapter(self.spec, self)
        return self._claude

    def price_keys(self, model: str) -> list[str]:
        adapter = self.for_model(model)
        return super().price_keys(model) if adapter is self else adapter.price_keys(model)

    # -- configuration -------------------------------------------------------------------
    def prepare_config(self, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """For Vertex AI: the location, the credential file and the project, once, at resolution.

        Location: ``location``, else ``GOOGLE_CLOUD_LOCATION``, else ``global``. Without an API key
        the credentials come from ``credentials_file``, ``GOOGLE_APPLICATION_CREDENTIALS`` or
        gcloud's ADC file (:func:`.vertex_auth.find_credentials`) and are read now, so a bad file is
        a ConfigError before any call. Project: ``project``, else ``GOOGLE_CLOUD_PROJECT``, else the
        service account's ``project_id``; a ``base_url`` that names its own path needs none.
        Quota project (sent as ``x-goog-user-project``): ``quota_project``, else
        ``GOOGLE_CLOUD_QUOTA_PROJECT``, else the credential file's ``quota_project_id`` (what
        ``gcloud auth application-default set-quota-project`` writes)."""
        if not self._is_vertex(cfg):
            return cfg
        env = os.environ if env is None else env
        extra = dict(cfg.extra)
        location = str(extra.get("location") or env.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION)
        if not LOCATION.match(location):
            raise ConfigError(f"vertex: {location!r} is not a Google Cloud location (us-central1, europe-west4, global)")
        extra["location"] = location
        project_id = quota_project = None
        if not cfg.api_key:
            source = find_credentials(extra.get("credentials_file"), env)
            extra["credentials_file"] = source.path
            credential = self.vertex.load(source.path)
            project_id, quota_project = credential.project_id, credential.quota_project_id
        quota_project = extra.get("quota_project") or env.get("GOOGLE_CLOUD_QUOTA_PROJECT") or quota_project
        if quota_project:
            if not PROJECT.match(str(quota_project)):
                raise ConfigError(f"vertex: quota project {quota_project!r} is not a Google Cloud project id")
            extra["quota_project"] = str(quota_project)
        project = extra.get("project") or env.get("GOOGLE_CLOUD_PROJECT") or project_id
        if project:
            if not PROJECT.match(str(project)):
                raise ConfigError(f"vertex: {project!r} is not a Google Cloud project id")
            extra["project"] = str(project)
        elif not cfg.api_key and not VERSIONED.search(split_query(cfg.base_url)[0]):
            raise ConfigError("vertex needs a Google Cloud project: set additional_config project = \"my-project\" "
                              "or GOOGLE_CLOUD_PROJECT (a service account key's project_id is used when it has one)")
        return dataclasses.replace(cfg, extra=extra)

    def bearer_source(self, cfg: ProviderConfig) -> BearerSource | None:
        """Vertex AI without an API key: access tokens from the credential file prepare_config found."""
        path = cfg.extra.get("credentials_file")
        if cfg.api_key or not path or not self._is_vertex(cfg):
            return None
        return self.vertex.source(str(path))

    # -- requests ------------------------------------------------------------------------
    def _url(self, cfg: ProviderConfig, model: str, method: str) -> str:
        """``{base}/models/{model}:{method}``; a query the base URL carries (a proxy's) stays
        at the end, after the method's own (``?alt=sse``)."""
        base, query = split_query(cfg.base_url)
        base = base.rstrip("/")
        if self._is_vertex(cfg) and not VERSIONED.search(base):
            base = self._vertex_base(cfg, base)
        elif not VERSIONED.search(base):
            base += "/" + str(cfg.extra.get("api_version", "v1beta"))
        model = model_path(model, self.name)   # a caller's name, in a path: no way out of it
        if not model.startswith("tunedModels/"):
            model = "models/" + model.removeprefix("models/")
        method, own_query = split_query(method)
        return with_query(f"{base}/{model}:{method}", "&".join(q for q in (own_query, query) if q))

    def _headers(self, cfg: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._is_vertex(cfg):
            headers.update(quota_headers(cfg))
        headers.update(cfg.headers)
        if cfg.api_key:
            headers["x-goog-api-key"] = cfg.api_key
        return headers

    @staticmethod
    def _is_vertex(cfg: ProviderConfig) -> bool:
        return "aiplatform.googleapis.com" in cfg.base_url or bool(cfg.extra.get("vertex"))

    @staticmethod
    def _vertex_base(cfg: ProviderConfig, base: str) -> str:
        """The ``google`` publisher root (:func:`.vertex_urls.vertex_root`)."""
        return vertex_root(cfg, base, "google")

    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        body: dict[str, Any] = {
            "contents": build_contents(self, req.messages, vertex=self._is_vertex(cfg), model=req.model),
        }
        if not body["contents"]:
            raise self.invalid("Gemini needs at least one user or assistant message besides the system prompt",
                               model=req.model)
        system = req.system_text
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if req.tools:
            body["tools"] = [{"functionDeclarations": [_declaration(t) for t in req.tools]}]
        choice = checked_tool_choice(req, self.name)
        if choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
        generation = self._generation_config(req)
        if generation:
            body["generationConfig"] = generation
        if req.extra_body:   # its tools (google_search, code_execution...) join the caller's functions
            extra = dict(req.extra_body)
            if "tools" in extra:
                extra["tools"] = gemini_tools(body.get("tools"), extra["tools"])
            _merge(body, extra)
        method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
        return HttpRequest("POST", self._url(cfg, req.model, method), self._headers(cfg), json_body(body),
                           stream=req.stream, timeout=cfg.timeout)

    def _generation_config(self, req: ChatRequest) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if req.temperature is not None:
            config["temperature"] = req.temperature
        if req.top_p is not None:
            config["topP"] = req.top_p
        if req.max_tokens is not None:
            config["maxOutputTokens"] = req.max_tokens
        if req.stop:
            config["stopSequences"] = list(req.stop)
        if req.seed is not None:
            config["seed"] = req.seed
        fmt = req.response_format
        if fmt is not None and fmt.type != "text":
            config["responseMimeType"] = "application/json"
            if fmt.type == "json_schema":
                if not fmt.schema:
                    raise self.invalid("response_format json_schema needs a schema", model=req.model)
                config["responseJsonSchema"] = to_gemini_schema(fmt.schema)
        if req.reasoning is not None:
            config["thinkingConfig"] = _thinking_config(req)
        return config

    # -- responses -----------------------------------------------------------------------
    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        data = read_json(self, resp, req.model)
        reader = ResponseReader(self, req.model)
        acc = StreamAccumulator(req.model, self.name)
        for event in reader.chunk(data):
            acc.add(event)
        for event in reader.finish(require_finish=False):
            acc.add(event)
        return acc.response()   # the finish message rides on the done event (metadata.extra)

    def stream_decoder(self, req: ChatRequest) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self, req.model)

    # -- embeddings ----------------------------------------------------------------------
    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        """One text: ``embedContent``. Several: ``batchEmbedContents``, in batches of at most
        100 (the API's limit), as a list of requests the engine sends and hands back in order."""
        if not req.inputs:
            raise self.invalid("embeddings need at least one input", model=req.model)
        if self._is_vertex(cfg):
            task = self._task_type(req.input_type, req.model) if req.input_type else None
            built = [HttpRequest("POST", self._url(cfg, req.model, "predict"), self._headers(cfg), json_body(body),
                                 timeout=cfg.timeout) for body in embed_requests(req, task)]
            return built[0] if len(built) == 1 else built
        model = "models/" + req.model.removeprefix("models/")
        requests = [self._embed_request(req, model, text) for text in req.inputs]
        if len(requests) == 1:
            return self._embed_http(cfg, req, "embedContent", requests[0])
        batches = [requests[i:i + _EMBED_BATCH] for i in range(0, len(requests), _EMBED_BATCH)]
        built = [self._embed_http(cfg, req, "batchEmbedContents", {"requests": batch}) for batch in batches]
        return built[0] if len(built) == 1 else built

    def _embed_http(self, cfg: ProviderConfig, req: EmbeddingRequest, method: str, body: dict[str, Any]) -> HttpRequest:
        if req.extra_body:
            _merge(body, req.extra_body)
        return HttpRequest("POST", self._url(cfg, req.model, method), self._headers(cfg), json_body(body),
                           timeout=cfg.timeout)

    def _embed_request(self, req: EmbeddingRequest, model: str, text: str) -> dict[str, Any]:
        item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if req.input_type:
            item["taskType"] = self._task_type(req.input_type, req.model)
        if req.dimensions is not None:
            item["outputDimensionality"] = req.dimensions
        return item

    def _task_type(self, input_type: str, model: str) -> str:
        task = _TASK_TYPES.get(input_type.lower())
        if task:
            return task
        if input_type.upper() in _TASK_TYPES.values():
            return input_type.upper()
        raise self.invalid(f"unknown embedding input_type {input_type!r} for Gemini; use one of "
                           f"{', '.join(sorted(_TASK_TYPES))} or a Gemini taskType", model=model)

    def parse_embed(self, resp: HttpResponse | list[HttpResponse], req: EmbeddingRequest) -> EmbeddingResponse:
        vectors: list[list[float]] = []
        usage = Usage()
        for one in resp if isinstance(resp, list) else [resp]:
            if _is_prediction(one):
                try:
                    found, tokens = read_predictions(one.json())
                except (ValueError, KeyError, TypeError):
                    raise self.malformed("no predictions[].embeddings.values in the response", one,
                                         req.model) from None
                vectors += found
                usage.reported = usage.reported and tokens is not None
                usage.input_tokens += tokens or 0
                continue
            try:
                data = one.json()
                items = data["embeddings"] if "embeddings" in data else [data["embedding"]]
                vectors += [[float(v) for v in item["values"]] for item in items]
            except (ValueError, KeyError, TypeError):
                raise self.malformed("no embeddings in the response", one, req.model) from None
            meta = data.get("usageMetadata")
            # the Gemini Developer API's batchEmbedContents reports no usage: unknown, not zero
            usage.reported = usage.reported and isinstance(meta, dict)
            usage.input_tokens += int((meta or {}).get("promptTokenCount") or 0)
        if len(vectors) != len(req.inputs):
            raise self.malformed(f"{len(vectors)} embeddings for {len(req.inputs)} inputs", None, req.model)
        return EmbeddingResponse(vectors, req.model, self.name, usage=usage)

    # -- images (Gemini image models answer generateContent with inlineData parts) ----------------
    def build_image(self, req: ImageRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        """Gemini image models make one image per call, so ``n`` images are ``n`` requests;
        Imagen models are another method (:mod:`.imagen`)."""
        if req.n < 1:
            raise self.invalid("n must be at least 1", model=req.model)
        if is_imagen(req.model):
            try:
                bodies = predict_bodies(req)
            except ValueError as exc:
                raise self.invalid(str(exc), model=req.model) from None
            built = [HttpRequest("POST", self._url(cfg, req.model, "predict"), self._headers(cfg), json_body(body),
                                 timeout=cfg.timeout) for body in bodies]
            return built[0] if len(built) == 1 else built
        generation: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
        if req.size:
            ratio = _ASPECT_RATIOS.get(req.size, req.size)
            if not re.fullmatch(r"\d+:\d+", ratio):
                raise self.invalid(f"size {req.size!r}: Gemini takes an aspect ratio such as '1:1' or '16:9'",
                                   model=req.model)
            generation["imageConfig"] = {"aspectRatio": ratio}
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": req.prompt}]}],
                                "generationConfig": generation}
        if req.extra_body:
            _merge(body, req.extra_body)
        http = HttpRequest("POST", self._url(cfg, req.model, "generateContent"), self._headers(cfg),
                           json_body(body), timeout=cfg.timeout)
        return http if req.n == 1 else [http] * req.n

    def parse_image(self, resp: HttpResponse | list[HttpResponse], req: ImageRequest) -> ImageResponse:
        if is_imagen(req.model):
            return self._imagen_images(resp if isinstance(resp, list) else [resp], req)
        if isinstance(resp, list):
            parsed = [self.parse_image(one, req) for one in resp]
            usage = Usage()
            for one in parsed:
                usage = usage + one.usage
            return ImageResponse([image for one in parsed for image in one.images], parsed[0].model, self.name,
                                 usage=usage, metadata=parsed[-1].metadata)
        data = read_json(self, resp, req.model)
        if not isinstance(data, dict):
            raise self.malformed("the body is not a JSON object", resp, req.model)
        if not data.get("candidates"):
            ResponseReader(self, req.model).check_prompt_blocked(data)
        images: list[GeneratedImage] = []
        texts: list[str] = []
        for candidate in data.get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                inline = part.get("inlineData")
                if inline and str(inline.get("mimeType", "")).startswith("image/"):
                    images.append(GeneratedImage(data=base64.b64decode(inline["data"]),
                                                 media_type=inline["mimeType"]))
                elif part.get("text") and not part.get("thought"):
                    texts.append(part["text"])
        if not images:
            raise self._no_image(data, texts, resp, req.model)
        if texts:
            images[0].revised_prompt = "".join(texts)
        model = str(data.get("modelVersion") or req.model).removeprefix("models/")
        return ImageResponse(images, model, self.name, usage=usage_from(data.get("usageMetadata")),
                             metadata=ResponseMetadata(response_id=data.get("responseId")))

    def _imagen_images(self, resps: list[HttpResponse], req: ImageRequest) -> ImageResponse:
        """Imagen's answer: the images made, or a content filter when it withheld every one.
        Imagen bills per image and reports no tokens, so the usage is unknown, not zero."""
        try:
            images, withheld = imagen_predictions([read_json(self, r, req.model) for r in resps])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.malformed(f"no predictions[].bytesBase64Encoded in the response ({exc})", resps[0],
                                 req.model) from None
        if not images:
            why = "; ".join(dict.fromkeys(withheld)) or "no reason given"
            raise ContentFilterError(f"Imagen made no image: its safety filter withheld them ({why}); rephrase "
                                     "the prompt", provider=self.name, model=req.model, status=resps[0].status,
                                     body=resps[0].text[:4000], code="raiFilteredReason")
        return ImageResponse(images, req.model, self.name, usage=Usage(reported=False))

    def _no_image(self, data: dict[str, Any], texts: list[str], resp: HttpResponse, model: str) -> ProviderError:
        """Why an image answer holds no image. A filter's stop (``IMAGE_SAFETY``,
        ``IMAGE_PROHIBITED_CONTENT``, ``SAFETY``...) is the prompt's matter, a ContentFilterError
        (a 400 through the server) naming it, not a 502 "malformed response"; any other stop is
        still malformed, with Gemini's reason and words in the message."""
        candidate = first_candidate(data.get("candidates") or []) or {}
        raw = candidate.get("finishReason")
        said = candidate.get("finishMessage") or "".join(texts)[:300]
        if finish_reason(raw) == "content_filter":
            return ContentFilterError(
                f"Gemini made no image: its filter stopped it ({raw})" + (f": {said}" if said else "")
                + "; rephrase the prompt or adjust safetySettings",
                provider=self.name, model=model, status=resp.status, body=resp.text[:4000], code=raw)
        return self.malformed("no image in the response" + (f" (finishReason {raw})" if raw else "")
                              + (f" (the model said: {said!r})" if said else ""), resp, model)

    # -- errors --------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        """Google errors are ``{"error": {"code", "message", "status", "details": [...]}}``; the
        ``status`` (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) and ``ErrorInfo.reason`` decide."""
        message, _ = generic_error_fields(resp)
        error = _error_object(resp)
        status_name = str(error.get("status") or "") or None
        raw_details = error.get("details")
        details: list[Any] = raw_details if isinstance(raw_details, list) else []
        reasons = {str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")}
        cls = _error_class(resp.status, status_name, reasons, message or "")
        code = next(iter(sorted(reasons & _KEY_REASONS)), None) or status_name
        text = message or f"HTTP {resp.status}"
        if cls is AuthenticationError:
            text += ("; check the Google credentials (`cloverleaf doctor` shows which file is used) and their "
                     "access to the project" if self.spec.extra.get("vertex") else "; check GEMINI_API_KEY (or GOOGLE_API_KEY)")
        elif status_name == "FAILED_PRECONDITION":
            text += ("; the Gemini API refuses this account or region, not the request: enable billing on the "
                     "project (Google AI Studio) or call from a supported region, or use another provider")
        err = self.make_error(cls, text, resp, model=model, code=code)
        delay = retry_info_delay(details)   # the wait the transport's own retries read too
        if delay is not None:
            err.retry_after = delay
        return err


# --------------------------------------------------------------------------- helpers


def _declaration(tool: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = tool.parameters or {}
    if params.get("properties") or params.get("type") not in (None, "object") or params.get("$ref"):
        decl["parametersJsonSchema"] = to_gemini_schema(params)
    else:
        decl["parametersJsonSchema"] = {"type": "object", "properties": {}}
    return decl


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _CALLING_MODE[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


def _thinking_config(req: ChatRequest) -> dict[str, Any]:
    reasoning = req.reasoning
    assert reasoning is not None
    config: dict[str, Any] = {"includeThoughts": True}
    if reasoning.budget_tokens is not None:
        config["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort is not None:
        if "gemini-3" in req.model:
            config["thinkingLevel"] = thinking_level(req.model, reasoning.effort)
        else:
            config["thinkingBudget"] = budget_for_effort(reasoning.effort)
    return config


#: The ``thinkingLevel`` values each Gemini 3 model takes (another is a 400): 3 Pro only low and
#: high, 3.1 Pro no minimal, Flash all four (ai.google.dev/gemini-api/docs/thinking#thinking-levels).
_LEVELS_3_PRO = ("low", "high")
_LEVELS_31_PRO = ("low", "medium", "high")
_ALL_LEVELS = ("minimal", "low", "medium", "high")


def thinking_level(model: str, effort: str) -> str:
    """The ``thinkingLevel`` a Gemini 3 ``model`` takes for ``effort``: the effort itself where the
    model has that level, else the next one up (medium on 3 Pro thinks at high, never less than
    asked), else its highest. ``reasoning_effort="medium"`` on gemini-3-pro was sent as is: a 400."""
    name = model.rsplit("/", 1)[-1]
    levels = (_LEVELS_31_PRO if name.startswith("gemini-3.1-pro") else
              _LEVELS_3_PRO if name.startswith("gemini-3-pro") else _ALL_LEVELS)
    if effort in levels:
        return effort
    order = _ALL_LEVELS.index(effort) if effort in _ALL_LEVELS else len(_ALL_LEVELS)
    return next((level for level in levels if _ALL_LEVELS.index(level) > order), levels[-1])


def _is_prediction(resp: HttpResponse) -> bool:
    """Vertex AI's ``:predict`` answer (``{"predictions": [...]}``), not the Gemini API's embedContent."""
    try:
        data = resp.json()
    except ValueError:
        return False
    return isinstance(data, dict) and "predictions" in data


def _merge(body: dict[str, Any], extra: dict[str, Any]) -> None:
    """``extra_body`` wins; nested objects (generationConfig...) are merged one level deep, and
    ``generationConfig.thinkingConfig`` one more (see :func:`_merged_thinking`)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            merged = {**body[key], **value}
            if key == "generationConfig":
                _merged_thinking(merged, body[key].get("thinkingConfig"), value.get("thinkingConfig"))
            body[key] = merged
        else:
            body[key] = value


def _merged_thinking(config: dict[str, Any], built: Any, given: Any) -> None:
    """A caller's own ``thinkingConfig`` (``{"thinkingLevel": "low"}`` in ``extra_body``) joins the
    one built from ``reasoning`` (``includeThoughts`` stays) and its level or budget replaces the
    built one: Gemini refuses ``thinkingLevel`` and ``thinkingBudget`` together (a 400). Either
    spelling (the API takes both): a caller's ``thinking_level`` went beside the built
    ``thinkingLevel``, two levels in one body, the built one not the caller's."""
    if not isinstance(built, dict) or not isinstance(given, dict):
        return
    amounts = ("thinkingLevel", "thinking_level", "thinkingBudget", "thinking_budget")
    if any(k in given for k in amounts):   # the caller's amount, in the spelling given, and no built one
        built = {k: v for k, v in built.items() if k not in amounts}
    config["thinkingConfig"] = {**built, **given}


def _error_object(resp: HttpResponse) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # streamGenerateContent without alt=sse answers errors as a JSON array
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _error_class(status: int, status_name: str | None, reasons: set[str], message: str) -> type[ProviderError]:
    if reasons & _KEY_REASONS or status_name == "UNAUTHENTICATED":
        return AuthenticationError
    if status_name == "RESOURCE_EXHAUSTED" or status == 429:
        return RateLimitError
    if status_name == "NOT_FOUND" or status == 404:
        return NotFoundError
    if status_name in ("PERMISSION_DENIED", "FAILED_PRECONDITION") or status == 403:
        # FAILED_PRECONDITION is the account or the region ("User location is not supported", "free
        # tier is not available in your country"): the request is fine, another target may serve it
        return PermissionDeniedError
    if status == 503 or status_name == "UNAVAILABLE":
        return OverloadedError
    if status >= 500 or status_name in ("INTERNAL", "DEADLINE_EXCEEDED"):
        return ServerError
    if status_name == "INVALID_ARGUMENT" and _is_context_overflow(message):
        # Gemini has no code for this: it is an INVALID_ARGUMENT whose message names the token limit
        return ContextWindowExceededError
    if status == 400:
        return InvalidRequestError
    return error_class_for_status(status)


def _is_context_overflow(message: str) -> bool:
    lowered = message.lower()
    return "token count" in lowered and "exceeds the maximum number of tokens" in lowered

