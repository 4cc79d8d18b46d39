"""Token counts made without the provider's tokenizer: before a call (rate limits, the
``/v1/messages/count_tokens`` answer) and after one whose upstream counted nothing.

The rule (:func:`text_units`): ASCII text at four characters a token, what English prose and
code come to in every tokenizer the providers use; any other text at one token per UTF-8
byte, which no tokenizer exceeds (byte-level BPE — OpenAI, Anthropic, Llama — and
SentencePiece with byte fallback each turn a token into at least one byte). So a CJK or emoji
prompt is never under-counted: characters ÷ 4 put 4,000 CJK Extension-B characters (16,000
bytes, over 4,000 tokens in any tokenizer) at 1,000, and a tpm limit let two such calls
through in one minute at several times the limit. The price is an over-estimate for text
whose tokenizer merges its characters well (common CJK is about 1-1.5 tokens a character,
counted as 3; Cyrillic about 2.5 characters a token, counted as 2 a character): a tpm limit
admits such prompts conservatively, never past the limit. A 4x over-estimate for ASCII would
make every tpm limit refuse English four times early; that is why ASCII keeps ÷ 4.

An upstream that reports no usage (an Ollama embedding without ``prompt_eval_count``, a stream
cut before its output count) still consumed tokens; a reported 0 would make the call free and
invisible to tpm limits. What is estimated here goes on a :class:`~cloverleaf._types.Usage` whose
``reported`` is False, so it is never priced or settled as the upstream's own word. One rule for
the SDK and the gateway, so an estimate made before a call and one made after it agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from ._types import ChatResponse, Reasoning, Text

#: Characters per token: English prose in every tokenizer the providers use is close to it.
CHARS_PER_TOKEN = 4
#: What an attachment counts for in an estimate that does not know its target's rule.
ATTACHMENT_ESTIMATE = 1000


def text_units(text: str) -> int:
    """``text``'s weight in quarter tokens: an ASCII character 1, each UTF-8 byte of any other
    character 4 (a whole token: see the module docstring). ``isascii`` is O(1), so ASCII text
    costs what ``len`` does; other text two C-level encodes."""
    if text.isascii():
        return len(text)
    ascii_chars = len(text.encode("ascii", "ignore"))
    return 4 * len(text.encode("utf-8", "surrogatepass")) - 3 * ascii_chars


def text_tokens(text: str) -> int:
    """Tokens in ``text`` (:func:`text_units`): never 0 for text that is there."""
    return text_units(text) // CHARS_PER_TOKEN + 1 if text else 0


def embedding_tokens(inputs: Iterable[str], token_ids: Sequence[Sequence[int]] | None = None) -> int:
    """Input tokens of an embedding request: its texts estimated, token ids counted as they are."""
    return sum(text_tokens(text) for text in inputs) + sum(len(ids) for ids in token_ids or ())


def answer_tokens(resp: ChatResponse) -> int:
    """Output tokens of an answer: its text, reasoning and tool-call arguments estimated."""
    tokens = sum(text_tokens(p.text) for p in resp.parts if isinstance(p, Text | Reasoning))
    for call in resp.tool_calls:
        tokens += text_tokens(call.raw_arguments or (json.dumps(call.arguments) if call.arguments else ""))
    return tokens
