"""The provider-neutral vocabulary every layer speaks.

Adapters translate between these types and one provider's wire format; the client,
gateway and server only ever see these. They are plain slotted dataclasses rather than
pydantic models because they are built per request and per stream chunk on the hot path,
and because importing ``cloverleaf`` must stay cheap (pydantic is only imported when a
structured output asks for it).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Union


class Role(str, enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


# --------------------------------------------------------------------------- parts


@dataclass(slots=True)
class Citation:
    """Where a claim in the answer comes from: a span of a :class:`Document` the request sent
    with ``citations=True``, or a web search result (Claude's citations through Anthropic's API
    or Bedrock, whose Converse locations are named as Anthropic names them).

    ``type`` says how ``start``/``end`` count, as Anthropic names them: ``char_location``
    (characters of a text document, end exclusive), ``page_location`` (pages of a PDF, from 1,
    end exclusive), ``content_block_location`` (blocks of a document given as a list of parts,
    from 0, end exclusive); ``web_search_result_location`` has ``url`` and ``title`` instead.
    ``document_index`` counts the request's documents in order, from 0. Fields of the
    provider's citation this type does not name (``encrypted_index``, ``file_id``...) are kept
    in ``extra``, so a gateway relays the citation exactly as it came.
    """

    type: str
    cited_text: str = ""
    document_index: int | None = None
    document_title: str | None = None
    start: int | None = None
    end: int | None = None
    url: str | None = None
    title: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class Text:
    text: str
    #: Provider cache hint (Anthropic ``cache_control``); passed through verbatim.
    cache_control: dict[str, Any] | None = None
    #: Provider data that must be echoed back on the next turn (OpenAI Responses message
    #: item id and phase: a reasoning item is rejected unless the message it produced follows).
    extra: dict[str, Any] | None = None
    #: In an answer: what this text cites (see :class:`Document`). A cited answer comes as
    #: several Text parts, each with the citations of its own span; None when it cites nothing.
    citations: list[Citation] | None = None


AttachmentKind = Literal["image", "pdf", "audio"]
ImageDetail = Literal["low", "high", "auto"]
#: The values of :attr:`Attachment.detail` (OpenAI's image ``detail``).
IMAGE_DETAILS: tuple[str, ...] = ("low", "high", "auto")


@dataclass(slots=True)
class Attachment:
    """An image, PDF or audio clip: the one attachment type, in the SDK, CLI and server.

    Users give a ``source`` (a local path, an http(s) URL, base64 text or a data URL) and
    optionally ``type``/``media_type``; ``cloverleaf.attachments.resolve`` checks it (SSRF
    guard, size cap, magic-byte sniffing) and fills ``data`` (``fetch="local"``: cloverleaf
    downloaded or read it) or ``url`` (``fetch="provider"``: the provider fetches it).
    Adapters only ever see resolved attachments and read ``type``, ``data``/``url`` and
    ``media_type``.
    """

    source: str | bytes | None = None
    type: AttachmentKind | None = None
    media_type: str | None = None
    fetch: Literal["local", "provider"] = "local"
    data: bytes | None = None
    url: str | None = None
    filename: str | None = None
    cache_control: dict[str, Any] | None = None
    #: An image's detail for OpenAI (Chat Completions, Azure, OpenAI-compatible servers and the
    #: Responses API): ``"low"``, ``"high"`` or ``"auto"``; None: not given (Chat Completions then
    #: sends none, the Responses API ``"auto"``). Other providers have no such setting.
    detail: ImageDetail | None = None

    @property
    def kind(self) -> AttachmentKind | None:
        return self.type

    @property
    def resolved(self) -> bool:
        return self.type is not None and (self.data is not None or self.url is not None)

    def __repr__(self) -> str:  # never dump megabytes of bytes into a log or traceback
        if self.data is not None:
            what = f"{len(self.data)} bytes"
        elif self.url is not None:
            what = self.url
        else:
            what = "unresolved"
        return f"Attachment(type={self.type!r}, media_type={self.media_type!r}, {what})"

    def base64(self) -> str:
        import base64

        if self.data is None:
            raise ValueError("attachment has no inline data (it is a provider-fetched URL)")
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type or 'application/octet-stream'};base64,{self.base64()}"


@dataclass(slots=True)
class ToolCall:
    """A complete call the model asked for. ``arguments`` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    #: The arguments exactly as the provider sent them (may be invalid JSON).
    raw_arguments: str | None = None
    #: Provider-specific data that must be echoed back on the next turn
    #: (e.g. Gemini ``thoughtSignature``).
    extra: dict[str, Any] | None = None
    #: Provider cache hint (Anthropic ``cache_control``): a prompt-cache breakpoint after this
    #: call in the history. Sent verbatim to Anthropic, as a ``cachePoint`` after the call to
    #: Bedrock; providers without explicit caching ignore it.
    cache_control: dict[str, Any] | None = None

    @property
    def arguments_json(self) -> str:
        return self.raw_arguments if self.raw_arguments is not None else json.dumps(self.arguments)


