"""Rules every adapter applies the same way, so one neutral request means one thing everywhere.

- :func:`read_json`: a 2xx body that is not JSON is a :class:`MalformedResponseError`
  (retryable), never a bare ``ValueError``.
- :func:`checked_tool_choice`: ``tool_choice`` ``required``/``tool`` without tools, or naming a
  tool that is not offered, is an :class:`InvalidRequestError` before anything is sent
  (OpenAI answers such a request with a 400; Anthropic and Bedrock would silently drop it);
  ``auto``/``none`` without tools mean nothing and are not sent.
- Reasoning effort and token budget translate through one table (:data:`EFFORT_BUDGETS`), in
  both directions, so ``effort="low"`` is the same budget on Anthropic, Gemini and Bedrock
  Claude, and ``budget_tokens=2048`` the same effort on OpenAI, Bedrock gpt-oss and Nova.
- :func:`replayable_reasoning`: reasoning in the history is sent back only to an adapter of
  the kind that produced it. Signatures and encrypted reasoning are opaque tokens that only
  their own API can verify (a Gemini ``thoughtSignature`` sent to Claude is a 400), which
  matters when a gateway falls back from one provider to another mid-conversation. Claude's
  are the model's own, not its host's: they verify wherever Claude runs (:data:`CLAUDE_KINDS`),
  so Claude's thinking is one family across Anthropic's API, Claude on Bedrock and Claude on
  Vertex AI, and the thinking blocks a ``/v1/messages`` client sends back reach them all. The
  ``vertex`` row also serves Gemini, whose signed thoughts Claude cannot verify (nor Gemini
  Claude's), so Claude's reasoning there is marked as Claude's (:func:`claude_reasoning_source`).
- :func:`checked_image`: an image in a format the API does not take (HEIC to OpenAI or
  Anthropic, AVIF to any) is an :class:`InvalidRequestError` naming the formats it does take,
  before anything is sent, by one table per API (:data:`WEB_IMAGES`, :data:`GEMINI_IMAGES`).
- :func:`empty_text_turn`: a user message of nothing but empty or blank text (``{"type":
  "text", "text": ""}``, which OpenAI takes and the Vercel AI SDK sends) to an API that refuses
  such text (Claude's "text content blocks must be non-empty", Converse's "is blank") is an
  :class:`InvalidRequestError` naming the message. Such text beside other content says nothing
  and is left out by each adapter; a turn of only that is not, since leaving it out joins the
  turns around it, or ends the conversation with the assistant's turn, which the model then
  continues as its own (a prefill): another request than the one sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._errors import ConfigError, InvalidRequestError
from .._types import Text

if TYPE_CHECKING:
    from .._http import HttpResponse
    from .._types import ChatRequest, Message, ToolChoice
    from .base import Adapter

Effort = Literal["minimal", "low", "medium", "high"]

#: Reasoning effort as a thinking-token budget (Anthropic, Gemini 2.5, Bedrock Claude). Every
#: value fits every provider's range (Anthropic's minimum is 1024, Gemini Flash's maximum 24576).
EFFORT_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}


def budget_for_effort(effort: str | None) -> int:
    """The thinking budget for an effort level (``medium`` when none is given)."""
    return EFFORT_BUDGETS.get(effort or "medium", EFFORT_BUDGETS["medium"])


def effort_for_budget(budget: int) -> Effort:
    """The effort level nearest a token budget: the inverse of :func:`budget_for_effort`
    (``low``/``medium``/``high`` round-trip; ``minimal`` comes back as ``low``, the lowest
    level every effort-taking model accepts)."""
    if budget <= EFFORT_BUDGETS["low"]:
        return "low"
    if budget <= EFFORT_BUDGETS["medium"]:
        return "medium"
    return "high"


class RefusingAdapter(Protocol):
    """An adapter as :func:`empty_text_turn` uses it: what makes its refusals."""

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError: ...


def empty_text_turn(adapter: RefusingAdapter, position: int, message: Message, *,
                    refusal: str) -> InvalidRequestError | None:
    """The error for ``messages[position]``, a user message whose every part is empty or blank
    text, else None (module docstring)."""
    parts = message.parts
    if not parts or not all(isinstance(p, Text) and not p.text.strip() for p in parts):
        return None
    return adapter.invalid(f"messages[{position}] is a user message of only empty or blank text, which {refusal}: "
                           "put text in it or leave it out (it is not dropped: without it the turns around it "
                           "would join, or the model would continue the assistant's last turn)")


def read_json(adapter: Adapter, resp: HttpResponse, model: str | None) -> Any:
    """The decoded body of a successful response, or MalformedResponseError."""
    try:
        return resp.json()
    except ValueError:
        raise adapter.malformed(f"the body is not JSON: {resp.text[:200]!r}", resp, model) from None


def checked_tool_choice(req: ChatRequest, provider: str) -> ToolChoice | None:
    """``req.tool_choice`` if it should be sent, None if it means nothing (see the module docstring)."""
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.mode in ("required", "tool"):
        if not req.tools:
            raise InvalidRequestError(f"tool_choice {choice.mode!r} needs tools; pass tools=[...] or drop tool_choice",
                                      provider=provider, model=req.model)
        if choice.mode == "tool" and not any(t.name == choice.name for t in req.tools):
            offered = ", ".join(t.name for t in req.tools)
            raise InvalidRequestError(f"tool_choice names {choice.name!r}, which is not among the tools ({offered})",
                                      provider=provider, model=req.model)
    return choice if req.tools else None


#: The image formats OpenAI (and the services speaking its API), Anthropic and Bedrock take, by
#: media type, with Bedrock's name for each.
WEB_IMAGES: Mapping[str, str] = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                                 "image/webp": "webp"}
#: Gemini's: Apple's HEIC and HEIF as well, and no GIF.
GEMINI_IMAGES: Mapping[str, str] = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp",
                                    "image/heic": "heic", "image/heif": "heif"}


def checked_image(media_type: str | None, formats: Mapping[str, str], *, provider: str,
                  model: str | None = None) -> str | None:
    """The format name of an image ``provider`` takes; an InvalidRequestError naming the ones it
    does take for any other (its API would answer 400, or misread the bytes). None when the media
    type is unknown: a URL the provider fetches, and types, itself."""
    if media_type is None:
        return None
    fmt = formats.get(media_type.lower())
    if fmt is None:
        names = list(dict.fromkeys(formats.values()))
        raise InvalidRequestError(f"{provider} takes {', '.join(names[:-1])} or {names[-1]} images, not "
                                  f"{media_type!r}; convert it to one of those", provider=provider, model=model)
    return fmt


class NamedAdapter(Protocol):
    """An adapter as :func:`replayable_reasoning` reads it: its row name and its kind."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


