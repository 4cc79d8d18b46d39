"""Token counts known before a call: a bound for budgets, an estimate for rate limits.

A budget must never be overrun by concurrent calls, so what a call reserves has to be an
upper bound on what it can cost, whatever the provider's tokenizer. Every tokenizer in use
(byte-level BPE — OpenAI, Anthropic, Llama —, SentencePiece with byte fallback — Gemini,
Mistral) turns each token into at least one byte of the text, so the UTF-8 length of the
prompt bounds its token count; message framing adds a few tokens per message, which
``MESSAGE_OVERHEAD`` covers. Characters ÷ 4 (the rate-limit estimate) is no bound: 4,000
CJK characters are 12,000 bytes and about 4,000–8,000 tokens, not 1,000.

Attachments are bounded by ``ATTACHMENT_TOKENS`` each (the largest an image costs with
any current provider is under 2,500 tokens), or by their byte size when that is larger and
known (documents, audio: bytes in hand, a ``data:`` URL or base64 text, a local file). A
document, audio or video clip known only by its URL (the provider fetches it, or the gateway
will, after the budget is reserved) has no size yet, and a 300-page PDF bills some 300,000
tokens: such a request has no bound of its own (:func:`input_token_bound` gives None), and
what a target can bill it is then at most the target's context window (``CostBound``).

Fields relayed to the provider as they were sent (``extra_body``: a Responses request's built-in
tools and tool items such as a ``computer_call_output`` screenshot) are counted too, as
structures, with an image inside them bounded as an attachment.

Structures (tool schemas, tool-call arguments) are measured by an explicit walk, not by
``json.dumps``/``str``, so a deeply nested one cannot raise ``RecursionError`` here.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import fields, is_dataclass
from typing import Any

from .._documents import plain_parts
from .._errors import AttachmentError
from .._types import Attachment, ChatRequest, Document, Text, ToolCall, ToolResult, Usage
from ..attachments.sniff import claimed_kind, from_name, kind_of, sniff
from ..attachments.sources import classify

#: Tokens of framing per message (role markers, separators), and per request.
MESSAGE_OVERHEAD = 16
REQUEST_OVERHEAD = 64
#: The bound for one attachment whose size is not known or is small.
ATTACHMENT_TOKENS = 6_400


def text_bytes(text: str) -> int:
    """UTF-8 length without encoding ASCII (``isascii`` is O(1) in CPython)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


#: keys whose string value names content the provider fetches or decodes and bills as an image/file
_MEDIA_KEYS = frozenset({"image_url", "file_id", "file_url"})


def structure_bytes(value: Any, media: bool = False) -> int:
    """An upper bound of the JSON size of ``value`` (strings as UTF-8, 8 bytes a scalar),
    walked with a stack rather than recursion. ``media``: a ``data:image/`` string counts as an
    attachment (billed by its pixels, not its base64 length) and a string under an
    ``image_url``/``file_id``/``file_url`` key as at least one (the provider fetches it)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += ATTACHMENT_TOKENS if media and item.startswith("data:image/") else text_bytes(item) + 2
        elif isinstance(item, dict):
            total += 2
            for k, v in item.items():
                total += (text_bytes(k) if isinstance(k, str) else 24) + 4
                if media and k in _MEDIA_KEYS and isinstance(v, str) and not v.startswith("data:image/"):
                    total += ATTACHMENT_TOKENS
                stack.append(v)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 24
    return total


#: keys under which a relayed structure names a file the provider reads (a PDF by URL, an upload)
_FILE_KEYS = frozenset({"file_id", "file_url"})


def _attachment_tokens(part: Attachment) -> int | None:
    """At most how many tokens ``part`` bills, or None when its size cannot be known before the
    call (a document, audio or video clip known by its URL only)."""
    data = part.data if part.data is not None else (part.source if isinstance(part.source, bytes) else None)
    if data is not None:
        # an image is billed by its pixels, which every provider caps, not by its bytes
        return ATTACHMENT_TOKENS if _kind(part, sniff(data[:64])) == "image" else max(ATTACHMENT_TOKENS, len(data))
    if part.url is None and part.source is None:
        return ATTACHMENT_TOKENS
    try:
        source = classify(part.source) if part.url is None and part.source is not None else None
    except AttachmentError:     # refused when the attachment is loaded: nothing is sent or billed
        return ATTACHMENT_TOKENS
    if source is not None and source.kind in ("data-url", "base64"):   # its bytes are fewer than its text
        text = str(source.value)
        inline_type = _data_url_type(text) if source.kind == "data-url" else _base64_type(text)
        return ATTACHMENT_TOKENS if _kind(part, inline_type) == "image" else max(ATTACHMENT_TOKENS, len(text))
    name = part.url or (str(source.value) if source is not None else None)
    if _kind(part, from_name(name)) == "image":
        return ATTACHMENT_TOKENS
    if source is not None and source.kind == "path":
        try:
            return max(ATTACHMENT_TOKENS, os.path.getsize(str(source.value)))
        except OSError:         # the load will fail: nothing is sent or billed
            return ATTACHMENT_TOKENS
    return None


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


def input_token_bound(req: ChatRequest) -> int | None:
    """At most how many input tokens ``req`` can be billed, for any tokenizer; None when an
    attachment's size cannot be known before the call (see the module docstring)."""
    sized = [True]

    def attachment(part: Attachment) -> int:
        tokens = _attachment_tokens(part)
        if tokens is None:
            sized[0] = False
            return 0
        return tokens

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
        total += structure_bytes(req.extra_body, media=True)
        if _names_remote_file(req.extra_body):
            sized[0] = False
    return total if sized[0] else None