@dataclass(slots=True)
class ToolResult:
    tool_call_id: str
    content: str | list[Text | Attachment]
    name: str | None = None
    is_error: bool = False
    #: Provider cache hint (Anthropic ``cache_control``): a prompt-cache breakpoint after this
    #: result. In an agent loop the last block of the conversation is a tool result, so this is
    #: where a rolling breakpoint goes (Claude Code puts it there): without it every turn pays
    #: the full input price. Sent verbatim to Anthropic, as a ``cachePoint`` after the result to
    #: Bedrock; providers without explicit caching ignore it.
    cache_control: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, Text))


@dataclass(slots=True)
class Reasoning:
    """Model reasoning ("thinking"). ``signature``/``redacted`` must be sent back unchanged
    in a multi-turn conversation for providers that verify them (Anthropic)."""

    text: str
    signature: str | None = None
    #: Opaque encrypted reasoning (Anthropic ``redacted_thinking``, OpenAI encrypted content).
    redacted: str | None = None
    provider: str | None = None
    #: Provider data to send back as received (OpenRouter's ``reasoning_details``: each detail's
    #: type, format, index and id, which ``text``/``signature``/``redacted`` cannot hold).
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class Document:
    """A document for the model to read and, with ``citations=True``, to cite: the answer's
    :class:`Text` parts then carry :class:`Citation` values pointing into it.

    ``content`` is the document itself: a string (plain text, cited by characters), an
    :class:`Attachment` (a PDF, by path, URL or bytes; cited by pages), or a list of
    :class:`Text` (and image) parts (your own chunks, cited by part). ``title`` names it
    (the citations echo it back) and ``context`` says something about it the model may use but
    never cites. Anthropic (and Claude on Bedrock) take all of this natively; every other
    provider gets the title and context as text followed by the content, since it has no
    document type of its own (and no citations).
    """

    content: str | Attachment | list[Text | Attachment]
    title: str | None = None
    context: str | None = None
    citations: bool = False
    cache_control: dict[str, Any] | None = None

    def attachments(self) -> list[Attachment]:
        """The attachments the document holds (its PDF, or the images among its parts)."""
        if isinstance(self.content, Attachment):
            return [self.content]
        if isinstance(self.content, list):
            return [p for p in self.content if isinstance(p, Attachment)]
        return []


Part = Union[Text, Attachment, Document, ToolCall, ToolResult, Reasoning]


