"""AWS Bedrock: the Converse API for chat, InvokeModel for embeddings and images, SigV4 auth.

Converse gives one request shape over every Bedrock chat model (Claude, Nova, Llama, Mistral,
DeepSeek, gpt-oss, ...), so this adapter translates to it rather than to each vendor's native
body. URLs are ``https://bedrock-runtime.{region}.amazonaws.com/model/{model}/{operation}``
with the model id percent-encoded whole (ids carry ``:`` and ARNs ``/``); ``base_url``
overrides the endpoint (VPC endpoints, tests).

Authentication: a Bedrock API key (``api_key`` / ``AWS_BEARER_TOKEN_BEDROCK``) is sent as a
bearer token; otherwise every request is SigV4-signed by ``.auth`` with credentials
from botocore's chain. The environment is read only by :meth:`BedrockAdapter.prepare_config`
(region, bearer token); a config that already names its region makes ``build_*`` a pure
function of (request, config, credentials, clock).

The Converse body is put together here (:meth:`BedrockAdapter.converse_body`) from parts that
each have a module: the conversation (``system`` and ``messages``, history from other providers,
documents) in :mod:`.messages`; the tools, the tool choice and structured output sent as a forced
tool in :mod:`.tool_config`; reasoning per model family and Claude's context edits in
:mod:`.reasoning_fields`; what Converse (or Claude there) refuses although other providers take
it (tool names, a temperature above 1, empty or blank stops and system text, Claude's prefill
ending in whitespace) in :mod:`.request_rules`. Claude's thinking budget, ``max_tokens`` and
sampling follow the same rules as on Anthropic's API (``claude_rules``).

Structured output comes back as the forced tool's call: the parser here and the stream decoder
(:mod:`.stream`) turn it into a Text part holding the JSON. ``extra={"structured_output":
"native"}`` instead uses Converse's ``outputConfig.textFormat`` for models that support it.
Which stop sequence ended a Claude answer is asked for (``additionalModelResponseFieldPaths``)
when the request has ``stop`` sequences and kept as ``metadata.extra["stop_sequence"]``, streamed
or not, as the Anthropic adapter keeps it. Converse has no ``seed``, ``user`` or parallel-tool-call
switch; those request fields are not sent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..._capabilities import Capabilities
from ..._errors import (
    ConfigError,
    ContentFilterError,
    ProviderError,
)
from ..._estimate import embedding_tokens as estimated_embedding_tokens
from ..._http import HttpRequest, HttpResponse, json_body
from ..._types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    Part,
    Reasoning,
    ResponseMetadata,
    Text,
    ToolCall,
    Usage,
)
from ...streams.eventstream import EventMessage
from .._common import read_json
from ..base import Adapter, ProviderConfig
from ..claude_rules import (
    adaptive_thinking,
    context_edits_for,
    effort_alone,
    ends_with_assistant,
    history_allows_thinking,
    max_tokens,
    sampling,
    thinking_budget,
    tool_choice_allows_thinking,
)
from ..extra_tools import with_extra_tools
from .auth import CredentialCache, config_file_region, sign_request
from .cache_points import without_cache_points, without_cache_ttls
from .citations import citations_from
from .errors import STALE_KEY_ERRORS, error_class, error_fields, explained, stream_error
from .invoke import (
    embed_bodies,
    embed_family,
    embedding_tokens,
    image_bodies,
    image_family,
    parse_embeddings,
    parse_images,
)
from .messages import converse_messages
from .model_ids import MODEL_ARN, PROFILE_GEOGRAPHY, is_claude, takes_cache_points, tool_forcing
from .reasoning_fields import final_assistant, reasoning_fields, with_context_management
from .request_rules import converse_tool_name, read_back, send_tool_names, stop_sequences, tool_name_map
from .request_rules import temperature as converse_temperature
from .stream import (
    STOP_REASONS,
    STOP_SEQUENCE_PATH,
    ConverseStreamDecoder,
    citations_block,
    matched_stop_sequence,
    response_extras,
    usage_from,
)
from .tool_config import structured_tool_name, tool_config_for

_REGION = re.compile(r"^[a-z0-9-]{4,30}$")
_MODEL_VERSION = re.compile(r"(-v\d+)?(:\d+)?$")


class BedrockAdapter(Adapter):
    kind = "bedrock"
    native_documents = True
    config_keys = frozenset({"region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile",
                             "structured_output", "model_family"})

    def price_keys(self, model: str) -> list[str]:
        """Bedrock ids carry a version the vendor's price omits (``...-20241022-v2:0``), and a
        cross-region inference profile puts a geography before the model id
        (``us.amazon.nova-pro-v1:0``): the profile bills what the model bills, so the id without
        the geography is tried too, else every profile id went unpriced and budgets refused it.
        The ARN of a foundation model or of a system inference profile names its model after the
        ``/`` and is priced as that model; an application inference profile's or a provisioned
        model's ARN names none, and stays unpriced (give its rates on the model's entry)."""
        keys: list[str] = []
        bare = MODEL_ARN.sub("", model)   # a foundation model's or a system inference profile's ARN
        for name in dict.fromkeys((model, bare, PROFILE_GEOGRAPHY.sub("", bare))):
            for key in (name, _MODEL_VERSION.sub("", name)):
                if f"{self.name}/{key}" not in keys:
                    keys.append(f"{self.name}/{key}")
        return keys
    default_capabilities = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        embeddings=True, image_generation=True, image_input=True, pdf_input=True, reasoning=True,
        storage_schemes=("s3",),
    )

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.credentials = CredentialCache()
        #: Signing clock; tests pin it. None: the current time.
        self.clock: Callable[[], datetime] | None = None

    # -- configuration -------------------------------------------------------------------
    def prepare_config(self, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """Fill the region and a Bedrock API key from the environment, once, at config time.

        Region: ``extra["region"]``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the profile's
        ``region`` in the shared config file (``auth.config_file_region``). Bearer key:
        ``api_key``, else ``AWS_BEARER_TOKEN_BEDROCK``. The only place this adapter reads
        ``os.environ``; ``build_*`` calls it only for a config that names no region.
        """
        env = os.environ if env is None else env
        extra = dict(cfg.extra)
        region = (extra.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
                  or config_file_region(env, extra.get("profile")))
        api_key = cfg.api_key or env.get("AWS_BEARER_TOKEN_BEDROCK") or None
        if not region and not (cfg.base_url and api_key):  # only a SigV4 signature or the default URL need it
            raise ConfigError(
                "bedrock needs an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), "
                "additional_config/extra region = \"us-east-1\", or region in the AWS profile's ~/.aws/config"
            )
        extra["region"] = region or "us-east-1"
        return dataclasses.replace(cfg, extra=extra, api_key=api_key)

    def _request(self, cfg: ProviderConfig, model: str, operation: str, body: bytes, *,
                 stream: bool = False) -> HttpRequest:
        if not cfg.extra.get("region"):
            cfg = self.prepare_config(cfg)
        region = str(cfg.extra["region"])
        if not _REGION.match(region):
            raise ConfigError(f"bedrock: {region!r} is not an AWS region name")
        endpoint = (cfg.base_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        headers = {"content-type": "application/json", "accept": accept}
        headers.update({k.lower(): v for k, v in cfg.headers.items()})
        req = HttpRequest("POST", f"{endpoint}/model/{quote(model, safe='')}/{operation}", headers, body,
                          stream=stream, timeout=cfg.timeout)
        if cfg.api_key:
            req.headers["authorization"] = f"Bearer {cfg.api_key}"
            return req
        when = self.clock() if self.clock is not None else None
        return sign_request(req, self.credentials.get(cfg.extra), region, when)

    # -- chat ------------------------------------------------------------------------------
    def takes_context_management(self, model: str, cfg: ProviderConfig | None = None) -> bool:
        return is_claude(model, cfg)   # Claude applies Anthropic's context edits on Bedrock too

    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        body = self.converse_body(req, cfg)
        operation = "converse-stream" if req.stream else "converse"
        return self._request(cfg, req.model, operation, json_body(body), stream=req.stream)

    def converse_body(self, req: ChatRequest, cfg: ProviderConfig) -> dict[str, Any]:
        claude = is_claude(req.model, cfg)
        system, messages = converse_messages(self, req, claude=claude)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        extra = dict(req.extra_body or {})
        fields = dict(extra.pop("additionalModelRequestFields", None) or {})
        adaptive = claude and adaptive_thinking(req)
        budget = None if not claude or adaptive or effort_alone(req.reasoning) else thinking_budget(self, req)
        if budget is not None and not (history_allows_thinking(final_assistant(messages), req.model,
                                                               prefill=ends_with_assistant(messages))
                                       and tool_choice_allows_thinking(req)):
            budget = None
        if req.reasoning is not None:
            fields = {**reasoning_fields(self, req, budget, adaptive=adaptive, claude=claude), **fields}
        if claude and req.context_management:
            edits = context_edits_for(req.context_management,
                                      thinking="thinking" in fields or req.reasoning is None)
            if edits is not None:
                fields = with_context_management(edits, fields)
        inference: dict[str, Any] = {}
        if claude:   # the model's own rules, as on Anthropic's API (claude_rules)
            limit = max_tokens(req, budget)
            temperature, top_p = sampling(req, thinking=adaptive or budget is not None)
        else:
            limit, temperature, top_p = req.max_tokens, converse_temperature(req), req.top_p
        if limit is not None:
            inference["maxTokens"] = limit
        if temperature is not None:
            inference["temperature"] = temperature
        if top_p is not None:
            inference["topP"] = top_p
        stops = stop_sequences(req, claude=claude)   # what Converse refuses left out (.request_rules)
        if stops:
            inference["stopSequences"] = stops
        if inference:
            body["inferenceConfig"] = inference
        if fields:
            body["additionalModelRequestFields"] = fields
        if stops and claude:   # which sequence matched: Claude says so only when asked (AWS's own example)
            body["additionalModelResponseFieldPaths"] = [STOP_SEQUENCE_PATH]
        # a thinking budget allows only auto/none tool choice; adaptive thinking (optional) allows forcing
        budgeted = isinstance(fields.get("thinking"), dict) and fields["thinking"].get("type") not in (
            "disabled", "adaptive")
        native = cfg.extra.get("structured_output") == "native"
        tool_config = tool_config_for(self, req, messages, forced_ok=not budgeted, native=native,
                                      forcing=tool_forcing(req.model, cfg))
        send_tool_names(tool_name_map(req, structured_tool_name(req)), messages, tool_config)   # .request_rules
        if tool_config:
            body["toolConfig"] = tool_config
        fmt = req.response_format
        if native and fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
            body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {
                "jsonSchema": {"name": fmt.name, "schema": json.dumps(fmt.schema)}}}}
        if isinstance(extra.get("toolConfig"), dict) and tool_config:   # its tools join the caller's
            joined = with_extra_tools(tool_config, extra["toolConfig"], converse_tool_name)
            extra["toolConfig"] = {**tool_config, **joined}
        body.update(extra)
        if takes_cache_points(req.model, cfg) is False:
            without_cache_points(body)
        elif not claude:
            without_cache_ttls(body)
        return body

    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        data = read_json(self, resp, req.model)
        message = (data.get("output") or {}).get("message") if isinstance(data, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise self.malformed("Converse response has no output.message.content", resp, req.model)
        structured = structured_tool_name(req)
        names = tool_name_map(req, structured)
        parts: list[Part] = []
        answer: str | None = None
        server_blocks: list[Any] = []
        for block in message["content"]:
            if "text" in block:
                parts.append(Text(block["text"]))
            elif "citationsContent" in block:
                # the generated text the citations support (AWS: CitationsContentBlock.content)
                texts, cited = citations_block(block["citationsContent"])
                if texts:
                    parts.append(Text("".join(texts), citations=citations_from(cited)))
            elif "reasoningContent" in block:
                rc = block["reasoningContent"]
                text = rc.get("reasoningText") or {}
                parts.append(Reasoning(text.get("text", ""), signature=text.get("signature"),
                                       redacted=rc.get("redactedContent"), provider=self.name))
            elif "toolUse" in block:
                use = block["toolUse"]
                if use.get("type") == "server_tool_use":
                    server_blocks.append(block)
                elif structured is not None and use.get("name") == structured:
                    answer = json.dumps(use.get("input"), separators=(",", ":"), ensure_ascii=False)
                else:
                    parts.append(ToolCall(use["toolUseId"], read_back(names, use["name"]), use.get("input") or {}))
            elif "toolResult" in block:
                server_blocks.append(block)
        raw = data.get("stopReason")
        finish = STOP_REASONS.get(raw or "", "other")
        if answer is not None:  # the forced tool's input *is* the answer text
            parts = [p for p in parts if not isinstance(p, Text)]
            calls_at = next((i for i, p in enumerate(parts) if isinstance(p, ToolCall)), len(parts))
            parts.insert(calls_at, Text(answer))
            if finish == "tool_calls" and calls_at == len(parts) - 1:
                finish = "stop"
        meta = ResponseMetadata(response_id=resp.header("x-amzn-requestid"), raw_finish_reason=raw)
        matched = matched_stop_sequence(data)
        if matched is not None:
            meta.extra["stop_sequence"] = matched
        if server_blocks:
            meta.extra["server_tool_blocks"] = server_blocks
        meta.extra.update(response_extras(data))   # the guardrail trace, additionalModelResponseFields
        return ChatResponse(parts=parts, model=req.model, provider=self.name, finish_reason=finish,
                            usage=usage_from(data.get("usage")), metadata=meta)

    def stream_decoder(self, req: ChatRequest) -> ConverseStreamDecoder:
        structured = structured_tool_name(req)
        return ConverseStreamDecoder(provider=self.name, model=req.model, structured_tool=structured,
                                     tool_names=tool_name_map(req, structured),
                                     on_exception=lambda msg: self.stream_error(msg, req.model))

    # -- embeddings --------------------------------------------------------------------------
    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        """One InvokeModel request, or a list of them when the batch needs several calls.

        Titan and Nova embed one text per call and Cohere up to 96, so a batch can need several
        requests. The engine sends every request of a list (in any order, concurrently if it
        likes) and gives :meth:`parse_embed` the responses as a list in the same order.
        """
        family = embed_family(req.model, cfg.extra.get("model_family"))
        if family is None:
            raise self.invalid(f"{req.model} is not a Bedrock embedding model cloverleaf knows (amazon.titan-embed-*, "
                               "amazon.nova-*embeddings*, cohere.embed-*); for an ARN set extra model_family", req.model)
        try:
            bodies = embed_bodies(family, req)
        except ValueError as exc:
            raise self.invalid(str(exc), req.model) from None
        requests = [self._request(cfg, req.model, "invoke", json_body(b)) for b in bodies]
        return requests[0] if len(requests) == 1 else requests

    def parse_embed(self, resp: HttpResponse | list[HttpResponse], req: EmbeddingRequest) -> EmbeddingResponse:
        resps = resp if isinstance(resp, list) else [resp]
        payloads = [read_json(self, r, req.model) for r in resps]
        try:
            vectors = parse_embeddings(payloads)
        except (ValueError, KeyError, TypeError) as exc:
            raise self.malformed(str(exc), resps[0] if resps else None, req.model) from None
        if len(vectors) != len(req.inputs):
            raise self.malformed(f"{len(vectors)} vectors for {len(req.inputs)} inputs", resps[0], req.model)
        counts = [embedding_tokens(p, r.header("x-amzn-bedrock-input-token-count"))
                  for p, r in zip(payloads, resps, strict=True)]
        known = [c for c in counts if c is not None]
        usage = (Usage(input_tokens=sum(known)) if len(known) == len(counts)   # a part uncounted: all estimated
                 else Usage(input_tokens=estimated_embedding_tokens(req.inputs), reported=False))
        return EmbeddingResponse(vectors, model=req.model, provider=self.name, usage=usage)

    # -- images --------------------------------------------------------------------------------
    def build_image(self, req: ImageRequest, cfg: ProviderConfig) -> HttpRequest | list[HttpRequest]:
        """One InvokeModel request (Titan/Nova Canvas: up to 5 images a call) or, for Stability,
        which makes one image per call, a list of ``n`` requests (see :meth:`build_embed`)."""
        family = image_family(req.model, cfg.extra.get("model_family"))
        if family is None:
            raise self.invalid(f"{req.model} is not a Bedrock image model cloverleaf knows (stability.*, "
                               "amazon.titan-image-generator-*, amazon.nova-canvas-*)", req.model)
        if req.response_format == "url":
            raise self.invalid("Bedrock returns images inline only; ask for b64_json", req.model)
        try:
            bodies = image_bodies(family, req)
        except ValueError as exc:
            raise self.invalid(str(exc), req.model) from None
        requests = [self._request(cfg, req.model, "invoke", json_body(b)) for b in bodies]
        return requests[0] if len(requests) == 1 else requests

    def parse_image(self, resp: HttpResponse | list[HttpResponse], req: ImageRequest) -> ImageResponse:
        resps = resp if isinstance(resp, list) else [resp]
        payloads = [read_json(self, r, req.model) for r in resps]
        try:
            images, refusal = parse_images(payloads)
        except (ValueError, TypeError) as exc:
            raise self.malformed(str(exc), resps[0] if resps else None, req.model) from None
        if refusal and not images:
            raise ContentFilterError(f"image refused: {refusal}", provider=self.name, model=req.model)
        return ImageResponse(images, model=req.model, provider=self.name)

    # -- errors ------------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        message, etype = error_fields(resp)
        if etype in STALE_KEY_ERRORS:
            self.credentials.forget()   # rotated keys on disk are read again by the next call
        message = explained(etype, message, model)
        return self.make_error(error_class(etype, resp.status, message), message, resp, model=model, code=etype or None)

    def stream_error(self, msg: EventMessage, model: str | None) -> ProviderError:
        """The error an in-stream ``exception`` (or ``error``) frame stands for."""
        return stream_error(msg, provider=self.name, model=model)


__all__ = ["BedrockAdapter", "structured_tool_name"]
