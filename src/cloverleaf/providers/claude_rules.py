"""What Claude models accept for thinking and sampling, whoever serves them.

Anthropic's Messages API and Bedrock's Converse reach the same models, and the models check
the same rules; an adapter that forgets one sends a request the model answers with a 400:

- a thinking budget is at least :data:`MIN_THINKING_BUDGET` tokens and below ``max_tokens``;
  ``reasoning=0`` means no thinking (as Gemini's budget 0), and an effort is a wish that is
  fitted under the caller's ``max_tokens`` rather than a number that overflows it;
- with thinking on, only ``temperature`` 1 and ``top_p`` ≥ 0.95 are allowed, so other values are
  left out rather than failing a portable request;
- from Claude 4.7 on (Opus 4.7 and 4.8, Sonnet 5, Opus 5, ...) ``temperature`` and ``top_p`` are
  refused outright ("`temperature` is deprecated for this model"), thinking or not: they are left
  out, or every OpenAI-style client, which sends a temperature by default, would get a 400;
- ``temperature`` is 0 to 1 (OpenAI's is 0 to 2): a higher one ("temperature: range: 0..1" from
  the API, a 400) is sent as 1, the most random Claude gets, as the Vercel AI SDK clamps it; a
  client's "creative" preset of 1.2, or a route falling back from GPT, keeps working;
- from Claude Opus 4.1 on, ``temperature`` and ``top_p`` together are refused ("cannot both be
  specified for this model"); a request that sets both (many OpenAI-style clients do) keeps
  ``temperature``, the control every provider has;
- with thinking on, a final assistant turn that calls tools must start with its signed thinking
  block ("When `thinking` is enabled, a final `assistant` message must start with a thinking
  block"). A client that cannot carry the signature back (Chat Completions has no field for
  it) sends that turn without one, since unsigned thinking is dropped; such a request is sent
  without thinking (:func:`history_allows_thinking`), as LiteLLM does, rather than failing the
  tool loop on its second turn. The model thinks again on the next turn that has no pending
  tool call. A request that ends with an assistant turn (a prefill, which OpenAI and Gemini take
  as a plain turn of the history) is refused with thinking on too ("You cannot pre-fill
  responses when thinking is enabled") and goes without it the same way.
- a stop sequence of only whitespace is refused ("stop_sequences: each stop sequence must
  contain non-whitespace"), and so is a final assistant turn (a prefill) that ends with
  whitespace ("final assistant content cannot end with trailing whitespace"), on Bedrock too
  ("The model returned the following errors: ..."): such stops are left out
  (:func:`stop_sequences`) and such a prefill trimmed (:func:`prefill_trimmed`), in either
  API's encoded turns.
- a thinking budget allows only ``tool_choice`` auto or none ("Thinking may not be enabled when
  tool_choice forces tool use"). A forced tool (``required`` or a named one) is the caller's
  explicit instruction, while a reasoning effort is often a client's default, so such a request
  keeps its forced tool and goes without the budget (:func:`tool_choice_allows_thinking`),
  by the same rule as the tool loop above.
- adaptive thinking (``{"type": "adaptive"}``: the model decides whether and how long to think,
  steered by ``output_config.effort``) exists from Claude 4.6 on, where a budget is deprecated,
  and is all Claude Opus 4.7 and later take (a budget is a 400); older models refuse it
  (:func:`adaptive_thinking`). In adaptive mode thinking is optional, so a tool-calling turn
  without it is valid history and forced tool use is allowed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._common import budget_for_effort, effort_for_budget

if TYPE_CHECKING:
    from .._types import ChatRequest, ReasoningConfig
    from .base import Adapter

log = logging.getLogger("cloverleaf.providers")

#: A block of an assistant turn as :func:`history_allows_thinking` sees it (``thinking``:
#: signed or redacted thinking, which the API verifies).
BlockKind = Literal["thinking", "tool_use", "other"]

#: Room for the answer after a thinking budget when the caller sets no ``max_tokens``.
DEFAULT_MAX_TOKENS = 2048
#: ``max_tokens`` when the caller sets none and the API requires one (Anthropic's does), for a
#: model whose own limit is not known here (an Anthropic-compatible server's): LiteLLM's default.
FALLBACK_MAX_TOKENS = 4096
#: The most a default may ask for: a non-streamed answer that long already takes minutes, and a
#: caller who wants more says so.
MAX_DEFAULT_MAX_TOKENS = 16384
#: The highest ``temperature`` Claude takes (OpenAI's goes to 2).
MAX_TEMPERATURE = 1.0
#: The smallest thinking budget the models take.
MIN_THINKING_BUDGET = 1024

# claude-opus-4-1-20250805, us.anthropic.claude-sonnet-4-5-20250929-v1:0, claude-haiku-4-5@20251001;
# a minor version is one or two digits (a date is eight), absent for x.0 (claude-sonnet-4-20250514)
# (and the families named since: claude-mythos-5, claude-fable-5-1)
_VERSION = re.compile(r"claude-(?:[a-z]+)-(\d+)(?:[-.](\d{1,2}))?(?![\d])")


def thinking_budget(adapter: Adapter, req: ChatRequest, *, interleaved: bool = False) -> int | None:
    """The thinking budget to send, or None for no thinking; an impossible request is an
    :class:`~cloverleaf.InvalidRequestError` before anything is sent. With ``interleaved``
    thinking (its beta asked for) the budget is the whole turn's, across the thinking between
    tool calls, and may exceed ``max_tokens``, as Anthropic's extended thinking guide says: a
    budget the caller gave is then sent as given."""
    cfg = req.reasoning
    if cfg is None:
        return None
    if cfg.budget_tokens == 0 and cfg.effort is None:   # reasoning=0: no thinking
        return None
    if cfg.budget_tokens is not None:
        budget = max(MIN_THINKING_BUDGET, cfg.budget_tokens)
        if req.max_tokens is not None and req.max_tokens <= budget and not interleaved:
            raise adapter.invalid(
                f"max_tokens ({req.max_tokens}) must be greater than the reasoning budget ({budget}); "
                "raise max_tokens or lower reasoning.budget_tokens", req.model)
        return budget
    budget = budget_for_effort(cfg.effort)
    if req.max_tokens is not None and req.max_tokens <= budget:
        if req.max_tokens <= MIN_THINKING_BUDGET:
            raise adapter.invalid(
                f"max_tokens ({req.max_tokens}) leaves no room for extended thinking (the minimum "
                f"budget is {MIN_THINKING_BUDGET} tokens); raise max_tokens or drop reasoning", req.model)
        budget = max(MIN_THINKING_BUDGET, req.max_tokens // 2)
    return budget


# claude-3-haiku-20240307, claude-3-5-sonnet-latest, claude-3-7-sonnet-20250219: the older naming
_OLD_VERSION = re.compile(r"claude-(\d+)(?:-(\d))?-(?:opus|sonnet|haiku)")

#: The first Claude version with adaptive thinking, and the first with nothing else (Opus 4.7).
ADAPTIVE_SINCE = (4, 6)
ADAPTIVE_ONLY_SINCE = (4, 7)
#: The first Claude version that refuses ``temperature`` and ``top_p`` (Opus 4.7).
NO_SAMPLING_SINCE = (4, 7)


def _version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model name in either naming, None when it has no readable one."""
    found = _OLD_VERSION.search(model.lower()) or _VERSION.search(model.lower())
    return None if found is None else (int(found.group(1)), int(found.group(2) or 0))


