"""Token counts known before a call: a bound for budgets, an estimate for rate limits.

A budget must never be overrun by concurrent calls, so what a call reserves has to be an
upper bound on what it can cost, whatever the provider's tokenizer. Every tokenizer in use
(byte-level BPE — OpenAI, Anthropic, Llama —, SentencePiece with byte fallback — Gemini,
Mistral) turns each token into at least one byte of the text, so the UTF-8 length of the
prompt bounds its token count; message framing adds a few tokens per message, which
``MESSAGE_OVERHEAD`` covers. Characters ÷ 4 (the rate-limit estimate) is no bound: 4,000
CJK characters are 12,000 bytes and about 4,000–8,000 tokens, not 1,000.

An attachment's bound depends on the target (:class:`PromptBound`): an image is billed by its
pixels under each model's own rule, which caps them (:mod:`.image_bounds`: from 1,445 tokens
at gpt-4o to 48,169 at gpt-4o-mini, the largest for a model it does not know; ``detail: "low"``
lowers it where the provider bills low detail less); a PDF whose bytes are in hand by its pages
(:mod:`.pdf_pages`: each page's text and picture, as Anthropic and OpenAI bill it), or its byte
count if that is more; other attachments (audio, a document of unknown kind) by their byte size
when known (bytes in hand, a ``data:`` URL or base64 text, a local file), ``ATTACHMENT_TOKENS``
at least; and each of those at most the target's context window, since a provider cannot bill
more input than fits. A document, audio or video clip known only by its URL (the provider
fetches it, or the gateway will, after the budget is reserved), or a PDF whose pages cannot be
counted, has no size yet, and a 300-page PDF bills some 300,000 tokens: such a request has no
bound of its own (:func:`input_token_bound` gives None), and what a target can bill it is then
at most the target's context window (``CostBound``).

Fields relayed to the provider as they were sent (``extra_body``: a Responses request's built-in
tools and tool items such as a ``computer_call_output`` screenshot) are counted too, as
structures, with an image inside them bounded as an image attachment.

A call can bill more than tokens: a server-side web search (Anthropic's ``web_search`` tool,
added through ``extra_body``) is a fee per search, so a budget reserves for as many searches as
the tool's ``max_uses`` allows, or :data:`DEFAULT_WEB_SEARCHES` when it sets none
(:func:`web_search_bound`); a call that asks for a processing tier (``service_tier``) is bounded
at that tier's rates where its price lists them (OpenAI's ``priority`` bills twice the standard).

Structures (tool schemas, tool-call arguments) are measured by an explicit walk, not by
``json.dumps``/``str``, so a deeply nested one cannot raise ``RecursionError`` here.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from .._documents import plain_parts
from .._errors import AttachmentError
from .._types import Attachment, ChatRequest, Document, Text, ToolCall, ToolResult, Usage
from ..attachments.sniff import claimed_kind, from_name, kind_of, sniff
from ..attachments.sources import classify, decode_base64, parse_data_url
from .image_bounds import ImageRule, rule_for
from .pdf_pages import page_count

#: Tokens of framing per message (role markers, separators), and per request.
MESSAGE_OVERHEAD = 16
REQUEST_OVERHEAD = 64
#: The bound for one attachment whose size is not known or is small.
ATTACHMENT_TOKENS = 6_400
#: Web searches a call is taken to be able to run when its web search tool sets no ``max_uses``.
DEFAULT_WEB_SEARCHES = 10


def text_bytes(text: str) -> int:
    """UTF-8 length without encoding ASCII (``isascii`` is O(1) in CPython)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


#: keys whose string value names content the provider fetches or decodes and bills as an image/file
_MEDIA_KEYS = frozenset({"image_url", "file_id", "file_url"})