#: The adapter kinds that serve Claude. Its thinking signatures are checked by the model, so a
#: signature from one verifies on the others; a client of ``/v1/messages`` sends its thinking
#: blocks back as Anthropic's, whichever of them served the turn.
CLAUDE_KINDS = frozenset({"anthropic", "bedrock"})
#: What marks reasoning as Claude's when its row's kind says another family (``vertex#claude``).
CLAUDE_MARK = "#claude"


def claude_reasoning_source(row: str) -> str:
    """The provider Claude's reasoning carries when row ``row`` is not of a Claude kind (Claude on
    Vertex AI, on the Gemini row ``vertex``): the row's name marked as Claude's, so it goes back
    to Claude wherever Claude runs, and never to the row's other family (Gemini)."""
    return row + CLAUDE_MARK


def replayable_reasoning(adapter: NamedAdapter, provider: str | None, *, claude: bool = False) -> bool:
    """Whether reasoning produced by row ``provider`` may be sent back to ``adapter``.

    Yes for its own row, for unnamed reasoning, for another row of the same adapter kind, and
    for a row the registry does not know (a custom ``[providers.X]`` row, usually a proxy of
    the same API); no for a built-in row of another kind, except Claude's own: with ``claude``
    (the request's model is Claude), reasoning from any row of the :data:`CLAUDE_KINDS` goes
    back (dropping it turned thinking off for the rest of a tool loop on Claude on Bedrock).
    Another model's reasoning among them is unsigned, and unsigned reasoning is never sent to
    Claude. Reasoning marked as Claude's (:func:`claude_reasoning_source`) goes back to Claude
    only, on any row of the family.
    """
    if provider is None or provider == adapter.name:
        return True
    if provider.endswith(CLAUDE_MARK):
        return claude and adapter.kind in CLAUDE_KINDS
    from .registry import get_spec

    try:
        kind = get_spec(provider).kind
    except ConfigError:
        return True
    return kind == adapter.kind or (claude and kind in CLAUDE_KINDS and adapter.kind in CLAUDE_KINDS)
