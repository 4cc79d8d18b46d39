"""Rough token counts, for when nobody counted: about four characters a token.

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


def text_tokens(text: str) -> int:
    """Tokens in ``text``: never 0 for text that is there."""
    return len(text) // CHARS_PER_TOKEN + 1 if text else 0


def embedding_tokens(inputs: Iterable[str], token_ids: Sequence[Sequence[int]] | None = None) -> int:
    """Input tokens of an embedding request: its texts estimated, token ids counted as they are."""
    return sum(text_tokens(text) for text in inputs) + sum(len(ids) for ids in token_ids or ())


def answer_tokens(resp: ChatResponse) -> int:
    """Output tokens of an answer: its text, reasoning and tool-call arguments estimated."""
    tokens = sum(text_tokens(p.text) for p in resp.parts if isinstance(p, Text | Reasoning))
    for call in resp.tool_calls:
        tokens += text_tokens(call.raw_arguments or (json.dumps(call.arguments) if call.arguments else ""))
    return tokens