@dataclass(slots=True, init=False)
class Message:
    """One turn. ``content`` may be a string or a list of parts; ``parts`` is always a list."""

    role: Role
    parts: list[Part]
    name: str | None
    #: Provider data of the whole turn, sent back only to the provider kind that produced it
    #: (``provider``): Anthropic's server tool blocks (``server_tool_blocks``, each placed after
    #: ``server_tool_block_positions[i]`` of the parts), which a ``pause_turn`` continuation
    #: must send back for Claude to resume. :meth:`ChatResponse.to_message` fills it.
    extra: dict[str, Any] | None

    def __init__(
        self,
        role: Role | str,
        content: str | list[Part] | Part | None = None,
        *,
        name: str | None = None,
        parts: list[Part] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.role = Role(role)
        if parts is None:
            if content is None:
                parts = []
            elif isinstance(content, str):
                parts = [Text(content)]
            elif isinstance(content, list):
                parts = list(content)
            else:
                parts = [content]
        self.parts = parts
        self.name = name
        self.extra = extra

    @property
    def content(self) -> str:
        """The message's text (text parts joined)."""
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]

    def __repr__(self) -> str:
        return f"Message(role={self.role.value!r}, parts={self.parts!r})"

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(Role.SYSTEM, text)

    @classmethod
    def user(cls, content: str | list[Part]) -> Message:
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str | list[Part]) -> Message:
        return cls(Role.ASSISTANT, content)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, *, name: str | None = None, is_error: bool = False,
             cache_control: dict[str, Any] | None = None) -> Message:
        return cls(Role.TOOL, [ToolResult(tool_call_id, content, name=name, is_error=is_error,
                                          cache_control=cache_control)])


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    #: The Python callable behind it, when built from one (used by the tool loop).
    function: Any = field(default=None, repr=False, compare=False)
    #: Turns the model's JSON arguments into the function's own types (the pydantic model its
    #: schema came from: nested models, enums, dates), raising ValueError when they do not fit.
    arguments: Any = field(default=None, repr=False, compare=False)
    #: Provider cache hint (Anthropic ``cache_control``, ``{"type": "ephemeral"}``): a prompt-cache
    #: breakpoint after this tool, so the tool list up to it is cached (mark the last tool: a long
    #: tool list is then billed at the cache-read rate on later calls). Sent verbatim to Anthropic,
    #: as a ``cachePoint`` after the tool to Bedrock; providers without explicit caching ignore it.
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class ToolChoice:
    """``auto`` (model decides), ``none``, ``required`` (some tool), or ``tool`` (``name``)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


@dataclass(slots=True)
class ResponseFormat:
    """Structured output: ``json_object`` (any JSON) or ``json_schema`` (``schema``).

    ``model`` is the pydantic class (or dataclass, or TypedDict) the schema came from, used to
    validate ``.parsed``; for a top-level array it is the list type (``list[City]``). ``wrapped_key``: the
    array was wrapped in an object on the wire (``{"items": [...]}``: OpenAI's strict mode and
    tool-based structured output need an object root), and ``.parsed`` is the array again.
    """

    type: Literal["text", "json_object", "json_schema"] = "json_schema"
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True
    model: Any = field(default=None, repr=False, compare=False)
    wrapped_key: str | None = None


@dataclass(slots=True)
class ReasoningConfig:
    """Ask for reasoning: an OpenAI-style ``effort`` or an Anthropic/Gemini token budget.

    Claude's own controls, for a caller that speaks Anthropic's API (``/v1/messages``, Claude
    Code) and wants them kept: ``adaptive`` (``thinking: {"type": "adaptive"}``: the model decides
    whether and how long to think) and ``native_effort`` (``output_config.effort`` as written:
    ``low``, ``medium``, ``high``, ``xhigh`` or ``max``). On Anthropic's API effort and thinking
    are separate knobs, so a config with ``native_effort`` but neither ``adaptive`` nor
    ``budget_tokens`` is effort alone, without thinking. Every other provider (Bedrock
    included) reads ``effort``, the nearest neutral level, and ``budget_tokens`` as before.
    """

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    budget_tokens: int | None = None
    summary: bool = False
    #: Adaptive thinking on Claude models that have it (4.6 and later, or a model this library
    #: does not know); an older Claude gets a thinking budget for ``effort`` instead.
    adaptive: bool = False
    #: Anthropic's ``output_config.effort`` exactly as the caller named it (see the class docstring).
    native_effort: str | None = None


@dataclass(slots=True)
class ChatRequest:
    """A chat call, provider-neutral. ``model`` is the provider's own model name."""

    model: str
    messages: list[Message]
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    reasoning: ReasoningConfig | None = None
    user: str | None = None
    stream: bool = False
    parallel_tool_calls: bool | None = None
    #: Provider-specific body fields merged into the request body verbatim.
    extra_body: dict[str, Any] | None = None
    #: Also hand back the provider's own wire events/body (``raw`` stream events,
    #: ``metadata.extra["raw_response"]``) where the adapter supports it: for a gateway that
    #: serves the provider's own API and relays its answer unchanged.
    raw_events: bool = False
    #: Provider cache hint for the whole request (Anthropic's automatic prompt caching: a
    #: top-level ``cache_control``, the breakpoint placed on the last cacheable block). A neutral
    #: field, not ``extra_body``, because that is sent to every provider and a gateway's fallback
    #: target that does not know it would refuse the call: Anthropic gets it verbatim, the rest
    #: ignore it.
    cache_control: dict[str, Any] | None = None
    #: Server-side context editing (Anthropic's ``context_management``, ``{"edits": [...]}``):
    #: clearing old thinking or tool results before the model reads the conversation. A neutral
    #: field for the reason ``cache_control`` is one: Anthropic (and Claude on Bedrock) get it
    #: verbatim; for any other provider :mod:`cloverleaf._context_edits` drops the edits that
    #: are no-ops there and refuses the rest.
    context_management: dict[str, Any] | None = None

    @property
    def system_text(self) -> str | None:
        """All system messages joined, for providers that take the system prompt apart."""
        texts = [m.content for m in self.messages if m.role is Role.SYSTEM]
        return "\n\n".join(texts) if texts else None


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    dimensions: int | None = None
    #: "query" / "document" style hints for providers that take one (Gemini task_type, Cohere input_type).
    input_type: str | None = None
    extra_body: dict[str, Any] | None = None
    #: Pre-tokenised input (one list of token ids per input), instead of ``inputs``, for the
    #: providers whose API takes it (OpenAI and Azure; see ``Dialect.embedding_token_ids``).
    token_ids: list[list[int]] | None = None