def effort_alone(cfg: ReasoningConfig | None) -> bool:
    """The caller set Anthropic's ``output_config.effort`` without asking for thinking (effort
    also governs text and tool calls): the request is sent with that effort and no thinking."""
    return cfg is not None and cfg.native_effort is not None and not cfg.adaptive and cfg.budget_tokens is None


def adaptive_thinking(req: ChatRequest) -> bool:
    """Send ``thinking: {"type": "adaptive"}``? When the caller asked for it and the model has it
    (Claude 4.6 and later, or a model whose version cannot be read here: the caller knows its
    model), and for any request for thinking to a model that has nothing else (Opus 4.7 and
    later refuse a budget). An older model asked for adaptive thinking gets a budget for the
    request's effort instead (:func:`thinking_budget`)."""
    cfg = req.reasoning
    if cfg is None:
        return False
    version = _version(req.model)
    if cfg.adaptive:
        return version is None or version >= ADAPTIVE_SINCE
    if version is None or version < ADAPTIVE_ONLY_SINCE or effort_alone(cfg):
        return False
    return not (cfg.budget_tokens == 0 and cfg.effort is None)   # reasoning=0: no thinking


def output_effort(req: ChatRequest, *, adaptive: bool) -> str | None:
    """``output_config.effort`` to send: the caller's own word (``xhigh`` and ``max`` included),
    else, when ``adaptive`` thinking stands in for a portable request (an effort or a budget) on
    a model that has nothing else, that request's effort (``minimal`` as ``low``, the lowest
    Claude has); None otherwise (a budget keeps meaning a budget)."""
    cfg = req.reasoning
    if cfg is None:
        return None
    if cfg.native_effort is not None:
        return cfg.native_effort
    if not adaptive or cfg.adaptive:
        return None
    effort = cfg.effort or (effort_for_budget(cfg.budget_tokens) if cfg.budget_tokens else None)
    return "low" if effort == "minimal" else effort


