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
known (documents, audio).

Fields relayed to the provider as they were sent (``extra_body``: a Responses request's built-in
tools and tool items such as a ``computer_call_output`` screenshot) are counted too, as
structures, with an image inside them bounded as an attachment.

Structures (tool schemas, tool-call arguments) are measured by an explicit walk, not by
``json.dumps``/``str``, so a deeply nested one cannot raise ``RecursionError`` here.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from .._documents import plain_parts
from .._types import Attachment, ChatRequest, Document, Text, ToolCall, ToolResult, Usage

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


def _attachment_tokens(part: Attachment) -> int:
    data = part.data if part.data is not None else (part.source if isinstance(part.source, bytes) else None)
    return max(ATTACHMENT_TOKENS, len(data)) if data is not None else ATTACHMENT_TOKENS


def input_token_bound(req: ChatRequest) -> int:
    """At most how many input tokens ``req`` can be billed, for any tokenizer."""
    total = REQUEST_OVERHEAD
    for msg in req.messages:
        total += MESSAGE_OVERHEAD
        if msg.name:
            total += text_bytes(msg.name)
        for part in msg.parts:
            if isinstance(part, Text):
                total += text_bytes(part.text)
            elif isinstance(part, Attachment):
                total += _attachment_tokens(part)
            elif isinstance(part, Document):   # what it reads as, plus its title and context once more
                total += MESSAGE_OVERHEAD + text_bytes(part.title or "") + text_bytes(part.context or "")
                for inner in plain_parts(part):
                    total += text_bytes(inner.text) if isinstance(inner, Text) else (
                        _attachment_tokens(inner) if isinstance(inner, Attachment) else 0)
            elif isinstance(part, ToolResult):
                if isinstance(part.content, str):
                    total += text_bytes(part.content)
                else:
                    for inner in part.content:
                        total += text_bytes(inner.text) if isinstance(inner, Text) else _attachment_tokens(inner)
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
    return total


def texts_bound(texts: list[str] | tuple[str, ...]) -> int:
    """The same bound for embedding inputs and image prompts."""
    return REQUEST_OVERHEAD + sum(text_bytes(t) + MESSAGE_OVERHEAD for t in texts)


def input_bound(operation: str, req: Any) -> int:
    """The input bound of a chat, stream, embedding or image request."""
    if operation in ("chat", "stream"):
        return input_token_bound(req)
    if operation == "embed":
        return texts_bound(req.inputs)
    return texts_bound([req.prompt])


class CostBound:
    """The most a call can cost at any of its targets: ``input_tokens`` (a bound) priced at
    the dearest rate input can be billed at (cache writes, and some providers' input rates,
    exceed the output rate) plus ``output_tokens`` at the output rate. A target's two rates
    are worked out once."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._rates: dict[int, tuple[Any, tuple[float, float]]] = {}

    def __call__(self, targets: list[Any], input_tokens: int, output_tokens: int) -> float:
        bound = 0.0
        rates = self._rates
        for t in targets:
            found = rates.get(id(t))
            if found is None or found[0] is not t:
                if len(rates) > 10_000:
                    rates.clear()
                found = rates[id(t)] = (t, self._rates_of(t))
            in_rate, out_rate = found[1]
            cost = (input_tokens * in_rate + output_tokens * out_rate) / 1_000_000
            if cost > bound:
                bound = cost
        return bound

    @staticmethod
    def unpriced(targets: list[Any]) -> tuple[str, ...]:
        """The targets with no price: a call to one can spend anything, so no bound holds."""
        found: tuple[str, ...] = ()
        for t in targets:   # a loop, not a generator: this runs for every call with a budget
            if getattr(t.target, "price", None) is None:
                found += (t.key,)
        return found

    def _rates_of(self, t: Any) -> tuple[float, float]:
        """(USD per 1M input tokens billed the dearest way, USD per 1M output tokens)."""
        price = getattr(t, "price", None)
        if price is not None and hasattr(price, "output"):
            out_rate = float(price.output)
            return max(float(price.dearest_input), out_rate), out_rate
        per_input = self._engine.cost(t.target, Usage(1_000_000, 0)) or 0.0
        per_output = self._engine.cost(t.target, Usage(0, 1_000_000)) or 0.0
        return max(per_input, per_output), per_output