def structure_bytes(value: Any, images: list[str | None] | None = None) -> int:
    """An upper bound of the JSON size of ``value`` (strings as UTF-8, 8 bytes a scalar),
    walked with a stack rather than recursion. ``images``, when given, collects the media in it
    instead of counting their text (they bill by their pixels, per target, not by their base64
    length): a ``data:image/`` string, and a string under an ``image_url``/``file_id``/``file_url``
    key (the provider fetches it), each with the ``detail`` its object sets."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if images is not None and item.startswith("data:image/"):
                images.append(None)
            else:
                total += text_bytes(item) + 2
        elif isinstance(item, dict):
            total += 2
            for k, v in item.items():
                total += (text_bytes(k) if isinstance(k, str) else 24) + 4
                if images is not None and isinstance(v, str) and (k in _MEDIA_KEYS or v.startswith("data:image/")):
                    detail = item.get("detail")
                    images.append(detail if isinstance(detail, str) else None)
                else:
                    stack.append(v)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 24
    return total


#: keys under which a relayed structure names a file the provider reads (a PDF by URL, an upload)
_FILE_KEYS = frozenset({"file_id", "file_url"})
#: the text one PDF page can add besides its picture (Anthropic counts 1,500-3,000 a typical page)
PDF_PAGE_TEXT_TOKENS = 8_000
#: a base64 or data: URL PDF larger than this is refused when loaded, whatever the limit set
_MOST_INLINE = 1 << 31


@dataclass(frozen=True, slots=True)
class Media:
    """One attachment's bound where it depends on the target: ``kind`` "image" (its ``detail``),
    "pdf" (``pages`` of it, ``size`` its bytes) or "sized" (``size`` tokens at any target)."""

    kind: str
    size: int = ATTACHMENT_TOKENS
    detail: str | None = None
    pages: int = 0

    def tokens(self, rule: ImageRule) -> int:
        if self.kind == "image":
            return rule.image(self.detail)
        if self.kind == "pdf":   # each page's text and picture, or its bytes if that is more
            return max(self.size, self.pages * (PDF_PAGE_TEXT_TOKENS + rule.pdf_page()))
        return self.size


_NOTHING_SENT = Media("sized")
_IMAGE = Media("image")


def _attachment_bound(part: Attachment) -> Media | None:
    """At most how many tokens ``part`` bills, or None when its size cannot be known before the
    call (a document, audio or video clip known by its URL only, a PDF whose pages cannot be read)."""
    data = part.data if part.data is not None else (part.source if isinstance(part.source, bytes) else None)
    if data is not None:
        # an image is billed by its pixels, which every provider caps, not by its bytes
        return _in_hand(part, _kind(part, sniff(data[:64])), data)
    if part.url is None and part.source is None:
        return _NOTHING_SENT
    try:
        source = classify(part.source) if part.url is None and part.source is not None else None
    except AttachmentError:     # refused when the attachment is loaded: nothing is sent or billed
        return _NOTHING_SENT
    if source is not None and source.kind in ("data-url", "base64"):   # its bytes are fewer than its text
        text = str(source.value)
        inline_type = _data_url_type(text) if source.kind == "data-url" else _base64_type(text)
        kind = _kind(part, inline_type)
        if kind == "pdf":
            try:
                pdf = parse_data_url(text, _MOST_INLINE)[1] if source.kind == "data-url" \
                    else decode_base64(text, _MOST_INLINE)
            except AttachmentError:     # refused when loaded
                return _NOTHING_SENT
            return _in_hand(part, kind, pdf)
        return _image(part) if kind == "image" else Media("sized", max(ATTACHMENT_TOKENS, len(text)))
    name = part.url or (str(source.value) if source is not None else None)
    kind = _kind(part, from_name(name))
    if kind == "image":
        return _image(part)
    if source is not None and source.kind == "path":
        try:
            if kind != "pdf":
                return Media("sized", max(ATTACHMENT_TOKENS, os.path.getsize(str(source.value))))
            with open(str(source.value), "rb") as f:
                return _in_hand(part, kind, f.read())
        except OSError:         # the load will fail: nothing is sent or billed
            return _NOTHING_SENT
    return None


def _image(part: Attachment) -> Media:
    return _IMAGE if part.detail is None else Media("image", detail=part.detail)


def _in_hand(part: Attachment, kind: str | None, data: bytes) -> Media | None:
    """The bound of an attachment whose bytes are here: an image by its pixels, a PDF by its
    pages (None when they cannot be counted), anything else by its byte count."""
    if kind == "image":
        return _image(part)
    if kind == "pdf":
        pages = page_count(data)
        return None if pages is None else Media("pdf", max(ATTACHMENT_TOKENS, len(data)), pages=pages)
    return Media("sized", max(ATTACHMENT_TOKENS, len(data)))


def _kind(part: Attachment, found_type: str | None) -> str | None:
    """The attachment's kind as declared, else as its media type or ``found_type`` says."""
    if part.type:
        try:
            return claimed_kind(part.type)
        except AttachmentError:   # refused when loaded: nothing is sent or billed
            return None
    return kind_of(part.media_type) or kind_of(found_type)


