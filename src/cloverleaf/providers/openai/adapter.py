"""OpenAI Chat Completions, embeddings and images: the adapter every compatible service shares.

OpenAI itself, Groq, Together, Mistral, DeepSeek, Fireworks, OpenRouter, Perplexity, xAI,
LM Studio, vLLM, LocalAI and any ``base_url`` speaking ``/chat/completions`` are registry
rows of kind ``openai`` served by this one class; where they differ, a :class:`Dialect`
(looked up by row name, overridable from ``ProviderConfig.extra``) says how. Azure OpenAI
subclasses it and changes only the URL, the auth header and its content-filter rules.

The pieces live next door: request encoding in ``.messages``, the stream decoder in
``.stream``, error classification in ``.errors``. This module turns them into
the :class:`~cloverleaf.providers.base.Adapter` contract and parses the non-stream answers.

A ``message.refusal`` (structured-output refusal) becomes the response text with
``finish_reason="content_filter"`` and is also kept in ``metadata.extra["refusal"]``.
Perplexity's ``citations`` and ``search_results`` are kept in ``metadata.extra`` under those names.
Ollama reached at ``/v1`` (a ``chat_completions`` row, or ``ollama_api = "openai_chat"``) refuses
``reasoning_effort`` for a model without thinking with a 400 (``"llama3.1" does not support
thinking``): on that exact refusal the call is sent once more without reasoning and the model is
remembered per server (:mod:`..ollama.thinking`), as the native Ollama adapter does; no other
server says it, and no other 400 is sent again. Likewise OpenAI's 400 for ``max_tokens`` or a
sampling value sent to a reasoning model whose name does not say so (an Azure deployment, a newer
model): sent once more by the reasoning models' rules, the model remembered (:mod:`.reasoning_refusals`).
OpenAI's ``url_citation`` annotations are citations of the text, and ``message.audio`` is kept in
``metadata.extra["audio"]`` (see :mod:`.answer_extras`). Custom (freeform) tools' calls and a legacy
``function_call`` are tool calls too (see :mod:`.call_shapes`).
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..._capabilities import Capabilities
from ..._errors import ProviderError
from ..._http import HttpRequest, HttpResponse, json_body
from ..._types import (
    ChatResponse,
    EmbeddingResponse,
    GeneratedImage,
    ImageResponse,
    Part,
    Reasoning,
    ResponseMetadata,
    Text,
    ToolCall,
    Usage,
)
from ...streams.accumulate import parse_arguments
from ...streams.call_ids import answer_salt, made_up_call_id
from .._common import read_json
from ..base import Adapter, ProviderConfig, base_url_join, single
from ..ollama.thinking import NoThinkingModels, says_no_thinking
from . import reasoning_details
from .answer_extras import annotation_citations
from .call_shapes import CUSTOM, answer_calls, is_custom, name_and_arguments
from .errors import classify, error_info, hint_for
from .messages import DIALECT_FIELDS, Dialect, encode_request
from .reasoning_refusals import says_reasoning_rules
from .stream import (
    OpenAIStreamDecoder,
    content_pieces,
    normalise_finish,
    reasoning_extras,
    reasoning_text,
    usage_from,
)

if TYPE_CHECKING:
    from ..._types import ChatRequest, EmbeddingRequest, ImageRequest
    from ..spec import ProviderSpec

#: Where each built-in row departs from api.openai.com (unlisted rows: the plain dialect).
DIALECTS: dict[str, Dialect] = {
    "openai": Dialect(embedding_base64=True, embedding_token_ids=True),
    "openrouter": Dialect(reasoning_param="object", reasoning_echo="reasoning_details", usage_cost=True),
    # Mistral puts usage in its finish chunk unasked; its recorded stream request has no stream_options.
    # It refuses tool-call ids other than nine letters and digits (a history begun on another row).
    "mistral": Dialect(stream_usage=False, mistral_tool_ids=True),
    # Thinking mode (deepseek-reasoner, V3.2 and later) needs each tool-calling turn's reasoning
    # back, or the next turn of the tool loop is a 400 (api-docs.deepseek.com/guides/thinking_mode).
    "deepseek": Dialect(reasoning_echo="reasoning_content"),
}

#: Cached URLs/headers and dialects per adapter are dropped wholesale beyond this many.
MAX_PREPARED = 1024

#: Perplexity's top-level fields naming an answer's sources, kept as they came.
_SOURCES = ("citations", "search_results")

_IMAGE_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


class OpenAIAdapter(Adapter):
    kind: ClassVar[str] = "openai"
    default_capabilities: ClassVar[Capabilities] = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        embeddings=True, image_generation=True, image_input=True, pdf_input=True, audio_input=True,
        reasoning=True, url_image_input=True, system_attachments=True,
    )

    #: The dialect of rows not listed in DIALECTS (custom ``[providers.X]`` rows of this kind).
    default_dialect: ClassVar[Dialect] = Dialect()
    config_keys: ClassVar[frozenset[str]] = DIALECT_FIELDS
    config_booleans: ClassVar[frozenset[str]] = frozenset({"stream_usage", "pdf_url", "embedding_base64",
                                                           "embedding_token_ids", "usage_cost", "mistral_tool_ids"})
    operation_paths: ClassVar[dict[str, str]] = {
        "chat": "/chat/completions", "embeddings": "/embeddings", "images": "/images/generations"}

    def __init__(self, spec: ProviderSpec) -> None:
        super().__init__(spec)
        base = DIALECTS.get(self.name) or self.default_dialect
        self._dialect = replace(base, pdf_url=base.pdf_url or self.capabilities.url_pdf_input)
        #: Per (config, path, model): the URL and the headers, built once (a config is not
        #: changed after the engine resolved it); the entry holds the config, so an id is
        #: never mistaken for a later object's.
        self._prepared: dict[tuple[int, str, str], tuple[ProviderConfig, str, dict[str, str]]] = {}
        self._dialects: dict[int, tuple[ProviderConfig, Dialect]] = {}
        #: (server, model) pairs an Ollama at /v1 refused reasoning for (see the module's docstring).
        self._no_thinking = NoThinkingModels()
        #: (server, model) pairs that refused max_tokens or sampling as reasoning models do (the same
        #: bounded memory; see .reasoning_refusals)
        self._reasoning_rules = NoThinkingModels()

    def dialect(self, cfg: ProviderConfig | None = None) -> Dialect:
        """This row's dialect, with any per-config overrides from ``cfg.extra``."""
        if cfg is None or not cfg.extra:
            return self._dialect
        cached = self._dialects.get(id(cfg))
        if cached is not None and cached[0] is cfg:
            return cached[1]
        dialect = self._dialect.with_extra(cfg.extra)
        if len(self._dialects) >= MAX_PREPARED:
            self._dialects.clear()
        self._dialects[id(cfg)] = (cfg, dialect)
        return dialect

    # -- transport details (Azure overrides these two) --------------------------------------
    def endpoint(self, cfg: ProviderConfig, path: str, model: str) -> str:
        return base_url_join(cfg.base_url or self.spec.base_url, path)

    def auth_headers(self, cfg: ProviderConfig) -> dict[str, str]:
        return {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}

    def _post(self, cfg: ProviderConfig, path: str, body: dict[str, Any], *, stream: bool = False) -> HttpRequest:
        """POST ``body`` to ``path`` (``body["model"]`` picks an Azure deployment when needed)."""
        model = body.get("model") or ""
        key = (id(cfg), path, model)
        prepared = self._prepared.get(key)
        if prepared is None or prepared[0] is not cfg:
            # Accept stays application/json for streams too, as the recorded (accepted) SDK requests send it.
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            headers.update(self.auth_headers(cfg))
            headers.update(cfg.headers)
            prepared = (cfg, self.endpoint(cfg, path, model), headers)
            if len(self._prepared) >= MAX_PREPARED:
                self._prepared.clear()
            self._prepared[key] = prepared
        return HttpRequest("POST", prepared[1], dict(prepared[2]), json_body(body), stream=stream,
                           timeout=cfg.timeout)

    # -- chat ------------------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        self.require_inputs(req)
        if req.reasoning is not None and self._no_thinking.has(self._server(cfg), req.model):
            req = replace(req, reasoning=None)
        body = encode_request(req, self.dialect(cfg), provider=self.name,
                              rules_model=self.underlying_model(req.model, cfg),
                              reasoning_model=self._reasoning_rules.has(self._server(cfg), req.model) or None)
        return self._post(cfg, "chat/completions", body, stream=req.stream)

    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        data = read_json(self, resp, req.model)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            if isinstance(data, dict) and data.get("error"):
                raise self.stream_error(data, req.model)
            raise self.malformed("no choices in the response", resp, req.model)
        choice = choices[0]
        message = choice.get("message") or {}
        raw_finish = choice.get("finish_reason")
        model = data.get("model") or req.model
        if choice.get("error"):
            # OpenRouter: the upstream failed after generation started (finish_reason "error")
            raise self.stream_error({"error": choice["error"]}, model)
        self.check_finish(raw_finish, model, choice)
        finish = normalise_finish(raw_finish)
        extra = self.chunk_extra(data) or {}
        text = _plain_text(message)
        if text is not None:   # the common answer: its text and nothing else to look for
            parts: list[Part] = [Text(text)] if text else []
        else:
            parts = self._message_parts(message, data.get("id"), req)
            _sources_and_audio(message, parts, extra)
        if text is None and message.get("refusal"):
            extra["refusal"] = message["refusal"]
            if not any(isinstance(p, Text) for p in parts):
                parts.append(Text(message["refusal"], extra={"refusal": True}))
            finish = "content_filter"
        if text is None and finish in (None, "stop") and any(isinstance(p, ToolCall) for p in parts):
            finish = "tool_calls"
        return ChatResponse(
            parts=parts,
            model=model,
            provider=self.name,
            finish_reason=finish,
            usage=usage_from(data.get("usage"), data.get("service_tier")) or Usage(reported=False),
            metadata=ResponseMetadata(response_id=data.get("id") or None, raw_finish_reason=raw_finish,
                                      extra=extra),
        )

    def _message_parts(self, message: dict[str, Any], answer_id: Any, req: ChatRequest) -> list[Part]:
        """The answer's parts; a tool call sent without an id gets one made from ``answer_id``, the
        request's history and its index, as the stream decoder makes it (:mod:`cloverleaf.streams.call_ids`)."""
        parts: list[Part] = []
        salt: str | None = None
        text = reasoning_text(message)
        signature, redacted = reasoning_extras(message)
        details = reasoning_details.received(message)
        if text or signature or redacted or details:
            parts.append(Reasoning(text or "", signature=signature, redacted=redacted, provider=self.name,
                                   extra=details))
        for kind, piece in content_pieces(message.get("content")):
            last = parts[-1] if parts else None
            if kind == "reasoning":
                if isinstance(last, Reasoning):
                    last.text += piece
                else:
                    parts.append(Reasoning(piece, provider=self.name))
            elif isinstance(last, Text):
                last.text += piece
            else:
                parts.append(Text(piece))
        for i, call in enumerate(answer_calls(message)):   # custom and legacy calls too (see .call_shapes)
            name, raw = name_and_arguments(call)
            call_id = call.get("id")
            if not call_id:
                salt = salt or answer_salt(answer_id, req.messages)
                call_id = made_up_call_id(salt, i)
            parts.append(ToolCall(id=call_id, name=name, arguments=parse_arguments(raw), raw_arguments=raw,
                                  extra=dict(CUSTOM) if is_custom(call) else None))
        return parts

    def resend_after(self, refusal: HttpResponse, req: ChatRequest, cfg: ProviderConfig) -> bool:
        """Once more without reasoning after Ollama's 400 for a model without thinking (the model
        remembered for this server): only that exact refusal, naming this model, of a call that
        asked for reasoning. Once more by the reasoning models' rules after OpenAI's 400 for
        ``max_tokens`` or sampling (:mod:`.reasoning_refusals`), unless they were applied already."""
        server = self._server(cfg)
        if says_reasoning_rules(refusal, req) and not self._reasoning_rules.has(server, req.model):
            self._reasoning_rules.add(server, req.model)   # see .reasoning_refusals
            return True
        if req.reasoning is None or not says_no_thinking(refusal, req.model):
            return False
        self._no_thinking.add(server, req.model)
        return True   # (the engine sends it once more at most)

    def _server(self, cfg: ProviderConfig) -> str:
        return cfg.base_url or self.spec.base_url

    def stream_decoder(self, req: ChatRequest) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(self, req)

    # -- hooks the stream decoder and parse_chat share (Azure overrides) ------------------
    def check_finish(self, raw_finish: str | None, model: str | None, choice: dict[str, Any] | None = None) -> None:
        """Raise for a finish reason that is an error on this service (none on OpenAI); ``choice``
        is the choice (or stream chunk's choice) that finished."""

    def chunk_extra(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """Provider fields to keep in ``metadata.extra``: OpenRouter's upstream provider, and
        Perplexity's sources (top-level ``citations``, the URLs its ``[1]`` markers number, and
        ``search_results``, each with title, url and date; on every chunk of a stream)."""
        upstream = chunk.get("provider")
        extra = {"upstream_provider": upstream} if isinstance(upstream, str) and upstream else None
        if "citations" in chunk or "search_results" in chunk:
            sources = {key: chunk[key] for key in _SOURCES if isinstance(chunk.get(key), list)}
            if sources:
                extra = {**(extra or {}), **sources}
        return extra

    def stream_error(self, payload: Any, model: str | None) -> ProviderError:
        """The error for an ``error`` object inside a 200 body or stream. Nothing answered it with an
        error status (the HTTP status was 200): unless the object carries one (OpenRouter's ``code``),
        its status is its kind's (a ``rate_limit_exceeded`` one is a 429, not a 500)."""
        info = error_info(payload)
        status = info.status or classify(500, info).default_status or 500
        body = _dumps(payload)
        return self._error(status, info, HttpResponse(status, {}, body.encode()), model)

    # -- errors ----------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        try:
            payload: Any = resp.json()
        except ValueError:
            payload = resp.text.strip()[:500] or None
        return self._error(resp.status, error_info(payload), resp, model)

    def _error(self, status: int, info: Any, resp: HttpResponse, model: str | None) -> ProviderError:
        cls = classify(status, info)
        message = info.message or f"HTTP {status}"
        hint = hint_for(cls, self.spec.key_env)
        if hint:
            message = f"{message} ({hint})"
        error = self.make_error(cls, message, resp, model=model, code=info.code or info.type)
        error.param = info.param
        return error

    # -- embeddings ------------------------------------------------------------------------
    def takes_token_ids(self, cfg: ProviderConfig) -> bool:
        return self.dialect(cfg).embedding_token_ids

    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest:
        inputs: list[Any] = list(req.inputs) if req.token_ids is None else [list(ids) for ids in req.token_ids]
        body: dict[str, Any] = {"model": req.model, "input": inputs}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        if self.dialect(cfg).embedding_base64:
            body["encoding_format"] = "base64"
        if req.extra_body:
            body.update(req.extra_body)
        return self._post(cfg, "embeddings", body)

    def parse_embed(self, resp: HttpResponse | list[HttpResponse], req: EmbeddingRequest) -> EmbeddingResponse:
        resp = single(resp)
        data = read_json(self, resp, req.model)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.malformed("no data in the embeddings response", resp, req.model)
        ordered = sorted(items, key=lambda item: item.get("index", 0))
        vectors = [_vector(item.get("embedding")) for item in ordered]
        usage = data.get("usage") or {}
        return EmbeddingResponse(
            vectors=vectors,
            model=data.get("model") or req.model,
            provider=self.name,
            usage=Usage(input_tokens=int(usage.get("prompt_tokens") or usage.get("total_tokens") or 0),
                        reported=bool(usage)),
        )

    # -- images ----------------------------------------------------------------------------
    def build_image(self, req: ImageRequest, cfg: ProviderConfig) -> HttpRequest:
        body: dict[str, Any] = {"model": req.model, "prompt": req.prompt, "n": req.n}
        if req.size:
            body["size"] = req.size
        underlying = self.underlying_model(req.model, cfg)
        if req.quality and not (req.quality == "auto" and underlying.startswith("dall-e-")):
            # DALL-E's "auto" is left to OpenAI's documented default (standard), so what is made is
            # known and billed as such, not read as "the best quality" and billed as hd
            body["quality"] = req.quality
        if req.response_format and not underlying.startswith("gpt-image"):
            body["response_format"] = req.response_format  # GPT image models always return b64
        if req.openai_options:   # style, background, output_format...: this API's own settings
            body.update(req.openai_options)
        if req.extra_body:
            body.update(req.extra_body)
        return self._post(cfg, "images/generations", body)

    def parse_image(self, resp: HttpResponse | list[HttpResponse], req: ImageRequest) -> ImageResponse:
        resp = single(resp)
        data = read_json(self, resp, req.model)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.malformed("no data in the images response", resp, req.model)
        asked = (req.openai_options or {}).get("output_format")   # Azure's answer may not say it again
        media = _IMAGE_MEDIA.get(str(data.get("output_format") or asked or "png").lower(), "image/png")
        images = []
        for item in items:
            b64 = item.get("b64_json")
            images.append(GeneratedImage(
                data=base64.b64decode(b64) if b64 else None,
                url=item.get("url"),
                media_type=media,
                revised_prompt=item.get("revised_prompt"),
            ))
        usage = data.get("usage") or {}
        details = usage.get("input_tokens_details") or {}
        return ImageResponse(images=images, model=req.model, provider=self.name,
                             usage=Usage(input_tokens=int(usage.get("input_tokens") or 0),
                                         output_tokens=int(usage.get("output_tokens") or 0), reported=bool(usage),
                                         image_input_tokens=int(details.get("image_tokens") or 0)))


def _vector(value: Any) -> list[float]:
    """An embedding from a JSON list or from base64 little-endian float32."""
    if isinstance(value, str):
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return [float(x) for x in value or ()]


def _dumps(payload: Any) -> str:
    try:
        return json.dumps(payload)
    except (TypeError, ValueError):
        return str(payload)


#: The keys of an answer's message that hold nothing but its text when the others are empty:
#: OpenAI's ``{"role", "content", "refusal": null, "annotations": []}`` and most servers' less.
_PLAIN_KEYS = frozenset(("role", "content", "refusal", "annotations"))


def _plain_text(message: dict[str, Any]) -> str | None:
    """The text of a message that is only text (a string ``content``, no refusal, annotations,
    reasoning, tool calls, audio or any other key), else None.

    Why: nearly every non-streamed answer is this, and :meth:`OpenAIAdapter._message_parts`
    with :func:`_sources_and_audio` looks for a dozen things it cannot hold (about 40 Python
    calls a request); what they would build from it is one ``Text``, which this gives directly,
    as the stream decoder's text-only delta path does for a chunk. Anything else, even an empty
    ``audio`` or an unknown key, takes the general path."""
    content = message.get("content")
    if type(content) is not str or not message.keys() <= _PLAIN_KEYS:
        return None
    if message.get("refusal") or message.get("annotations"):
        return None
    return content


def _sources_and_audio(message: dict[str, Any], parts: list[Part], extra: dict[str, Any]) -> None:
    """The annotations' sources on the answer's text, and its spoken audio in ``extra`` (its
    transcript the text when there is no other): see :mod:`.answer_extras`."""
    audio = message.get("audio")
    if isinstance(audio, dict) and audio:
        extra["audio"] = audio
        transcript = audio.get("transcript")
        if isinstance(transcript, str) and transcript and not any(isinstance(p, Text) for p in parts):
            parts.append(Text(transcript))
    citations = annotation_citations(message.get("annotations"))
    if citations:
        texts = [p for p in parts if isinstance(p, Text)]
        if texts:
            texts[-1].citations = [*(texts[-1].citations or ()), *citations]
        else:
            parts.append(Text("", citations=citations))
