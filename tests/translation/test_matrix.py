"""Every inbound API × every provider adapter, on recorded traffic (``tests/fixtures/wire``).

For each recorded stream of the conformance cases and each of the three inbound APIs:
(a) the streamed events fold to exactly the non-streamed answer — text, tool calls and their
arguments, reasoning, usage, finish reason; (b) every event and object validates against the
API's published schema; (c) splitting the upstream bytes anywhere (inside UTF-8 sequences,
inside JSON arguments) changes nothing (hypothesis). Non-streamed recordings are rendered
by each API and validated too. The README's inbound × provider table is generated here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloverleaf._types import ChatRequest, ToolCall
from cloverleaf.providers.registry import get_adapter, get_spec
from tests.conformance.test_conformance import CASES, _config
from tests.wire import cassette

from .harness import INBOUND, assemble, decode, render

ROOT = Path(__file__).resolve().parents[2]
STREAMS = [c for c in CASES if isinstance(c.request, ChatRequest) and c.request.stream]
WHOLE = [c for c in CASES if isinstance(c.request, ChatRequest) and not c.request.stream]
LABEL = {"chat_completions": "Chat Completions", "anthropic_messages": "Anthropic Messages",
         "responses": "Responses"}


def _body(case) -> bytes:
    return cassette(case.cassette)[case.interaction].response.body


def _rendered(case, pieces: list[bytes], *, check: bool = False):
    events = decode(case.provider, case.request, pieces)
    answer = assemble(case.provider, case.request, events)
    return answer, {inbound: render(inbound, events, answer, check=check) for inbound in INBOUND}


@pytest.mark.parametrize("inbound", INBOUND)
@pytest.mark.parametrize("case", STREAMS, ids=lambda c: c.id)
def test_stream_folds_to_the_non_streamed_answer(case, inbound: str) -> None:
    events = decode(case.provider, case.request, [_body(case)])
    answer = assemble(case.provider, case.request, events)
    out = render(inbound, events, answer)
    assert out.folded == out.expected
    assert answer.content or answer.tool_calls or answer.reasoning, "the recording has an answer to compare"


@pytest.mark.parametrize("case", STREAMS, ids=lambda c: c.id)
def test_split_anywhere_changes_nothing(case) -> None:
    body = _body(case)
    _, whole = _rendered(case, [body])
    reference = {k: (v.folded, v.expected) for k, v in whole.items()}

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=24, unique=True))
    def check(cuts: list[int]) -> None:
        cuts = sorted(cuts)
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        _, split = _rendered(case, pieces)
        assert {k: (v.folded, v.expected) for k, v in split.items()} == reference

    check()


@pytest.mark.parametrize("case", STREAMS, ids=lambda c: c.id)
def test_byte_by_byte_changes_nothing(case) -> None:
    """The worst split: every byte its own read (every UTF-8 sequence and JSON string cut)."""
    body = _body(case)
    _, whole = _rendered(case, [body])
    _, split = _rendered(case, [body[i:i + 1] for i in range(len(body))])
    assert {k: v.folded for k, v in split.items()} == {k: v.folded for k, v in whole.items()}


@pytest.mark.parametrize("inbound", INBOUND)
@pytest.mark.parametrize("case", WHOLE, ids=lambda c: c.id)
def test_non_streamed_answers_render_valid(case, inbound: str) -> None:
    """A non-streamed recording: each API's object validates, and a stream of the same parts
    (as the gateway would replay it) folds to it."""
    adapter = get_adapter(get_spec(case.provider))
    inter = cassette(case.cassette)
    answers = [adapter.parse_chat(i.response, case.request) for i in _responses_of(case, inter)]
    for answer in answers:
        out = render(inbound, _events_of(answer), answer)
        assert out.folded == out.expected


def _responses_of(case, inter):
    built = adapter_build = get_adapter(get_spec(case.provider)).build_chat(case.request, _config(case))
    del adapter_build
    return [inter[case.interaction]] if not isinstance(built, list) else list(inter)


def _events_of(answer):
    """The neutral events a provider stream of ``answer`` would decode to."""
    from cloverleaf._types import Reasoning, StreamEvent, Text

    events = []
    for i, part in enumerate(answer.parts):
        if isinstance(part, Text):
            events.append(StreamEvent("text", text=part.text, extra=part.extra))
        elif isinstance(part, Reasoning):
            events.append(StreamEvent("reasoning", text=part.text or None, signature=part.signature,
                                      redacted=part.redacted))
        elif isinstance(part, ToolCall):
            events.append(StreamEvent("tool_call_delta", index=i, id=part.id, name=part.name,
                                      arguments=part.arguments_json, extra=part.extra))
    events.append(StreamEvent("usage", usage=answer.usage))
    events.append(StreamEvent("done", finish_reason=answer.finish_reason,
                              raw_finish_reason=answer.metadata.raw_finish_reason))
    return events


# --------------------------------------------------------------------------- the README table


def matrix_markdown() -> str:
    """Inbound API × provider: how many recorded streams (and whole answers) each pair is proven on."""
    streams: dict[str, int] = defaultdict(int)
    whole: dict[str, int] = defaultdict(int)
    for case in STREAMS:
        streams[case.provider] += 1
    for case in WHOLE:
        whole[case.provider] += 1
    providers = sorted(set(streams) | set(whole))
    head = "| provider | " + " | ".join(LABEL[i] for i in INBOUND) + " |\n"
    head += "|---|" + ":-:|" * len(INBOUND) + "\n"
    rows = ""
    for p in providers:
        cell = f"✓ {streams[p]} streams, {whole[p]} answers"
        rows += f"| {p} | " + " | ".join(cell for _ in INBOUND) + " |\n"
    return head + rows


def test_readme_shows_the_generated_matrix() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start_marker, end_marker = "<!-- translation-matrix:start -->\n", "<!-- translation-matrix:end -->"
    start = text.index(start_marker) + len(start_marker)
    end = text.index(end_marker)
    assert text[start:end] == matrix_markdown(), (
        "README translation matrix is stale: paste `python -m tests.translation.test_matrix` output")


def test_every_chat_adapter_has_a_recorded_stream() -> None:
    """Each provider with conformance cases is in the matrix with at least one stream."""
    providers = {c.provider for c in CASES if isinstance(c.request, ChatRequest)}
    assert providers == {c.provider for c in STREAMS}
    assert json.dumps(matrix_markdown())


if __name__ == "__main__":
    print(matrix_markdown(), end="")


def test_interleaved_parallel_call_fragments_fold_whole() -> None:
    """A provider interleaving the argument fragments of two calls: every API still folds
    each call whole (the Responses encoder keeps consecutive calls open side by side)."""
    from cloverleaf._types import ChatResponse, StreamEvent, Usage

    events = [StreamEvent("tool_call_delta", index=0, id="call_a", name="f", arguments='{"x":'),
              StreamEvent("tool_call_delta", index=1, id="call_b", name="g", arguments='{"y":'),
              StreamEvent("tool_call_delta", index=0, arguments=' 1}'),
              StreamEvent("tool_call_delta", index=1, arguments=' 2}'),
              StreamEvent("usage", usage=Usage(5, 7)), StreamEvent("done", finish_reason="tool_calls")]
    answer = assemble("fake", ChatRequest("m", []), events)
    assert isinstance(answer, ChatResponse) and [c.arguments for c in answer.tool_calls] == [{"x": 1}, {"y": 2}]
    for inbound in INBOUND:
        out = render(inbound, events, answer)
        assert out.folded == out.expected, inbound