def _data_url_type(text: str) -> str | None:
    """The media type a ``data:`` URL declares (``data:image/png;base64,...``), else the one its
    payload's first bytes show."""
    head, _, payload = text[5:].partition(",")
    return head.split(";", 1)[0].strip() or _base64_type(payload)


def _base64_type(text: str) -> str | None:
    """The media type base64 text's first bytes show (a PNG, JPEG, PDF signature)."""
    try:
        return sniff(base64.b64decode(text[:64].strip()[:60], validate=False))
    except (binascii.Error, ValueError):
        return None


def _names_remote_file(value: Any) -> bool:
    """Whether a relayed structure names a file the provider fetches or holds (``file_url``,
    ``file_id``): its size is unknown here, like a provider-fetched attachment's."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in _FILE_KEYS and isinstance(v, str) and not v.startswith("data:"):
                    return True
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class PromptBound:
    """At most how many input tokens a request can bill: ``base`` (its text, tools, and whatever
    bills the same everywhere) plus ``media``, the attachments whose bound depends on the target
    (an image's pixels are billed by each model's own rule; a PDF's pages too), each capped by
    the target's context window (a provider cannot bill more input than fits). ``sized`` False:
    an attachment's size cannot be known before the call (see the module docstring)."""

    __slots__ = ("base", "media", "sized")

    def __init__(self, base: int, media: tuple[Media, ...] = (), sized: bool = True) -> None:
        self.base = base
        self.media = media
        self.sized = sized

    def at(self, model: str | None, window: int | None) -> int | None:
        """The bound at a target serving ``model`` (None: any model) whose context window is
        ``window`` (None: unknown); None when the request has no bound of its own."""
        if not self.sized:
            return None
        total = self.base
        if self.media:
            rule = rule_for(model)
            for part in self.media:
                tokens = part.tokens(rule)
                total += tokens if window is None or tokens < window else window
        return total


def prompt_bound(req: ChatRequest) -> PromptBound:
    """The :class:`PromptBound` of a chat request, for any tokenizer."""
    total, media, sized = _measure(req)
    return PromptBound(total, tuple(media), sized)


def _measure(req: ChatRequest) -> tuple[int, list[Media], bool]:
    """(what ``req`` bills the same at every target, its attachments' bounds, whether every
    attachment's size is known)."""
    sized = [True]
    media: list[Media] = []

    def attachment(part: Attachment) -> int:
        bound = _attachment_bound(part)
        if bound is None:
            sized[0] = False
        else:
            media.append(bound)
        return 0

    total = REQUEST_OVERHEAD
    for msg in req.messages:
        total += MESSAGE_OVERHEAD
        if msg.name:
            total += text_bytes(msg.name)
        for part in msg.parts:
            if isinstance(part, Text):
                total += text_bytes(part.text)
            elif isinstance(part, Attachment):
                total += attachment(part)
            elif isinstance(part, Document):   # what it reads as, plus its title and context once more
                total += MESSAGE_OVERHEAD + text_bytes(part.title or "") + text_bytes(part.context or "")
                for inner in plain_parts(part):
                    total += text_bytes(inner.text) if isinstance(inner, Text) else (
                        attachment(inner) if isinstance(inner, Attachment) else 0)
            elif isinstance(part, ToolResult):
                if isinstance(part.content, str):
                    total += text_bytes(part.content)
                else:
                    for inner in part.content:
                        total += text_bytes(inner.text) if isinstance(inner, Text) else attachment(inner)
                total += MESSAGE_OVERHEAD
            elif isinstance(part, ToolCall):
                total += text_bytes(part.name) + MESSAGE_OVERHEAD + (
                    text_bytes(part.raw_arguments) if part.raw_arguments is not None
                    else structure_bytes(part.arguments))
            else:   # reasoning and other parts sent back: every field, whatever it is called
                total += structure_bytes([getattr(part, f.name) for f in fields(part)]) if is_dataclass(part) \
                    else structure_bytes(str(part))
    for tool in req.tools or ():
        total += MESSAGE_OVERHEAD + text_bytes(tool.name) + text_bytes(tool.description or "")
        total += structure_bytes(tool.parameters)
    if req.response_format is not None and req.response_format.schema is not None:
        total += structure_bytes(req.response_format.schema)
    for stop in req.stop or ():
        total += text_bytes(stop)
    if req.extra_body:   # relayed as sent (built-in Responses tools and items): billed like the rest
        relayed: list[str | None] = []
        total += structure_bytes(req.extra_body, relayed)
        media.extend(_IMAGE if detail is None else Media("image", detail=detail) for detail in relayed)
        if _names_remote_file(req.extra_body):
            sized[0] = False
    return total, media, sized[0]


def input_token_bound(req: ChatRequest, model: str | None = None) -> int | None:
    """At most how many input tokens ``req`` can bill at ``model`` (None: at any model), for any
    tokenizer; None when an attachment's size cannot be known before the call."""
    return prompt_bound(req).at(model, None)


def texts_bound(texts: list[str] | tuple[str, ...]) -> int:
    """The same bound for embedding inputs and image prompts."""
    return REQUEST_OVERHEAD + sum(text_bytes(t) + MESSAGE_OVERHEAD for t in texts)


def input_bound(operation: str, req: Any) -> int | PromptBound | None:
    """The input bound of a chat, stream, embedding or image request: a number when it is the
    same at every target (no attachment: what nearly every call is, kept as cheap as that), a
    :class:`PromptBound` when its attachments bill per target, None when it has no bound of its
    own (see :func:`input_token_bound`)."""
    if operation in ("chat", "stream"):
        total, media, sized = _measure(req)
        if not sized:
            return None
        return PromptBound(total, tuple(media)) if media else total
    if operation == "embed":   # token ids (pre-tokenised input) are billed one token each
        bound = texts_bound(req.inputs)
        for ids in req.token_ids or ():
            bound += len(ids) + MESSAGE_OVERHEAD
        return bound
    return texts_bound([req.prompt])


def media_tokens(parts: list[Attachment], targets: list[Any]) -> int:
    """At most how many input tokens ``parts`` bill at any of ``targets``, for rate limits (the
    budgets' rules: an image by its model's pixel rule, a PDF by its pages, anything else by
    its size; each at most the target's context window). An attachment whose size cannot be
    known before the call (a PDF by URL) counts ``ATTACHMENT_TOKENS``: a tpm limit admits on an
    estimate, where a budget needs a bound. Runs only for a call with attachments."""
    bounds = [_attachment_bound(part) or _NOTHING_SENT for part in parts]
    most = 0
    for t in targets or (None,):
        rule = rule_for(model_of(t) if t is not None else None)
        window = CostBound.window(t) if t is not None else None
        total = 0
        for bound in bounds:
            tokens = bound.tokens(rule)
            total += tokens if window is None or tokens < window else window
        most = max(most, total)
    return most


def web_search_bound(req: Any) -> int:
    """The most server-side web searches ``req`` can run: the ``max_uses`` of each web search
    tool (``type`` ``web_search_...``) among its ``extra_body`` tools, :data:`DEFAULT_WEB_SEARCHES`
    for one that sets none; 0 without such a tool."""
    extra = getattr(req, "extra_body", None)
    tools = extra.get("tools") if isinstance(extra, dict) else None
    total = 0
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith("web_search_"):
            uses = tool.get("max_uses")
            total += uses if isinstance(uses, int) and not isinstance(uses, bool) and uses >= 0 \
                else DEFAULT_WEB_SEARCHES
    return total


def service_tier_of(req: Any) -> str | None:
    """The processing tier ``req`` asks for in its ``extra_body`` (``service_tier``), if any."""
    extra = getattr(req, "extra_body", None)
    tier = extra.get("service_tier") if isinstance(extra, dict) else None
    return tier if isinstance(tier, str) else None


def model_of(t: Any) -> str | None:
    """The model id target ``t`` sends to its provider (the Engine's ``Target.model``; else the
    route's ``provider/model``), which picks its image rule."""
    model = getattr(getattr(t, "target", None), "model", None)
    if isinstance(model, str):
        return model
    spec_model = getattr(getattr(t, "spec", None), "model", None)
    return spec_model if isinstance(spec_model, str) else None


#: Targets whose rates are kept worked out (the router's ``MAX_CACHED``: see ``CostBound._tiers``).
MAX_CACHED_TARGETS = 4096


class CostBound:
    """The most a call can cost at any of its targets: ``input_tokens`` (a bound; None when the
    request has none, and then each target's widest context window, the most input a provider
    bills) priced at the dearest rate input can be billed at (cache writes, audio, and some
    providers' input rates, exceed the output rate; a long-context tier's, once a prompt that
    long could reach it) plus ``output_tokens`` at the output rate of that tier."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        #: id(target) → (the target, the prompt length above which its long-context tier bills
        #: or None, its rates up to that length, its rates above it): worked out once a target,
        #: since every call with a budget asks; no more targets than the router keeps resolved
        #: (each model name a caller tries is one: an entry must not outlive its resolution)
        self._tiers: dict[int, tuple[Any, int | None, tuple[float, float], tuple[float, float]]] = {}

    def __call__(self, targets: list[Any], input_tokens: PromptBound | int | None, output_tokens: int,
                 service_tier: str | None = None) -> float:
        """``service_tier``: the tier the call asks for, whose rates bound it where a target's
        price lists them (worked out each call: rarely asked for)."""
        bound = 0.0
        tiers = self._tiers
        per_target: PromptBound | None = None
        if isinstance(input_tokens, PromptBound):   # attachments: each target bills them its own way
            per_target, input_tokens = (input_tokens if input_tokens.sized else None), None
        for t in targets:
            if input_tokens is not None:
                tokens = input_tokens
            else:
                window = self.window(t)
                tokens = (per_target.at(model_of(t), window) if per_target is not None else window) or 0
            found = tiers.get(id(t)) if service_tier is None else self._tiers_of(t, service_tier)
            if found is None or found[0] is not t:
                if len(tiers) >= MAX_CACHED_TARGETS:
                    tiers.clear()
                found = tiers[id(t)] = self._tiers_of(t)
            above = found[1]
            in_rate, out_rate = found[3] if above is not None and tokens > above else found[2]
            cost = (tokens * in_rate + output_tokens * out_rate) / 1_000_000
            if cost > bound:
                bound = cost
        return bound

    def _tiers_of(self, t: Any, service_tier: str | None = None) -> tuple[Any, int | None, tuple[float, float],
                                                                          tuple[float, float]]:
        """``t``'s entry in the tier cache: its rates for a prompt up to its long-context
        threshold and above it (the same rates twice when it has no such tier), at
        ``service_tier``'s rates when given and listed."""
        price: Any = getattr(t, "price", None)
        if service_tier is not None and hasattr(price, "tier"):
            price = price.tier(service_tier)
        above = getattr(price, "long_context_above", None) if getattr(price, "long_context", None) is not None \
            else None
        if not isinstance(above, int):
            rates = self._rates_of(t, 0, price)
            return t, None, rates, rates
        return t, above, self._rates_of(t, above, price), self._rates_of(t, above + 1, price)

    @staticmethod
    def search_fees(targets: list[Any], searches: int) -> float:
        """The most ``searches`` server-side web searches cost at any of ``targets``."""
        fees = [t.price.search_fees(searches) for t in targets
                if searches and hasattr(getattr(t, "price", None), "search_fees")]
        return max(fees, default=0.0)

    @staticmethod
    def unpriced(targets: list[Any]) -> tuple[str, ...]:
        """The targets with no price: a call to one can spend anything, so no bound holds."""
        found: tuple[str, ...] = ()
        for t in targets:   # a loop, not a generator: this runs for every call with a budget
            if getattr(t.target, "price", None) is None:
                found += (t.key,)
        return found

    @classmethod
    def unwindowed(cls, targets: list[Any]) -> tuple[str, ...]:
        """The targets with no known context window: a request whose input has no bound of its
        own (an attachment of unknown size) can spend anything there."""
        return tuple(t.key for t in targets if not cls.window(t))

    @staticmethod
    def window(t: Any) -> int | None:
        """The most input tokens target ``t`` can bill a call for: its context window, or its
        price's long-context tier's when that is wider (the 1M-context beta)."""
        price = getattr(t, "price", None)
        widest = getattr(price, "widest_window", None)
        window: int | None = t.context_window
        if isinstance(widest, int) and (window is None or widest > window):
            return widest
        return window

    def _rates_of(self, t: Any, input_tokens: int, price: Any = None) -> tuple[float, float]:
        """(USD per 1M input tokens billed the dearest way, USD per 1M output tokens) for a
        prompt of at most ``input_tokens`` (at ``price``'s rates, else the target's)."""
        price = price if price is not None else getattr(t, "price", None)
        if price is not None and hasattr(price, "bound_rates"):
            dearest, out_rate = price.bound_rates(input_tokens)
            return max(float(dearest), float(out_rate)), float(out_rate)
        per_input = self._engine.cost(t.target, Usage(1_000_000, 0)) or 0.0
        per_output = self._engine.cost(t.target, Usage(0, 1_000_000)) or 0.0
        return max(per_input, per_output), per_output
