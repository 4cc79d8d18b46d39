"""Neutral stream events -> OpenAI ``chat.completion.chunk`` SSE frames.

:class:`ChatChunkEncoder` writes each chunk with a prefix serialised once per stream, so a
text delta costs one ``json.dumps`` of the text. Tool calls are renumbered 0, 1, 2... in
order of appearance (a provider may number them by content block); the first chunk carries
the role; the end is the finish chunk, the usage chunk when
``stream_options.include_usage`` asked for it, and ``data: [DONE]``. An answer with sources
(Perplexity's ``citations`` and ``search_results``) carries them as top-level fields of those
last chunks, as Perplexity's own stream does.

What the whole answer's ``message`` has beside text and calls — ``annotations`` (a web source's
``url_citation``: OpenAI's search models, Claude's web search, Gemini's grounding) and ``images``
(an image Gemini made, OpenRouter's form) — comes in one chunk before the finish chunk, as
``delta.annotations`` / ``delta.images``, built from the assembled answer the ``done`` event
carries by the function that builds the whole answer's, so the two are the same. Why one chunk
at the end: an annotation's span is known only once its text is (Claude cites a block before its
text), and the OpenAI SDK's stream helper (``chat.completions.stream()``) joins list deltas by
their ``index`` and raises on a second chunk of entries without one (as an annotation or image
entry is, in the whole answer's shape), so each list must come whole, once.
"""

from __future__ import annotations

from typing import Any

from .._types import StreamEvent, Usage
from ..streams.call_ids import made_up_call_id
from . import signed_call_ids
from .http_io import dumps, dumps_text, tally_usage
from .openai_wire import OPENAI_FINISH_REASONS, finish_reason, search_sources, sources_and_images, usage_json


class ChatChunkEncoder:
    """Renders stream events as ``chat.completion.chunk`` SSE frames.

    Tool calls are renumbered 0, 1, 2... in order of appearance (a provider may number them
    by content block); the first chunk carries ``role``; ``finish`` writes the finish chunk,
    the usage chunk when asked for, and ``data: [DONE]``.
    """

    __slots__ = ("_id", "_head", "_tail", "_include_usage", "_tool_index", "_sources", "_extras", "usage",
                 "finish_reason", "_text_open", "_text_close")

    def __init__(self, *, response_id: str, model: str, created: int, include_usage: bool) -> None:
        self._id = response_id
        self._head = (f'data: {{"id":{dumps_text(response_id)},"object":"chat.completion.chunk","created":{created},'
                      f'"model":{dumps_text(model)},"choices":')
        self._tail = "}\n\n"
        #: a text chunk's bytes around its JSON-encoded text: per streamed chunk one ``dumps``
        #: and one join, no text formatting and re-encoding of the whole frame
        self._text_open = f'{self._head}[{{"index":0,"delta":{{"content":'.encode()
        self._text_close = f'}},"finish_reason":null,"logprobs":null}}]{self._tail}'.encode()
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}
        self._sources = ""   # ',"citations":[...],...' for the last chunks, when the answer has sources
        self._extras = b""   # the chunk of the answer's annotations and images, when it has any
        self.usage = Usage()
        self.finish_reason: str | None = None

    def _choice(self, delta: str, finish: str | None = None) -> bytes:
        fr = "null" if finish is None else f'"{finish}"'
        return f'{self._head}[{{"index":0,"delta":{delta},"finish_reason":{fr},"logprobs":null}}]{self._tail}'.encode()

    def start(self) -> bytes:
        return self._choice('{"role":"assistant","content":""}')

    def encode(self, ev: StreamEvent) -> bytes | None:
        t = ev.type
        if t == "text":
            if not ev.text:
                return None
            if ev.extra is not None and ev.extra.get("refusal") is True:
                return self._choice(f'{{"refusal":{dumps_text(ev.text)}}}')
            return b"".join((self._text_open, dumps(ev.text), self._text_close))
        if t == "reasoning":
            return self._choice(f'{{"reasoning_content":{dumps_text(ev.text)}}}') if ev.text else None
        if t == "tool_call_delta":
            return self._tool_delta(ev)
        if t == "usage":
            tally_usage(self.usage, ev)
        elif t == "done":
            tally_usage(self.usage, ev)
            self.finish_reason = ev.finish_reason
            if ev.extra and ev.extra.get("refusal") and ev.raw_finish_reason in OPENAI_FINISH_REASONS:
                self.finish_reason = ev.raw_finish_reason  # as the upstream sent it
            if self._tool_index and ev.finish_reason in (None, "stop"):
                self.finish_reason = "tool_calls"
            sources = search_sources(ev.extra)
            if sources:
                self._sources = "".join(f",{dumps_text(k)}:{dumps_text(v)}" for k, v in sources.items())
            extras = sources_and_images(ev.response.parts) if ev.response is not None else None
            if extras:
                self._extras = self._choice(dumps_text(extras))
        return None

    def _tool_delta(self, ev: StreamEvent) -> bytes:
        key = ev.index if ev.index is not None else len(self._tool_index)
        index = self._tool_index.get(key)
        call: dict[str, Any]
        if index is None:
            index = self._tool_index[key] = len(self._tool_index)
            # (an engine's stream has every call's id: its accumulator gives one to a call without)
            call_id = ev.id or made_up_call_id(self._id, index)
            call = {"index": index, "id": signed_call_ids.signed_id(call_id, ev.extra),
                    "type": "function", "function": {"name": ev.name or "", "arguments": ev.arguments or ""}}
            extra_content = signed_call_ids.google_extra_content(ev.extra)
            if extra_content:
                call["extra_content"] = extra_content
        else:
            call = {"index": index, "function": {"arguments": ev.arguments or ""}}
        return self._choice(f'{{"tool_calls":[{dumps_text(call)}]}}')

    def finish(self) -> bytes:
        fr = finish_reason(self.finish_reason)
        if self._sources:
            out = (f'{self._head}[{{"index":0,"delta":{{}},"finish_reason":"{fr}","logprobs":null}}]'
                   f'{self._sources}{self._tail}').encode()
        else:
            out = self._choice("{}", fr)
        if self._extras:
            out = self._extras + out
        if self._include_usage:
            out += f'{self._head}[],"usage":{dumps_text(usage_json(self.usage))}{self._sources}{self._tail}'.encode()
        return out + b"data: [DONE]\n\n"

    @staticmethod
    def error(payload: dict[str, Any]) -> bytes:
        """An error after the stream started: the OpenAI SDK raises on a chunk with ``error``."""
        return f"data: {dumps_text(payload)}\n\n".encode()