def default_max_tokens(model: str) -> int:
    """``max_tokens`` for a Messages request that sets none: the model's own output limit, up to
    :data:`MAX_DEFAULT_MAX_TOKENS`. A fixed 2,048 cut every longer answer from an OpenAI client
    that never sets it (OpenAI's API has no such default) at 2,048 tokens with ``length``."""
    found = _OLD_VERSION.search(model) or _VERSION.search(model)
    if found is None:
        return FALLBACK_MAX_TOKENS
    major, minor = int(found.group(1)), int(found.group(2) or 0)
    if (major, minor) < (3, 5):
        return 4096     # Claude 3 Haiku, Sonnet and Opus
    if (major, minor) < (3, 7):
        return 8192     # Claude 3.5
    return MAX_DEFAULT_MAX_TOKENS   # 3.7 and 4.x write 32k to 64k


def max_tokens(req: ChatRequest, budget: int | None) -> int | None:
    """``max_tokens`` for a request with ``budget`` of thinking: the caller's, or room for the
    thinking and an answer after it; None when neither is set (the API's own default applies)."""
    if req.max_tokens is not None:
        return req.max_tokens
    return None if budget is None else budget + DEFAULT_MAX_TOKENS


def sampling(req: ChatRequest, *, thinking: bool) -> tuple[float | None, float | None]:
    """``(temperature, top_p)`` to send, each None when it must be left out."""
    if (req.temperature is not None or req.top_p is not None) and _refuses_sampling(req.model):
        log.debug("%s: temperature and top_p left out: Claude 4.7 and later refuse them", req.model)
        return None, None
    given = req.temperature
    if given is not None and given > MAX_TEMPERATURE:
        log.debug("%s: temperature %s sent as %s, the most Claude takes", req.model, given, MAX_TEMPERATURE)
        given = MAX_TEMPERATURE
    temperature = given if given is not None and (not thinking or given == 1) else None
    top_p = req.top_p if req.top_p is not None and (not thinking or req.top_p >= 0.95) else None
    if temperature is not None and top_p is not None and one_of_temperature_and_top_p(req.model):
        top_p = None
    return temperature, top_p


def _refuses_sampling(model: str) -> bool:
    version = _version(model)
    return version is not None and version >= NO_SAMPLING_SINCE


def one_of_temperature_and_top_p(model: str) -> bool:
    """True for Claude models that refuse both (Opus 4.1, and every 4.5 and later)."""
    found = _VERSION.search(model.lower())
    if found is None:
        return False
    version = (int(found.group(1)), int(found.group(2) or 0))
    return version >= (4, 1)


