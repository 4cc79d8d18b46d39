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

Structured output: Converse has no JSON-schema mode shared by all models, so the schema is
sent as a tool (named after ``ResponseFormat.name``) that the model is forced to call
(``toolChoice: {tool}``, or ``{any}`` when the caller's own tools are also offered, or
``{auto}`` when Claude's extended thinking forbids forcing). The parser and the stream decoder
turn that tool call back into a Text part holding the JSON. ``extra={"structured_output":
"native"}`` instead uses Converse's ``outputConfig.textFormat`` for models that support it.

Reasoning is requested per model family through ``additionalModelRequestFields`` (Claude
``thinking`` and ``output_config.effort`` by the same rules as on Anthropic's API — adaptive
thinking for 4.6 and later when asked, and for any request on Opus 4.7 and later, which refuse a
budget — gpt-oss ``reasoning_effort``, Qwen ``reasoning_config``, Nova ``reasoningConfig``;
``reasoning=0`` asks none of them for reasoning);
Claude's budget is left out of a tool loop whose last assistant turn lost its signed thinking, and
of a request that forces a tool, which the model would refuse (``claude_rules``). Anthropic's context edits
(``ChatRequest.context_management``) reach Claude there too, with their ``anthropic_beta``.
Reasoning parts in the history are sent back only when signed (or redacted) and produced by
Bedrock, or by Claude anywhere for a Claude model (the thinking blocks a ``/v1/messages`` client
sends back: ``_common.replayable_reasoning``): Claude verifies them, unsigned reasoning cannot be
replayed faithfully, and another vendor's signature (a Gemini ``thoughtSignature``, OpenAI
encrypted reasoning after a gateway fallback) would fail the whole request. Effort and budget
translate through the shared table in ``_common``. Which stop sequence ended a Claude answer
is asked for (``additionalModelResponseFieldPaths``) when the request has ``stop`` sequences and
kept as ``metadata.extra["stop_sequence"]``, streamed or not, as the Anthropic adapter keeps it. Converse has
no ``seed``, ``user`` or parallel-tool-call switch; those request fields are not sent.
A history begun on another provider is sent in Converse's form: tool-call ids it refuses
(Kimi's ``functions.get_weather:0``, ids over 64 characters) are mapped alike for a call and its
result, and a conversation the assistant opened (a chat UI's greeting) gets a user turn first.
Other values Converse (or Claude there) refuses although other providers take them are fitted
by :mod:`.request_rules`: tool names, a temperature above 1, empty or blank stops and system text,
Claude's prefill ending in whitespace.
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
from ..._documents import plain_parts
from ..._errors import (
    ConfigError,
    ContentFilterError,
    ProviderError,
)
from ..._estimate import embedding_tokens as estimated_embedding_tokens
from ..._http import HttpRequest, HttpResponse, json_body
from ..._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Document,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    Part,
    Reasoning,
    ResponseMetadata,
    Role,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from ...streams.eventstream import EventMessage
from .._common import WEB_IMAGES, checked_image, checked_tool_choice, effort_for_budget, read_json
from .._common import empty_text_turn, replayable_reasoning
from ..base import Adapter, ProviderConfig
from ..claude_rules import (
    BlockKind,
    adaptive_thinking,
    context_edits_for,
    effort_alone,
    ends_with_assistant,
    history_allows_thinking,
    max_tokens,
    output_effort,
    sampling,
    thinking_budget,
    tool_choice_allows_thinking,
)
from ..extra_tools import with_extra_tools
from .auth import CredentialCache, config_file_region, sign_request
from .cache_points import cache_point, with_cache_point, without_cache_points, without_cache_ttls
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
from .model_ids import MODEL_ARN, PROFILE_GEOGRAPHY, is_claude, takes_cache_points, tool_forcing
from .request_rules import (
    REFUSES_BLANK,
    converse_tool_ids,
    converse_tool_name,
    read_back,
    send_tool_names,
    stop_sequences,
    tool_name_map,
    trim_prefill,
)
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

_REGION = re.compile(r"^[a-z0-9-]{4,30}$")
_TOOL_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]")
#: The user turn put before a conversation that opens with the assistant, which Converse refuses.
OPENING_USER_TEXT = "."
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")
_DOC_NAME_MAX = 200


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
        system, messages = self._messages(req, claude=claude)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        extra = dict(req.extra_body or {})
        fields = dict(extra.pop("additionalModelRequestFields", None) or {})
        adaptive = claude and adaptive_thinking(req)
        budget = None if not claude or adaptive or effort_alone(req.reasoning) else thinking_budget(self, req)
        if budget is not None and not (history_allows_thinking(_final_assistant(messages), req.model,
                                                               prefill=ends_with_assistant(messages))
                                       and tool_choice_allows_thinking(req)):
            budget = None
        if req.reasoning is not None:
            fields = {**self._reasoning_fields(req, budget, adaptive=adaptive, claude=claude), **fields}
        if claude and req.context_management:
            edits = context_edits_for(req.context_management,
                                      thinking="thinking" in fields or req.reasoning is None)
            if edits is not None:
                fields = _with_context_management(edits, fields)
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
        tool_config = self._tool_config(req, messages, forced_ok=not budgeted, native=native,
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

    def _messages(self, req: ChatRequest, *, claude: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        system: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        names: dict[str, int] = {}
        for position, msg in enumerate(req.messages):
            refused = empty_text_turn(self, position, msg, refusal=REFUSES_BLANK) if msg.role is Role.USER else None
            if refused:
                raise refused
            if msg.role is Role.SYSTEM:
                for part in msg.parts:
                    if not isinstance(part, Text):
                        continue
                    if part.text.strip():   # a part of only whitespace says nothing, and is refused
                        system.append({"text": part.text})
                    if part.cache_control and system and "cachePoint" not in system[-1]:
                        system.append(cache_point(part.cache_control))
                continue
            role = "assistant" if msg.role is Role.ASSISTANT else "user"
            blocks = [block for part in msg.parts for block in self._blocks(part, names, req.model, claude=claude)]
            if not blocks:
                continue
            if messages and messages[-1]["role"] == role:  # Converse needs alternating roles
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": role, "content": blocks})
        if messages and messages[0]["role"] == "assistant":
            # "A conversation must start with a user message": a chat opened by the assistant's
            # greeting, which OpenAI, Anthropic and Gemini take, gets a neutral user turn before it
            messages.insert(0, {"role": "user", "content": [{"text": OPENING_USER_TEXT}]})
        if claude:   # a prefill ending with whitespace is refused (.request_rules)
            trim_prefill(messages)
        converse_tool_ids(messages)
        return system, messages

    def _blocks(self, part: Part, names: dict[str, int], model: str, *, claude: bool) -> list[dict[str, Any]]:
        if isinstance(part, Text):
            if not part.text.strip():  # Converse rejects blank text blocks
                return []
            return with_cache_point({"text": part.text}, part.cache_control)
        if isinstance(part, Attachment):
            return with_cache_point(self._attachment(part, names, model), part.cache_control)
        if isinstance(part, Document):
            return self._document(part, names, model, claude=claude)
        if isinstance(part, ToolCall):
            return with_cache_point({"toolUse": {"toolUseId": part.id, "name": part.name, "input": part.arguments}},
                                     part.cache_control)
        if isinstance(part, ToolResult):
            if isinstance(part.content, str):
                content = [{"text": _tool_text(part.content)}]
            else:
                content = [{"text": _tool_text(p.text)} if isinstance(p, Text) else self._attachment(p, names, model)
                           for p in part.content] or [{"text": _tool_text("")}]
            status = "error" if part.is_error else "success"
            return with_cache_point({"toolResult": {"toolUseId": part.tool_call_id, "content": content,
                                                     "status": status}}, part.cache_control)
        if isinstance(part, Reasoning):
            if not replayable_reasoning(self, part.provider, claude=claude):
                return []  # another vendor's signature or encrypted reasoning: Converse would reject it
            if part.redacted:
                return [{"reasoningContent": {"redactedContent": part.redacted}}]
            if part.signature:
                return [{"reasoningContent": {"reasoningText": {"text": part.text, "signature": part.signature}}}]
            return []  # unsigned reasoning cannot be verified by the model; dropped
        raise self.invalid(f"cannot send a {type(part).__name__} part to Bedrock", model)

    def _attachment(self, att: Attachment, names: dict[str, int], model: str) -> dict[str, Any]:
        if att.kind == "audio":
            raise self.unsupported("audio input")
        if att.data is not None:
            source: dict[str, Any] = {"bytes": att.base64()}
        elif att.url and att.url.startswith("s3://"):
            source = {"s3Location": {"uri": att.url}}
        else:
            raise self.unsupported(f"{att.kind} input by URL (Bedrock takes inline bytes or s3:// URIs)")
        if att.kind == "image":
            fmt = checked_image(att.media_type, WEB_IMAGES, provider=self.name, model=model)
            if fmt is None:
                raise self.invalid("an inline image needs a media_type (image/png, image/jpeg, image/gif, image/webp)",
                                   model)
            return {"image": {"format": fmt, "source": source}}
        if att.kind == "pdf":
            return {"document": {"format": "pdf", "name": _document_name(att.filename, names), "source": source}}
        raise self.invalid(f"unknown attachment kind {att.kind!r}", model)

    def _document(self, doc: Document, names: dict[str, int], model: str, *, claude: bool) -> list[dict[str, Any]]:
        """A Converse ``document`` block with the document's context and citations switch: its
        text (``source.text``, format txt), its PDF (as :meth:`_attachment` sends one) or its text
        parts (``source.content``). The title becomes the block's name, in the characters Converse
        allows. Context, citations and text sources are Claude's: another model gets the document's
        plain parts (a PDF still as a document block), as does a list holding images (which a
        document's content cannot)."""
        content = doc.content
        if not claude or isinstance(content, list) and any(isinstance(p, Attachment) for p in content):
            return [b for p in plain_parts(doc) for b in self._blocks(p, names, model, claude=claude)]
        if isinstance(content, Attachment):
            if content.kind != "pdf":
                raise self.invalid(f"a document's attachment must be a PDF, not {content.kind!r}", model)
            block = self._attachment(dataclasses.replace(content, filename=doc.title or content.filename), names,
                                     model)["document"]
        elif isinstance(content, str):
            block = {"format": "txt", "name": _document_name(doc.title, names), "source": {"text": content}}
        else:
            texts = [{"text": p.text} for p in content if isinstance(p, Text) and p.text]
            block = {"format": "txt", "name": _document_name(doc.title, names), "source": {"content": texts}}
        if doc.context:
            block["context"] = doc.context
        if doc.citations:
            block["citations"] = {"enabled": True}
        return with_cache_point({"document": block}, doc.cache_control)

    def _tool_config(self, req: ChatRequest, messages: list[dict[str, Any]], *, forced_ok: bool,
                     native: bool, forcing: frozenset[str] | None) -> dict[str, Any] | None:
        """``forcing``: the forcing ``toolChoice`` members the model takes (:func:`tool_forcing`;
        None: not known, sent as asked)."""
        choice = checked_tool_choice(req, self.name)
        wanted = {"required": "any", "tool": "tool"}.get(choice.mode if choice is not None else "")
        if wanted is not None and forcing is not None and wanted not in forcing:
            raise self.invalid(
                f"{req.model} on Bedrock cannot be made to call a tool (Converse takes toolChoice "
                f"{wanted!r} only from Claude, Amazon Nova{' and Mistral Large' if wanted == 'any' else ''}): "
                "send tool_choice 'auto' and ask for the tool in the prompt, or use one of those models", req.model)
        tools = [entry for t in req.tools or [] for entry in with_cache_point(
            _tool_spec(t.name, t.description, t.parameters), t.cache_control)]
        if choice is not None and choice.mode == "none":
            tools = tools if _has_tool_blocks(messages) else []
        structured = None if native else structured_tool_name(req)
        if structured is not None:
            if any(t.name == structured for t in req.tools or []):
                raise self.invalid(f"a tool is named {structured!r} like the response format; rename one", req.model)
            fmt = req.response_format
            schema = (fmt.schema if fmt is not None else None) or {"type": "object"}
            tools.append(_tool_spec(structured, "Give the final answer: call this tool with the answer as "
                                                "its input (a JSON value matching the schema).", schema))
        if not tools and _has_tool_blocks(messages):
            # Converse refuses toolUse/toolResult history without a toolConfig: declare those tools.
            seen = {b["toolUse"]["name"] for m in messages for b in m["content"] if "toolUse" in b}
            tools = [_tool_spec(name, None, {"type": "object"}) for name in sorted(seen)]
        if not tools:
            return None
        config: dict[str, Any] = {"tools": tools}
        if structured is not None:
            only_tool = not req.tools or (choice is not None and choice.mode == "none")
            if not forced_ok:
                config["toolChoice"] = {"auto": {}}
            elif forcing is not None and "any" not in forcing:
                pass   # Llama, DeepSeek...: a forced choice is a 400; the tool's description asks for the call
            elif not only_tool or (forcing is not None and "tool" not in forcing):
                config["toolChoice"] = {"any": {}}   # the answer tool alone: "any" forces it (Mistral Large)
            else:
                config["toolChoice"] = {"tool": {"name": structured}}
        elif choice is not None and choice.mode != "none":
            config["toolChoice"] = ({"tool": {"name": choice.name}} if choice.mode == "tool"
                                    else {"any": {}} if choice.mode == "required" else {"auto": {}})
        return config

    def _reasoning_fields(self, req: ChatRequest, budget: int | None, *, adaptive: bool,
                          claude: bool) -> dict[str, Any]:
        """``budget``: a Claude model's thinking budget, already fitted to its rules (None: off);
        ``adaptive``: adaptive thinking instead (Claude 4.6 and later; all Opus 4.7 and later
        take, a budget being a 400), steered by ``output_config.effort`` as on Anthropic's API."""
        rc = req.reasoning
        assert rc is not None
        model = req.model.lower()
        if claude:
            fields: dict[str, Any] = {}
            if adaptive:
                fields["thinking"] = {"type": "adaptive"}
            elif budget is not None:
                fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
            effort = output_effort(req, adaptive=adaptive)
            if effort is not None:
                fields["output_config"] = {"effort": effort}
            return fields
        if rc.budget_tokens == 0 and rc.effort is None:
            return {}   # reasoning=0: no reasoning (it was switched on at "medium")
        effort = rc.effort or (effort_for_budget(rc.budget_tokens) if rc.budget_tokens else "medium")
        if "openai." in model:
            return {"reasoning_effort": "low" if effort == "minimal" else effort}
        if "qwen." in model:
            return {"reasoning_config": effort}
        if "nova" in model:
            return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort":
                                        "low" if effort == "minimal" else effort}}
        if any(name in model for name in ("deepseek.", "moonshot", "kimi")):
            return {}  # these models always reason; there is nothing to switch on
        raise self.invalid(
            f"cloverleaf does not know how to ask {req.model} for reasoning on Bedrock; pass the model's own "
            "fields as extra_body={'additionalModelRequestFields': {...}}", req.model)

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


# --------------------------------------------------------------------------- helpers


def structured_tool_name(req: ChatRequest) -> str | None:
    """The forced tool that carries structured output for ``req``, if it asks for JSON."""
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    return _TOOL_NAME_BAD.sub("_", fmt.name or "response")[:64] or "response"


#: The beta Claude on Bedrock needs to apply ``context_management`` (in ``anthropic_beta``).
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"


def _with_context_management(config: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Claude's context edits as Bedrock takes Anthropic's own fields: ``context_management`` in
    ``additionalModelRequestFields`` (the caller's own extras win), with its beta added to any
    ``anthropic_beta`` they name."""
    betas = fields.get("anthropic_beta")
    names = [betas] if isinstance(betas, str) else [*betas] if isinstance(betas, list) else []
    if CONTEXT_MANAGEMENT_BETA not in names:
        names.append(CONTEXT_MANAGEMENT_BETA)
    return {"context_management": config, **fields, "anthropic_beta": names}


def _final_assistant(messages: list[dict[str, Any]]) -> list[BlockKind] | None:
    """The block kinds of the conversation's last assistant turn, for ``history_allows_thinking``."""
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None:
        return None
    return [("thinking" if "reasoningContent" in b else "tool_use" if "toolUse" in b else "other")
            for b in last["content"]]


def _tool_text(text: str) -> str:
    """A tool result's text: Converse refuses a blank text block, and the refused turn would stay
    in the conversation and fail every later call, so an empty result says so in words."""
    return text if text.strip() else "(no output)"


def _tool_spec(name: str, description: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "inputSchema": {"json": schema}}
    if description:
        spec["description"] = description
    return {"toolSpec": spec}


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _document_name(filename: str | None, names: dict[str, int]) -> str:
    """Bedrock document names allow letters, digits, single spaces, hyphens, parentheses and
    brackets, up to 200 characters, and must be unique within a request (a repeat is a 400).

    ``names`` holds every name given out in the request (and, per stem, the last number tried):
    a repeated stem is numbered, skipping numbers already taken, so ``report.pdf``,
    ``report.pdf``, ``report 2.pdf`` become ``report``, ``report 2``, ``report 2 2``."""
    stem = (filename or "").rsplit(".", 1)[0]
    base = " ".join(_DOC_NAME_BAD.sub(" ", stem).split()) or "Document"
    count = names.get(base, 0)
    while True:
        count += 1
        suffix = f" {count}" if base == "Document" or count > 1 else ""
        name = base[:_DOC_NAME_MAX - len(suffix)].rstrip() + suffix
        if name not in names:
            break
    names[base] = count
    names.setdefault(name, 0)
    return name


__all__ = ["BedrockAdapter", "structured_tool_name"]
