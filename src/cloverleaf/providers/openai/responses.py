"""OpenAI Responses API (``POST /v1/responses``): the adapter for reasoning summaries, o-series and gpt-5.

Chosen with the ``openai-responses/`` model prefix (``openai-responses/o3``) or a
``[providers.NAME]`` table with ``kind = "openai_responses"`` (an Azure ``.../openai/v1``
base URL works too: same wire format, bearer key). Request encoding lives in
``openai_responses_messages``, the stream decoder and the output-item readers it shares with
:meth:`parse_chat` in ``openai_responses_stream``; errors are classified by the Chat
Completions adapter's code (``openai_errors`` + ``OpenAIAdapter._error``), so a 400 means the
same thing on both OpenAI APIs.

Response mapping: ``reasoning`` items -> Reasoning parts (one per summary text, ``signature``
= the ``rs_`` item id, ``redacted`` = ``encrypted_content`` on the last), ``message`` items ->
Text (item id kept in ``Text.extra``), ``function_call`` items -> ToolCall (``call_id`` as id,
item id in ``extra``); all of it goes back unchanged in the next request, which is what
multi-turn reasoning with tools needs. Status ``completed`` -> ``stop``/``tool_calls``,
``incomplete`` -> ``length``/``content_filter`` by ``incomplete_details.reason``, a refusal ->
``content_filter`` (kept in ``metadata.extra["refusal"]``, its ``refusal`` content a Text of its
own marked ``extra["refusal"] = True``, as the Chat Completions adapter keeps ``message.refusal``),
``failed`` -> the mapped error.
Built-in tool items (web search, code interpreter, image generation, MCP: tools asked for in
``extra_body``) are kept as they came in ``metadata.extra["server_tool_blocks"]`` and go back in
place on the next turn (:mod:`.server_items`); a search's sources are also the citations of the
text (its ``url_citation`` annotations), whole and streamed. Embeddings and images are the ``openai`` row's job, not this adapter's.

Provider options (``ProviderConfig.extra``): ``store`` (send ``store: true/false``; with
``false`` reasoning still round-trips through ``encrypted_content``) and
``reasoning_summary`` (``"auto"``/``"concise"``/``"detailed"``, requested on every reasoning
call; by default a summary is only requested by ``ReasoningConfig(summary=True)``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from ..._capabilities import Capabilities
from ..._errors import ContentFilterError, ProviderError
from ..._http import HttpRequest, HttpResponse, json_body
from ..._types import ChatResponse, ResponseMetadata, ToolCall, Usage
from ..base import Adapter, ProviderConfig, base_url_join
from . import server_items
from .adapter import OpenAIAdapter
from .errors import error_info
from .responses_messages import encode_request
from .responses_stream import OpenAIResponsesStreamDecoder, finish_of, output_parts
from .stream import usage_from

if TYPE_CHECKING:
    from ..._types import ChatRequest

#: HTTP status implied by a ``failed`` response's ``error.code`` (the body carries no status).
_FAILED_STATUS = {"server_error": 500, "rate_limit_exceeded": 429, "vector_store_timeout": 504}
#: Statuses of a response still running (background mode): it has no answer yet.
_UNFINISHED = frozenset({"queued", "in_progress"})
#: Failure codes that are the provider's safety policy refusing the request.
_POLICY_CODES = frozenset({"bio_policy", "image_content_policy_violation"})


def _extra(data: dict[str, Any], refusal: str | None, raw: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {"refusal": refusal} if refusal else {}
    if raw:  # the whole answer, for a gateway relaying this API unchanged (ChatRequest.raw_events)
        extra["raw_response"] = data
    return extra


class OpenAIResponsesAdapter(Adapter):
    kind: ClassVar[str] = "openai_responses"
    config_keys: ClassVar[frozenset[str]] = frozenset({"store", "reasoning_summary"})
    config_booleans: ClassVar[frozenset[str]] = frozenset({"store"})
    default_capabilities: ClassVar[Capabilities] = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        image_input=True, pdf_input=True, reasoning=True, url_image_input=True, url_pdf_input=True,
        embeddings=False, image_generation=False, audio_input=False,
    )

    # -- chat ------------------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        body = encode_request(req, cfg.extra, provider=self.name)
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if req.stream else "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        headers.update(cfg.headers)
        url = base_url_join(cfg.base_url or self.spec.base_url, "responses")
        return HttpRequest("POST", url, headers, json_body(body), stream=req.stream, timeout=cfg.timeout)

    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        try:
            data = resp.json()
        except ValueError:
            raise self.malformed(f"body is not JSON: {resp.text[:200]!r}", resp, req.model) from None
        if not isinstance(data, dict) or not isinstance(data.get("output"), list):
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                raise self.failure(data["error"], req.model)
            raise self.malformed("no output in the response", resp, req.model)
        model = data.get("model") or req.model
        if data.get("status") == "failed":
            raise self.failure(data.get("error") or {"message": "the response failed"}, model)
        if data.get("status") in _UNFINISHED:
            # a background response (never asked for by this adapter): an empty answer is not one
            raise self.malformed(f"the response is not finished (status {data['status']!r}); background "
                                 "responses are not polled", resp, req.model)
        parts, refusal = output_parts(data["output"], self.name)
        finish, raw = finish_of(data, has_calls=any(isinstance(p, ToolCall) for p in parts),
                                refused=refusal is not None)
        return ChatResponse(
            parts=parts,
            model=model,
            provider=self.name,
            finish_reason=finish,
            usage=usage_from(data.get("usage"), data.get("service_tier")) or Usage(reported=False),
            metadata=ResponseMetadata(response_id=data.get("id") or None, raw_finish_reason=raw,
                                      extra={**_extra(data, refusal, req.raw_events),
                                             **server_items.of_output(data["output"])}),
        )

    def stream_decoder(self, req: ChatRequest) -> OpenAIResponsesStreamDecoder:
        return OpenAIResponsesStreamDecoder(self, req)

    # -- errors: one classification for both OpenAI APIs ------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        return OpenAIAdapter.parse_error(self, resp, model)  # type: ignore[arg-type]

    def _error(self, status: int, info: Any, resp: HttpResponse, model: str | None) -> ProviderError:
        # OpenAIAdapter.parse_error calls self._error: status + code -> class, hint, quota rule
        return OpenAIAdapter._error(self, status, info, resp, model)  # type: ignore[arg-type]

    def failure(self, error: Any, model: str | None) -> ProviderError:
        """The error for a ``failed`` response or an ``error`` stream event (no HTTP status of its own)."""
        info = error_info({"error": error} if isinstance(error, dict) and "error" not in error else error)
        code = (info.code or "").lower()
        status = info.status or _FAILED_STATUS.get(code) or (400 if code else 500)
        body = json.dumps({"error": error}, default=str)
        resp = HttpResponse(status, {}, body.encode())
        if code in _POLICY_CODES:
            return self.make_error(ContentFilterError, info.message or code, resp, model=model, code=code)
        return self._error(status, info, resp, model)