def history_allows_thinking(final_assistant: Sequence[BlockKind] | None, model: str, *,
                            prefill: bool = False) -> bool:
    """False when thinking must be left out: the conversation's final assistant turn
    (``final_assistant``, its blocks in order; None when there is none) calls tools, or is the
    conversation's last turn (``prefill``: the start of the answer, which other providers take
    as a plain turn), and does not start with signed thinking, which the API refuses while
    thinking is on ("You cannot pre-fill responses when thinking is enabled"). Says so in the
    debug log, since the caller asked for reasoning and this call goes without."""
    if not final_assistant or final_assistant[0] == "thinking":
        return True
    if "tool_use" in final_assistant:
        log.debug("%s: thinking left out of this request: the last assistant turn calls tools without its signed "
                  "thinking block (its client did not send the signature back), which Claude refuses while "
                  "thinking is on", model)
        return False
    if prefill:
        log.debug("%s: thinking left out of this request: it ends with an assistant turn (a prefill), which "
                  "Claude refuses while thinking is on", model)
        return False
    return True


def stop_sequences(stops: Sequence[str] | None, model: str) -> list[str]:
    """The caller's stop sequences Claude takes: those of only whitespace (``stop=["\\n"]``, common
    from OpenAI clients) are left out, said in the debug log."""
    kept = [s for s in stops or () if s.strip()]
    if len(kept) < len(stops or ()):
        log.debug("%s: stop sequences of only whitespace left out: Claude refuses them", model)
    return kept


def prefill_trimmed(turns: list[dict[str, Any]], is_text: Callable[[dict[str, Any]], bool],
                    is_mark: Callable[[dict[str, Any]], bool] = lambda block: False) -> None:
    """Trim, in place, the whitespace that ends a conversation's final assistant turn (a
    prefill), which Claude refuses; the model writes its own. Encoded turns of either API:
    ``is_text`` tells a text block (its ``text`` key), ``is_mark`` a block that marks the one
    before it (Converse's ``cachePoint``), skipped over. A text block left empty goes, with its
    marks, and the turn too when nothing is left of it. Earlier assistant turns keep theirs:
    only the final one counts."""
    while turns and turns[-1]["role"] == "assistant":
        content = turns[-1]["content"]
        while content:
            end = len(content)
            while end and is_mark(content[end - 1]):
                end -= 1
            if not end or not is_text(content[end - 1]):
                return
            trimmed = content[end - 1]["text"].rstrip()
            if trimmed:
                content[end - 1] = {**content[end - 1], "text": trimmed}
                return
            del content[end - 1:]
        turns.pop()


def ends_with_assistant(turns: Sequence[dict[str, Any]]) -> bool:
    """Whether encoded turns (Messages or Converse: each has a ``role``) end with the assistant's:
    a prefill, for :func:`history_allows_thinking`."""
    return bool(turns) and turns[-1].get("role") == "assistant"


def tool_choice_allows_thinking(req: ChatRequest) -> bool:
    """False when a thinking budget must be left out because the request forces tool use
    (``tool_choice`` ``required`` or a named tool, with tools offered), which Claude refuses with
    a budget; adaptive thinking allows it and does not ask. Says so in the debug log, since the
    caller asked for reasoning and this call goes without."""
    choice = req.tool_choice
    if choice is None or choice.mode not in ("required", "tool") or not req.tools:
        return True
    log.debug("%s: thinking left out of this request: tool_choice %r forces tool use, which Claude refuses "
              "with a thinking budget; the forced tool is kept", req.model, choice.name or choice.mode)
    return False


def context_edits_for(edits: dict[str, Any], *, thinking: bool) -> dict[str, Any] | None:
    """The client's context edits (``context_management``) as they may be sent: as given,
    unless the client asked for thinking and this request goes without it (a tool loop whose
    client lost its signed thinking: :func:`history_allows_thinking`), where the API refuses a
    ``clear_thinking_*`` edit, so those are left out (there is no thinking here to clear);
    None when no edit is left. Anthropic's API and Claude on Bedrock alike."""
    listed = edits.get("edits")
    if thinking or not isinstance(listed, list):
        return edits
    kept = [e for e in listed if not (isinstance(e, dict) and str(e.get("type", "")).startswith("clear_thinking_"))]
    if len(kept) == len(listed):
        return edits
    return {**edits, "edits": kept} if kept else None