def texts_bound(texts: list[str] | tuple[str, ...]) -> int:
    """The same bound for embedding inputs and image prompts."""
    return REQUEST_OVERHEAD + sum(text_bytes(t) + MESSAGE_OVERHEAD for t in texts)


def input_bound(operation: str, req: Any) -> int | None:
    """The input bound of a chat, stream, embedding or image request (None: see
    :func:`input_token_bound`)."""
    if operation in ("chat", "stream"):
        return input_token_bound(req)
    if operation == "embed":
        return texts_bound(req.inputs)
    return texts_bound([req.prompt])


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
        #: since every call with a budget asks
        self._tiers: dict[int, tuple[Any, int | None, tuple[float, float], tuple[float, float]]] = {}

    def __call__(self, targets: list[Any], input_tokens: int | None, output_tokens: int) -> float:
        bound = 0.0
        tiers = self._tiers
        for t in targets:
            tokens = input_tokens if input_tokens is not None else self.window(t) or 0
            found = tiers.get(id(t))
            if found is None or found[0] is not t:
                if len(tiers) > 10_000:
                    tiers.clear()
                found = tiers[id(t)] = self._tiers_of(t)
            above = found[1]
            in_rate, out_rate = found[3] if above is not None and tokens > above else found[2]
            cost = (tokens * in_rate + output_tokens * out_rate) / 1_000_000
            if cost > bound:
                bound = cost
        return bound

    def _tiers_of(self, t: Any) -> tuple[Any, int | None, tuple[float, float], tuple[float, float]]:
        """``t``'s entry in the tier cache: its rates for a prompt up to its long-context
        threshold and above it (the same rates twice when it has no such tier)."""
        price = getattr(t, "price", None)
        above = getattr(price, "long_context_above", None) if getattr(price, "long_context", None) is not None \
            else None
        if not isinstance(above, int):
            rates = self._rates_of(t, 0)
            return t, None, rates, rates
        return t, above, self._rates_of(t, above), self._rates_of(t, above + 1)

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

    def _rates_of(self, t: Any, input_tokens: int) -> tuple[float, float]:
        """(USD per 1M input tokens billed the dearest way, USD per 1M output tokens) for a
        prompt of at most ``input_tokens``."""
        price = getattr(t, "price", None)
        if price is not None and hasattr(price, "bound_rates"):
            dearest, out_rate = price.bound_rates(input_tokens)
            return max(float(dearest), float(out_rate)), float(out_rate)
        per_input = self._engine.cost(t.target, Usage(1_000_000, 0)) or 0.0
        per_output = self._engine.cost(t.target, Usage(0, 1_000_000)) or 0.0
        return max(per_input, per_output), per_output