@dataclass(slots=True)
class ImageRequest:
    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    response_format: Literal["b64_json", "url"] | None = None
    extra_body: dict[str, Any] | None = None
    #: OpenAI Images API settings the caller named (``style``, ``background``, ``output_format``,
    #: ``output_compression``, ``moderation``): sent as they are to OpenAI-shaped APIs, which take
    #: them, and left out for the others, which have no such settings (unlike ``extra_body``).
    openai_options: dict[str, Any] | None = None


# --------------------------------------------------------------------------- responses


@dataclass(slots=True)
class Usage:
    """Token counts. ``input_tokens`` includes cached tokens; ``output_tokens`` includes
    reasoning tokens (the providers' own convention for billing).

    ``reported`` is False when the upstream did not say what was used (an answer without a
    ``usage`` object, a stream cut before its usage event, an Ollama embedding without
    ``prompt_eval_count``): the counts are then estimates (:mod:`cloverleaf._estimate`, from the
    text sent or received) or zero where there was nothing to estimate from, never the upstream's
    word, so the call's ``cost`` is None and a gateway keeps what it reserved for the call."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: Input tokens served from the provider's prompt cache (billed at the cached rate).
    cached_tokens: int = 0
    #: Input tokens written to the prompt cache (Anthropic bills these at a premium).
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: What the upstream says it charged for this call (USD), where it reports one (OpenRouter's
    #: ``usage.cost``): it wins over a price-table estimate.
    cost: float | None = None
    #: The part of ``cache_write_tokens`` written to a one-hour cache (Anthropic's ``ttl: "1h"``),
    #: which bills at a higher rate than the default five-minute cache.
    cache_write_1h_tokens: int = 0
    #: False when the upstream did not report the usage: the counts are estimates (see the class docstring).
    reported: bool = True
    #: The part of ``input_tokens`` that was audio, cached or not (Gemini's ``promptTokensDetails``,
    #: OpenAI's ``prompt_tokens_details.audio_tokens``): some providers bill it at its own rate.
    audio_input_tokens: int = 0
    #: Web searches the provider ran on the server for this call (Anthropic's
    #: ``usage.server_tool_use.web_search_requests``): billed per search, on top of the tokens.
    web_search_requests: int = 0
    #: The processing tier the upstream says served the call (OpenAI's ``service_tier``:
    #: ``default``, ``flex``, ``priority``): a tier bills at its own rates where the table lists them.
    service_tier: str | None = None
    #: The part of ``cached_tokens`` that was audio (Gemini's ``cacheTokensDetails``), so also part
    #: of ``audio_input_tokens``: it bills at the cached audio rate, neither as fresh audio nor as
    #: cached text. 0 where the upstream does not say (the cached tokens are then taken to be text).
    cached_audio_tokens: int = 0
    #: The part of ``output_tokens`` that was audio (OpenAI's ``completion_tokens_details.audio_tokens``,
    #: an audio answer): billed at the model's audio output rate, many times its text rate.
    audio_output_tokens: int = 0
    #: The part of ``input_tokens`` that was images (the Images API's
    #: ``usage.input_tokens_details.image_tokens``): gpt-image models bill it at its own rate.
    image_input_tokens: int = 0
    #: The part of ``output_tokens`` that was images (Gemini's ``candidatesTokensDetails`` IMAGE):
    #: Gemini's image models bill it at their image output rate, ten to twenty times their text rate.
    image_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0),
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.reported and other.reported,   # a sum with an unknown part is unknown
            self.audio_input_tokens + other.audio_input_tokens,
            self.web_search_requests + other.web_search_requests,
            self.service_tier or other.service_tier,
            self.cached_audio_tokens + other.cached_audio_tokens,
            self.audio_output_tokens + other.audio_output_tokens,
            self.image_input_tokens + other.image_input_tokens,
            self.image_output_tokens + other.image_output_tokens,
        )


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]


@dataclass(slots=True)
class ResponseMetadata:
    latency_ms: float | None = None
    time_to_first_token_ms: float | None = None
    request_id: str | None = None
    #: Response headers worth keeping (rate-limit state, request ids); never auth headers.
    headers: dict[str, str] = field(default_factory=dict)
    #: The provider's response id (``chatcmpl-…``, ``msg_…``).
    response_id: str | None = None
    #: The provider's raw finish reason before normalisation (``end_turn``, ``STOP``…).
    raw_finish_reason: str | None = None
    #: Which gateway target served the call, and attempts made (set by the gateway).
    target: str | None = None
    attempts: list[Any] = field(default_factory=list)
    #: Provider-specific extras (e.g. Azure content-filter results).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ChatResponse:
    parts: list[Part]
    model: str
    provider: str
    finish_reason: FinishReason | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    parsed: Any = None
    metadata: ResponseMetadata = field(default_factory=ResponseMetadata)

    @property
    def content(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    @property
    def text(self) -> str:
        return self.content

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]

    @property
    def reasoning(self) -> str | None:
        texts = [p.text for p in self.parts if isinstance(p, Reasoning) and p.text]
        return "".join(texts) if texts else None

    @property
    def refusal(self) -> str | None:
        """The model's refusal message (OpenAI ``message.refusal``), when it declined to answer.
        It is also the response's text, and ``finish_reason`` is ``content_filter``;
        ``metadata.raw_finish_reason`` keeps what the upstream sent."""
        refusal = self.metadata.extra.get("refusal")
        return refusal if isinstance(refusal, str) and refusal else None

    def to_message(self) -> Message:
        """The assistant turn to append to the history for the next call (keeps reasoning
        signatures and tool calls so multi-turn conversations verify, and the server tool blocks
        of an Anthropic answer, which a ``pause_turn`` continuation must send back)."""
        blocks = self.metadata.extra.get("server_tool_blocks")
        extra: dict[str, Any] | None = None
        if isinstance(blocks, list) and blocks:
            extra = {"provider": self.provider, "server_tool_blocks": blocks,
                     "server_tool_block_positions": self.metadata.extra.get("server_tool_block_positions")}
        return Message(Role.ASSISTANT, parts=list(self.parts), extra=extra)


@dataclass(slots=True)
class EmbeddingResponse:
    vectors: list[list[float]]
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    metadata: ResponseMetadata = field(default_factory=ResponseMetadata)


@dataclass(slots=True)
class GeneratedImage:
    data: bytes | None = None
    url: str | None = None
    media_type: str = "image/png"
    revised_prompt: str | None = None

    def __repr__(self) -> str:
        what = f"{len(self.data)} bytes" if self.data is not None else self.url
        return f"GeneratedImage({self.media_type}, {what})"


@dataclass(slots=True)
class ImageResponse:
    images: list[GeneratedImage]
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    metadata: ResponseMetadata = field(default_factory=ResponseMetadata)
    #: Set when fewer images came back than asked because part of a call split into several
    #: requests (Imagen's four a call, Gemini's one) failed: how many came, and the failure. The
    #: images made are here and in ``cost``; None when nothing failed (:mod:`._split_images`).
    incomplete: str | None = None


# --------------------------------------------------------------------------- streaming

StreamEventType = Literal["text", "reasoning", "tool_call_delta", "citation", "attachment", "usage", "done", "raw"]


@dataclass(slots=True)
class StreamEvent:
    """One decoded stream event.

    - ``text``: ``text`` is the new text; ``index``, where the provider sends its answer as
      numbered blocks (Anthropic), is the block it belongs to.
    - ``citation``: ``citation`` is a :class:`Citation` of the text block ``index`` (it comes
      before that block's text, as Anthropic streams it).
    - ``attachment``: ``attachment`` is a whole :class:`Attachment` the model produced (an image
      Gemini generated, its ``inlineData``), a part of the answer in its place.
    - ``reasoning``: ``text`` is new reasoning text and/or ``signature``/``redacted`` arrive.
    - ``tool_call_delta``: ``index`` identifies the call; ``id``/``name`` arrive once,
      ``arguments`` is the next JSON fragment.
    - ``usage``: ``usage`` holds counts so far (later events replace earlier fields that are non-zero).
    - ``done``: ``finish_reason`` (normalised), ``raw_finish_reason``, ``model``, ``id``;
      the client attaches the assembled ``response``.
    - ``raw``: ``extra["event"]`` is the provider's own stream event, parsed, before the
      events decoded from it; only when the request set ``raw_events`` and the adapter
      relays (the OpenAI Responses adapter: a gateway serving that same API passes them on).
    """

    type: StreamEventType
    text: str | None = None
    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    signature: str | None = None
    redacted: str | None = None
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    model: str | None = None
    #: Provider data to keep on the assembled part (e.g. Gemini thought signatures).
    extra: dict[str, Any] | None = None
    response: ChatResponse | None = None
    citation: Citation | None = None
    attachment: Attachment | None = None
