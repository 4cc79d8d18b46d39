"""Ollama: the native ``/api/chat`` API, or its OpenAI-compatible ``/v1`` when asked.

Why a native adapter when Ollama also speaks OpenAI: the native API is the one every Ollama
version has, it takes a JSON Schema as ``format`` (grammar-constrained decoding), returns
``thinking`` separately, and exposes ``options`` such as ``num_ctx`` that the OpenAI shim
drops. Some models (``gpt-oss``) are better served by the OpenAI path (their harmony
reasoning format is mapped there), so ``cfg.extra["ollama_api"]`` picks:

- ``"native"`` (default): ``POST {base}/api/chat``, NDJSON streaming;
- ``"openai_chat"``: the OpenAI adapter, composed (not copied), at ``{base}/v1``.
  Ids matching ``*gpt-oss*`` default to it unless ``ollama_api`` is set.

Ollama's native API has no tool-call ids: ids are synthesised from the call's position,
name and arguments so the streamed and non-streamed decodings of the same answer agree.
It has no ``tool_choice`` either: ``none`` omits the tools, ``tool`` narrows them to the
named one; ``required`` cannot be enforced and is sent as ``auto`` (invalid choices are
refused as everywhere, see ``_common``). Reasoning is ``think``: a token budget cannot be
expressed and only switches thinking on; an effort is passed as a level to models that take
one (gpt-oss). A model without thinking (``llama3.1``) is answered with Ollama's 400 ("\"llama3.1\"
does not support thinking"): the call is sent once more without ``think`` and the model is
remembered per server (:class:`.thinking.NoThinkingModels`), so a client that always asks for
thinking (Claude Code, a ``reasoning`` set once for many models) gets the model's plain answer,
as a model without thinking gives (on the ``openai_chat`` path too, where ``reasoning_effort`` is
what is left out). Images go inline as
base64; PDF and audio input are not supported. Embeddings use ``POST /api/embed``
(the older ``/api/embeddings`` reply shape is parsed too) with ``truncate: false``: Ollama's
default (true) embeds only the part of a text that fits the model's context and says nothing,
where OpenAI answers an over-long input with a 400. Ollama then refuses it ("the input length
exceeds the context length", a 400, or a 500 from some versions, which is not retried), which is a
``ContextWindowExceededError`` (400) here; ``truncate = true`` in the provider's ``extra`` (or a
model's ``additional_config``) asks for the cut.
Ollama's OpenAI-compatible ``/v1/embeddings`` has no such switch and always cuts, so embeddings
go to ``/api/embed`` on the ``openai_chat`` path too.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..._capabilities import Capabilities
from ..._errors import (
    ContextWindowExceededError,
    InsufficientMemoryError,
    NotFoundError,
    ProviderError,
    ServerError,
    error_class_for_status,
)
from ..._estimate import embedding_tokens
from ..._http import HttpRequest, HttpResponse, json_body
from ..._quota import says_input_too_long, says_model_too_large
from ..._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    Part,
    Reasoning,
    ResponseMetadata,
    Role,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from .._common import checked_tool_choice, read_json
from ..base import Adapter, ProviderConfig, base_url_join, generic_error_fields, single, split_query, with_query
from ..extra_tools import with_extra_tools
from .parse import finish_reason, reply_salt, tool_call, usage
from .thinking import NoThinkingModels, says_no_thinking

if TYPE_CHECKING:
    from ..base import StreamDecoder

#: Used when an embedding call names no model (the resolver passes it through).
DEFAULT_EMBEDDING_MODEL = "nomic-embed-text"

NATIVE = "native"
OPENAI_CHAT = "openai_chat"
#: Model-id patterns served through the OpenAI-compatible path unless ``ollama_api`` says otherwise.
OPENAI_CHAT_MODELS = ("*gpt-oss*",)

#: ``ModelOptions`` names that may also be given directly in ``cfg.extra`` (``num_ctx = 8192``).
OPTION_NAMES = frozenset({
    "num_ctx", "num_predict", "num_keep", "num_batch", "num_gpu", "num_thread", "main_gpu", "use_mmap",
    "top_k", "top_p", "min_p", "typical_p", "temperature", "seed", "stop", "repeat_last_n",
    "repeat_penalty", "presence_penalty", "frequency_penalty", "mirostat", "mirostat_tau", "mirostat_eta",
    "penalize_newline", "numa", "low_vram",
})



class OllamaAdapter(Adapter):
    kind = "ollama"
    config_keys = OPTION_NAMES | {"ollama_api", "keep_alive", "options", "truncate"}
    config_booleans = frozenset({"use_mmap", "penalize_newline", "numa", "low_vram", "truncate"})

    def price_keys(self, model: str) -> list[str]:
        """Ollama tags (``llama3.1:8b``) are priced as the model (``llama3.1``)."""
        return [f"{self.name}/{model}"] + ([f"{self.name}/{model.split(':', 1)[0]}"] if ":" in model else [])
    default_capabilities = Capabilities(
        text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
        embeddings=True, image_input=True, reasoning=True, system_attachments=True,
    )

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._openai_adapter: Adapter | None = None
        self._no_thinking = NoThinkingModels()

    # -- which API ---------------------------------------------------------------------
    def api_for(self, model: str, cfg: ProviderConfig) -> str:
        api = cfg.extra.get("ollama_api") or self.spec.extra.get("ollama_api")
        if api:
            if api not in (NATIVE, OPENAI_CHAT):
                raise self.invalid(f"ollama_api must be {NATIVE!r} or {OPENAI_CHAT!r}, not {api!r}", model)
            return str(api)
        if any(fnmatch.fnmatch(model.lower(), pattern) for pattern in OPENAI_CHAT_MODELS):
            return OPENAI_CHAT
        return NATIVE

    @property
    def openai(self) -> Adapter:
        """The OpenAI Chat Completions adapter, reporting errors under this row's name."""
        if self._openai_adapter is None:
            from ..openai.adapter import OpenAIAdapter

            self._openai_adapter = OpenAIAdapter(self.spec)
        return self._openai_adapter

    # -- chat --------------------------------------------------------------------------
    def build_chat(self, req: ChatRequest, cfg: ProviderConfig) -> HttpRequest:
        if self.api_for(req.model, cfg) == OPENAI_CHAT:
            return self.openai.build_chat(req, replace(cfg, base_url=openai_base(cfg.base_url)))
        body = self.chat_body(req, cfg)
        headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key:  # Ollama behind an authenticating proxy, or ollama.com
            headers["authorization"] = f"Bearer {cfg.api_key}"
        return HttpRequest("POST", base_url_join(native_base(cfg.base_url), "/api/chat"), headers,
                           json_body(body), stream=req.stream, timeout=cfg.timeout)

    def chat_body(self, req: ChatRequest, cfg: ProviderConfig) -> dict[str, Any]:
        body: dict[str, Any] = {"model": req.model, "messages": self.messages(req), "stream": req.stream}
        tools = req.tools or []
        choice = checked_tool_choice(req, self.name)
        if choice is not None and choice.mode == "none":
            tools = []
        elif choice is not None and choice.mode == "tool":
            tools = [t for t in tools if t.name == choice.name]
        if tools:
            body["tools"] = [
                {"type": "function", "function": {
                    "name": t.name, **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters}}
                for t in tools
            ]
        fmt = req.response_format
        if fmt is not None and fmt.type == "json_schema":
            if not fmt.schema:
                raise self.invalid("response_format json_schema needs a schema", req.model)
            body["format"] = fmt.schema
        elif fmt is not None and fmt.type == "json_object":
            body["format"] = "json"
        options = self.options(req, cfg)
        if options:
            body["options"] = options
        if req.reasoning is not None and not self._no_thinking.has(native_base(cfg.base_url), req.model):
            body["think"] = think_value(req)
        if "keep_alive" in cfg.extra:
            body["keep_alive"] = cfg.extra["keep_alive"]
        for key, value in with_extra_tools(body, req.extra_body or {}).items():   # its tools join the caller's
            if key != "options":
                body[key] = value
        return body

    def options(self, req: ChatRequest, cfg: ProviderConfig) -> dict[str, Any]:
        options: dict[str, Any] = {k: v for k, v in cfg.extra.items() if k in OPTION_NAMES}
        options.update(cfg.extra.get("options") or {})
        for key, value in (("num_predict", req.max_tokens), ("temperature", req.temperature),
                           ("top_p", req.top_p), ("stop", req.stop), ("seed", req.seed)):
            if value is not None:
                options[key] = value
        options.update((req.extra_body or {}).get("options") or {})
        return options

    def messages(self, req: ChatRequest) -> list[dict[str, Any]]:
        names = tool_names_by_id(req.messages)
        out: list[dict[str, Any]] = []
        for msg in req.messages:
            if msg.role is Role.TOOL or any(isinstance(p, ToolResult) for p in msg.parts):
                out.extend(self.tool_results(msg, names, req.model))
                if msg.role is Role.TOOL:
                    continue
                msg = Message(msg.role, parts=[p for p in msg.parts if not isinstance(p, ToolResult)], name=msg.name)
                if not msg.parts:
                    continue
            out.append(self.message(msg, req.model))
        return out

    def message(self, msg: Message, model: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"role": msg.role.value, "content": msg.content}
        images = [self.image(p, model) for p in msg.parts if isinstance(p, Attachment)]
        if images:
            entry["images"] = images
        thinking = "".join(p.text for p in msg.parts if isinstance(p, Reasoning) and p.text)
        if thinking and msg.role is Role.ASSISTANT:
            entry["thinking"] = thinking
        calls = [p for p in msg.parts if isinstance(p, ToolCall)]
        if calls:
            entry["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in calls]
        return entry

    def tool_results(self, msg: Message, names: dict[str, str], model: str) -> list[dict[str, Any]]:
        out = []
        for part in msg.parts:
            if not isinstance(part, ToolResult):
                continue
            entry: dict[str, Any] = {"role": "tool", "content": part.text}
            name = part.name or names.get(part.tool_call_id)
            if name:
                entry["tool_name"] = name
            if not isinstance(part.content, str):
                images = [self.image(p, model) for p in part.content if isinstance(p, Attachment)]
                if images:
                    entry["images"] = images
            out.append(entry)
        return out

    def image(self, att: Attachment, model: str) -> str:
        if att.kind != "image":
            raise self.unsupported(f"{att.kind or 'unknown'} input")
        if att.data is None:
            raise self.unsupported("image input by URL (Ollama takes inline images; fetch them locally)")
        return att.base64()

    def parse_chat(self, resp: HttpResponse, req: ChatRequest) -> ChatResponse:
        data = read_json(self, resp, req.model)
        if isinstance(data, dict) and "choices" in data:  # the OpenAI-compatible path answered
            return self.openai.parse_chat(resp, req)
        if isinstance(data, dict) and "error" in data:
            raise self.stream_error(data, req.model)
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise self.malformed("no 'message' object in the reply", resp, req.model)
        message = data["message"]
        parts: list[Part] = []
        if message.get("thinking"):
            parts.append(Reasoning(message["thinking"], provider=self.name))
        if message.get("content"):
            parts.append(Text(message["content"]))
        salt = reply_salt(data)
        for index, call in enumerate(message.get("tool_calls") or []):
            parts.append(tool_call(call, index, salt))
        finish, raw = finish_reason(data, bool(message.get("tool_calls")))
        return ChatResponse(
            parts=parts,
            model=data.get("model") or req.model,
            provider=self.name,
            finish_reason=finish,
            usage=usage(data),
            metadata=ResponseMetadata(raw_finish_reason=raw),
        )

    def stream_decoder(self, req: ChatRequest) -> StreamDecoder:
        from .stream import SniffingDecoder

        return SniffingDecoder(self, req)

    # -- embeddings --------------------------------------------------------------------
    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest:
        # an over-long text is refused, not cut, unless the config asks for the cut (module docstring)
        body: dict[str, Any] = {"model": req.model or DEFAULT_EMBEDDING_MODEL, "input": list(req.inputs),
                                "truncate": cfg.extra.get("truncate") is True}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        options = {k: v for k, v in cfg.extra.items() if k in OPTION_NAMES} | dict(cfg.extra.get("options") or {})
        if options:
            body["options"] = options
        if "keep_alive" in cfg.extra:   # an embedding model is loaded and unloaded like a chat model
            body["keep_alive"] = cfg.extra["keep_alive"]
        body.update(req.extra_body or {})
        headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key:
            headers["authorization"] = f"Bearer {cfg.api_key}"
        return HttpRequest("POST", base_url_join(native_base(cfg.base_url), "/api/embed"), headers,
                           json_body(body), timeout=cfg.timeout)

    def parse_embed(self, resp: HttpResponse | list[HttpResponse], req: EmbeddingRequest) -> EmbeddingResponse:
        resp = single(resp)
        data = read_json(self, resp, req.model)
        if not isinstance(data, dict):
            raise self.malformed("reply is not an object", resp, req.model)
        if isinstance(data.get("embeddings"), list):
            vectors = data["embeddings"]
        elif isinstance(data.get("embedding"), list):  # the older /api/embeddings reply: one vector
            vectors = [data["embedding"]]
        else:
            raise self.malformed("no 'embeddings' in the reply", resp, req.model)
        return EmbeddingResponse(
            vectors=[[float(x) for x in v] for v in vectors],
            model=data.get("model") or req.model or DEFAULT_EMBEDDING_MODEL,
            provider=self.name,
            usage=_embed_usage(data, req),
        )

    # -- errors ------------------------------------------------------------------------
    def parse_error(self, resp: HttpResponse, model: str | None = None) -> ProviderError:
        message, code = generic_error_fields(resp)
        message = message or f"HTTP {resp.status}"
        cls = error_class_for_status(resp.status)
        if says_input_too_long(message):   # a 400, or a 500 from some versions (not retried): the input, not the server
            cls = ContextWindowExceededError
            message = (f"{message}; shorten the input or split it into pieces, or raise the model's num_ctx "
                       "(for embeddings, `truncate = true` in the provider's extra has Ollama cut it instead)")
        elif cls is ServerError and says_model_too_large(message):   # the next try fails alike: not retried
            cls = InsufficientMemoryError
            message = (f"{message}; free memory on the Ollama host (`ollama ps` lists the models loaded, `ollama stop "
                       "NAME` unloads one) or pick a smaller model or quantisation (fewer parameters, a q4 tag)")
        if cls is NotFoundError:
            message = f"{message}; {not_found_hint(message, model)}"
        return self.make_error(cls, message, resp, model=model, code=code)

    def stream_error(self, data: dict[str, Any], model: str | None) -> ProviderError:
        """An ``{"error": ...}`` object inside a 200 reply (the model failed mid-answer)."""
        err = data.get("error")
        message = err.get("message") if isinstance(err, dict) else err
        status = 404 if isinstance(message, str) and "not found" in message else 500
        fake = HttpResponse(status, {}, json.dumps(data).encode())
        return self.parse_error(fake, model)

    def connect_hint(self, cfg: ProviderConfig) -> str | None:
        return self.spec.start_hint or "start it with `ollama serve`"

    def resend_after(self, refusal: HttpResponse, req: ChatRequest, cfg: ProviderConfig) -> bool:
        """Once more without ``think`` after Ollama's 400 for a model without thinking (and that
        model remembered, for the calls after): only that exact refusal of a call that sent
        ``think`` (or, on the OpenAI path, ``reasoning_effort``); any other 400 is the caller's."""
        if self.api_for(req.model, cfg) == OPENAI_CHAT:
            return self.openai.resend_after(refusal, req, replace(cfg, base_url=openai_base(cfg.base_url)))
        if req.reasoning is None or not says_no_thinking(refusal, req.model):
            return False
        self._no_thinking.add(native_base(cfg.base_url), req.model)
        return True   # (the engine sends it once more at most)


# --------------------------------------------------------------------------- helpers


def native_base(base_url: str) -> str:
    """The server root: a base given as ``.../v1`` (the OpenAI path) or ``.../api`` (where every
    native path starts; it was sent to ``/api/api/chat``) is accepted too. A query the base
    carries (a proxy's) is kept, for :func:`~..base.base_url_join` to put after the path."""
    base, query = split_query(base_url)
    base = base.rstrip("/")
    for suffix in ("/v1", "/api"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return with_query(base, query)


def not_found_hint(message: str, model: str | None) -> str:
    """What to do about a 404. Ollama's own for a model it lacks names the model ("model
    \"x\" not found, try pulling it first"): pull it. A 404 that names no model is a path the
    server does not have ("404 page not found": a base_url pointing under the root, or at
    another server), which no pull mends: telling the user to pull a model they have sent them
    the wrong way."""
    missing = missing_model(message)
    if missing or (model and "model" in message.lower()):
        return f"run `ollama pull {missing or model}` to download it"
    return ("the server has no such endpoint: base_url must be the Ollama server's root "
            "(like http://localhost:11434) and that server must be Ollama")


def openai_base(base_url: str) -> str:
    return base_url_join(native_base(base_url), "/v1")


def think_value(req: ChatRequest) -> bool | str:
    """``think``: a level for models that take one (gpt-oss), else a boolean: false for
    ``reasoning=0`` (no thinking where it can be turned off, which Ollama's models allow; a
    model without thinking takes ``false`` too), true for any other ask."""
    cfg = req.reasoning
    assert cfg is not None
    if cfg.budget_tokens == 0 and cfg.effort is None:
        return False
    if cfg.effort and "gpt-oss" in req.model.lower():
        return "low" if cfg.effort == "minimal" else cfg.effort
    return True


def tool_names_by_id(messages: list[Message]) -> dict[str, str]:
    """Ollama matches tool results by function name (``tool_name``), not by id."""
    return {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCall)}


_MISSING_MODEL = re.compile(r'model ["\']([^"\']+)["\'] not found')


def missing_model(message: str) -> str | None:
    match = _MISSING_MODEL.search(message)
    return match.group(1) if match else None


def _embed_usage(data: dict[str, Any], req: EmbeddingRequest) -> Usage:
    """``prompt_eval_count`` when Ollama reports it; without it (the older ``/api/embeddings``,
    servers that leave it out) the count is estimated from the input and marked unreported, so
    the call is neither priced at a made-up 0 nor invisible to tpm limits."""
    counted = data.get("prompt_eval_count")
    if isinstance(counted, int) and not isinstance(counted, bool):
        return Usage(input_tokens=counted)
    return Usage(input_tokens=embedding_tokens(req.inputs), reported=False)
