"""The native Anthropic Messages API (``POST /v1/messages``), as a pure adapter.

Request encoding lives in :mod:`.messages`, the SSE decoder in :mod:`.stream`, and what a
response and a stream both read (usage, stop reasons) in :mod:`.parse`; imports go one way
(adapter -> stream decoder -> parse). This module holds the adapter, the reading of a whole
response (content blocks) and the error mapping.

Usage, checked against ``test_anthropic_cache_real_api.yaml``: Anthropic reports ``input_tokens``
as only the *uncached* part of the prompt, with ``cache_read_input_tokens`` (served from the
cache) and ``cache_creation_input_tokens`` (written to it) alongside. Our ``Usage.input_tokens``
is the whole prompt, so it is the sum of the three; ``cached_tokens`` is the reads and
``cache_write_tokens`` the writes. The recording's second call (3 uncached + 1111 read + 418
written) therefore gives ``input_tokens=1532, cached_tokens=1111, cache_write_tokens=418``.
``output_tokens`` already includes thinking; ``output_tokens_details.thinking_tokens``, when the
API sends it, becomes ``reasoning_tokens``. With server-side compaction the top-level counts
cover only the final sampling step while ``usage.iterations`` lists every step (the compaction
summary reads the whole long prompt and is billed too), so the usage is the sum of the
iterations (``test_anthropic_compaction_usage_with_cache_streaming.yaml``: 55196 + 181 input,
83 + 8 output, 55096 cache reads).

Beta features: the provider's ``beta`` setting (a list, or comma-separated names), plus those a
server's client asks for with ``anthropic-beta`` (:meth:`AnthropicAdapter.with_client_betas`),
each sent once in the ``anthropic-beta`` header.

Documents (:class:`~cloverleaf.Document`) are native (see :mod:`.messages`), and a text
block's ``citations`` become its Text part's (:mod:`.citations`); streamed, each
``citations_delta`` is a ``citation`` event of its block, before the block's text.

Structured output through the :data:`~.messages.STRUCTURED_TOOL` call: its input is the answer,
a Text part holding the JSON. Claude may write a sentence before the call whenever ``tool_choice``
is not forced (reasoning on, or user tools beside it); once the structured tool was called such
text is dropped (as the Bedrock adapter does), else ``.parsed`` would read "Here is...{...}".

Server-side tool blocks (``server_tool_use``, ``web_search_tool_result``, MCP ...) have no
neutral part: they are kept raw in ``metadata.extra["server_tool_blocks"]``, whole or streamed, and
``to_message()`` sends them back in place to an Anthropic row (a ``pause_turn`` continuation needs
them; see :mod:`.server_blocks`).
Which of the request's ``stop`` sequences ended the answer (``stop_sequence``, with stop_reason
``stop_sequence``) is ``metadata.extra["stop_sequence"]``, streamed or not; a server relays it.
So is the ``context_management`` object (the context edits the API applied), as
``metadata.extra["context_management"]``. A refusal (``stop_reason: "refusal"``) keeps its text
as ``metadata.extra["refusal"]``, as the OpenAI adapter keeps ``message.refusal``, so
``ChatResponse.refusal`` says the model refused, streamed or not.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, ClassVar

from ..._capabilities import Capabilities
from ..._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    error_class_for_status,
)
from ..._http import HttpRequest, HttpResponse, json_body
from ..._types import ChatResponse, Part, Reasoning, ResponseMetadata, Text, ToolCall
from .._common import read_json
from ..base import Adapter, ProviderConfig, base_url_join, split_query
from .citations import citations_from
from .messages import encode_chat, is_structured_tool_call, tool_name_map
from .parse import finish_reason, refusal_extra, usage_from
from .tool_names import read_back

if TYPE_CHECKING:
    from ..._types import ChatRequest
    from .stream import AnthropicStreamDecoder

API_VERSION = "2023-06-01"

#: ``error.type`` -> our class. Anthropic documents one type per status; the type wins when both exist.
ERROR_TYPES: dict[str, type[ProviderError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    # 402: the account's credit is spent; not the key's permissions (no retry, but another
    # provider may serve: the fallback table's QuotaExceededError row)
    "billing_error": QuotaExceededError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    # 413: the request is over the API's byte limit (usually attachments), not the context window
    "request_too_large": RequestTooLargeError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "timeout_error": ServerError,
    "overloaded_error": OverloadedError,
}

#: Anthropic has no error code for an over-long prompt; these 400 messages are the documented signal.
_CONTEXT_MESSAGES = ("prompt is too long", "exceed context limit", "context window")
#: Nor for a spent credit balance in the form most accounts get: a 400 ``invalid_request_error``
#: saying "Your credit balance is too low to access the Anthropic API" (the 402 ``billing_error``
#: is the other form). The request is fine; the account cannot pay for it.
_CREDIT_MESSAGES = ("credit balance is too low",)


def error_class(error_type: str | None, message: str, status: int | None) -> type[ProviderError]:
    cls = ERROR_TYPES.get(error_type or "")
    if cls is None:
        cls = error_class_for_status(status) if status else ServerError
    if cls is InvalidRequestError:
        lowered = message.lower()
        if any(m in lowered for m in _CREDIT_MESSAGES):
            return QuotaExceededError   # as the 402 billing_error: no retry, a route falls back
        if any(m in lowered for m in _CONTEXT_MESSAGES):
            return ContextWindowExceededError
    return cls


def error_code(error_type: str | None, cls: type[ProviderError]) -> str | None:
    """The code an error keeps: Anthropic's ``error.type``, but ``billing_error`` for a spent credit
    balance in either form, so code that reads the code (a gateway's client) sees one name for it."""
    return "billing_error" if cls is QuotaExceededError else error_type


class AnthropicAdapter(Adapter):
    kind: ClassVar[str] = "anthropic"
    native_documents: ClassVar[bool] = True
    config_keys: ClassVar[frozenset[str]] = frozenset({"anthropic_version", "beta", "structured_output"})
    operation_paths: ClassVar[dict[str, str]] = {"chat": "/v1/messages"}
    default_capabilities: ClassVar[Capabilities] = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        image_input=True, pdf_input=True, reasoning=True, url_image_input=True, url_pdf_input=True,
    )

    # -- request -----------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        path, _ = split_query(cfg.base_url)   # a query (a proxy's ?key=...) stays after the path
        url = base_url_join(cfg.base_url, "/messages" if path.rstrip("/").endswith("/v1") else "/v1/messages")
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if req.stream else "application/json",
            "anthropic-version": str(cfg.extra.get("anthropic_version", API_VERSION)),
        }
        betas = beta_names(cfg.extra.get("beta"))
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        if cfg.api_key:
            headers["x-api-key"] = cfg.api_key
        headers.update(cfg.headers)
        return HttpRequest("POST", url, headers, json_body(encode_chat(self, req, cfg)), stream=req.stream,
                           timeout=cfg.timeout)

    def with_client_betas(self, cfg: ProviderConfig, betas: tuple[str, ...]) -> ProviderConfig:
        """The configured ``beta`` features plus the caller's (``anthropic-beta`` from a server's
        client: Claude Code asks for interleaved thinking, the 1M context...), each once."""
        merged = dict.fromkeys([*beta_names(cfg.extra.get("beta")), *betas])
        return dataclasses.replace(cfg, extra={**cfg.extra, "beta": list(merged)})

    def takes_context_management(self, model: str, cfg: ProviderConfig | None = None) -> bool:
        return True   # the Messages API applies context edits itself

    # -- response ----------------------------------------------------------------------
    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        data = read_json(self, resp, req.model)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise self.malformed("no 'content' list in the message", resp, req.model)
        raw_finish = data.get("stop_reason")
        finish = finish_reason(raw_finish)
        parts: list[Part] = []
        answers: list[Text] = []
        server_blocks: list[dict[str, Any]] = []
        positions: list[int] = []   # how many parts came before each server block
        names = tool_name_map(req)
        for block in data["content"]:
            kind = block.get("type")
            if kind == "text":
                parts.append(Text(block.get("text", ""), citations=citations_from(block.get("citations"))))
            elif kind == "thinking":
                parts.append(Reasoning(block.get("thinking", ""), signature=block.get("signature") or None,
                                       provider=self.reasoning_source))
            elif kind == "redacted_thinking":
                parts.append(Reasoning("", redacted=block.get("data"), provider=self.reasoning_source))
            elif kind == "tool_use" and is_structured_tool_call(req, block.get("name")):
                answers.append(Text(json.dumps(block.get("input") or {}, ensure_ascii=False)))
                parts.append(answers[-1])
            elif kind == "tool_use":
                parts.append(ToolCall(block["id"], read_back(names, block["name"]), block.get("input") or {}))
            else:
                server_blocks.append(block)
                positions.append(len(parts))
        if answers:  # the structured tool's input is the answer: a sentence around the call is not JSON
            parts = [p for p in parts if not isinstance(p, Text) or any(p is a for a in answers)]
        if finish == "tool_calls" and not any(isinstance(p, ToolCall) for p in parts):
            finish = "stop"  # the only call was the structured-output tool, now a Text part
        meta = ResponseMetadata(response_id=data.get("id"), raw_finish_reason=raw_finish,
                                extra=refusal_extra(raw_finish, "".join(p.text for p in parts if isinstance(p, Text))))
        if isinstance(data.get("stop_sequence"), str):
            meta.extra["stop_sequence"] = data["stop_sequence"]
        if server_blocks:   # sent back in place by to_message() (see .server_blocks)
            meta.extra["server_tool_blocks"] = server_blocks
            meta.extra["server_tool_block_positions"] = positions
        if isinstance(data.get("context_management"), dict):   # the context edits applied
            meta.extra["context_management"] = data["context_management"]
        return ChatResponse(
            parts=parts,
            model=data.get("model") or req.model,
            provider=self.name,
            finish_reason=finish,
            usage=usage_from(data.get("usage")),
            metadata=meta,
        )

    def stream_decoder(self, req: ChatRequest) -> AnthropicStreamDecoder:
        from .stream import AnthropicStreamDecoder

        return AnthropicStreamDecoder(self, req)

    # -- errors ------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        """Map ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            return super().parse_error(resp, model)
        message = str(err.get("message") or f"HTTP {resp.status}")
        cls = error_class(err.get("type"), message, resp.status)
        error = self.make_error(cls, _with_hint(cls, message), resp, model=model, code=error_code(err.get("type"), cls))
        if error.request_id is None and isinstance(data, dict):
            error.request_id = data.get("request_id")
        return error

    def stream_error(self, payload: dict[str, Any], model: str | None) -> ProviderError:
        """The error an ``event: error`` inside a 200 stream stands for (no HTTP status of its own)."""
        err = payload.get("error")
        if not isinstance(err, dict):
            err = {}
        message = str(err.get("message") or "error event in the stream")
        cls = error_class(err.get("type"), message, None)
        return cls(_with_hint(cls, message), provider=self.name, model=model, code=error_code(err.get("type"), cls),
                   request_id=payload.get("request_id"), body=json.dumps(payload))


def beta_names(beta: Any) -> list[str]:
    """The ``beta`` setting as names: a comma-separated string or a list of them."""
    items = [beta] if isinstance(beta, str) else list(beta or ())
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]


def _with_hint(cls: type[ProviderError], message: str) -> str:
    if cls is OverloadedError:
        return f"{message} (Anthropic is overloaded; retry later or fall back to another model)"
    if cls is AuthenticationError:
        return f"{message} (check ANTHROPIC_API_KEY or the provider's api_key)"
    if cls is ContextWindowExceededError:
        return f"{message} (shorten the conversation or use a model with a larger context window)"
    return message
