"""What a Bedrock model id says: its family (Claude, which tool choices it takes) and the model an
ARN or a cross-region inference profile id names, for the adapter's rules and its prices."""

from __future__ import annotations

import re

from ..base import ProviderConfig

#: The geography of a cross-region inference profile id (``us.``, ``eu.``, ``apac.``, ``global.``...).
PROFILE_GEOGRAPHY = re.compile(r"^(?:us|us-gov|eu|apac|global|jp|au|ca)\.")
#: The part of a model ARN before the model id it names:
#: ``arn:aws:bedrock:us-east-1::foundation-model/`` or ``arn:aws:bedrock:us-east-1:123456789012:inference-profile/``.
MODEL_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:(?:foundation-model|inference-profile)/")


#: ``model_family`` values that mark a model id that does not say so (an application inference
#: profile's ARN) as Claude.
CLAUDE_FAMILIES = frozenset({"anthropic", "claude"})


def is_claude(model: str, cfg: ProviderConfig | None = None) -> bool:
    """Does ``model`` follow Claude's rules (thinking, documents with citations, context edits)?
    Read from the id (``anthropic.``/``claude``), or from the config's ``model_family`` when the id
    cannot say: an application inference profile is an ARN that names no model, and without the
    hint a Claude behind one was refused reasoning and had its documents flattened."""
    lowered = model.lower()
    if "anthropic." in lowered or "claude" in lowered:
        return True
    family = cfg.extra.get("model_family") if cfg is not None else None
    return isinstance(family, str) and family.lower() in CLAUDE_FAMILIES


#: The forcing ``toolChoice`` members each model family takes on Converse, by a prefix of the id
#: without its geography: AWS documents ``any`` for Claude 3+, Nova and Mistral Large, ``tool``
#: for Claude 3+ and Nova; the others answer a forced choice with a ValidationException ("This
#: model doesn't support the toolConfig.toolChoice.any field"), as pydantic-ai and LangChain know.
_FORCING: tuple[tuple[str, frozenset[str]], ...] = (
    ("amazon.nova", frozenset({"any", "tool"})),
    ("mistral.mistral-large", frozenset({"any"})),
    ("mistral.", frozenset()),
    ("meta.", frozenset()),
    ("deepseek.", frozenset()),
    ("cohere.", frozenset()),
)
_ALL_FORCING = frozenset({"any", "tool"})


def tool_forcing(model: str, cfg: ProviderConfig | None = None) -> frozenset[str] | None:
    """The forcing tool choices (``any``, ``tool``) ``model`` takes on Converse; None when its id
    does not say (an ARN, a family not listed): then the request goes as asked.

    Structured output forces its answer tool, and a Llama, DeepSeek or Mistral Small model refused
    every such call with a 400: for them the tool goes unforced (its description asks for the call),
    and a caller's own forced choice is refused before sending, saying what to do instead."""
    if is_claude(model, cfg):
        return _ALL_FORCING
    family = cfg.extra.get("model_family") if cfg is not None else None
    if isinstance(family, str) and family.lower() == "nova":
        return _ALL_FORCING
    name = PROFILE_GEOGRAPHY.sub("", MODEL_ARN.sub("", model.lower()))
    return next((forcing for prefix, forcing in _FORCING if name.startswith(prefix)), None)


#: Claude models Bedrock offers no prompt caching for (it arrived with Claude 3.5 Haiku and 3.7
#: Sonnet; 3.5 Sonnet v2 only for its preview's customers).
_CLAUDE_WITHOUT_CACHING = ("claude-3-haiku", "claude-3-sonnet", "claude-3-opus", "claude-3-5-sonnet-20240620",
                           "claude-v2", "claude-instant")


def takes_cache_points(model: str, cfg: ProviderConfig | None = None) -> bool | None:
    """Does ``model`` take Converse ``cachePoint`` blocks? Claude (3.5 Haiku, 3.7 Sonnet and
    later) and Amazon Nova do; any other model id refuses the call that carries one. None for an
    ARN that does not say which model it runs (the marks are then sent as asked)."""
    name = PROFILE_GEOGRAPHY.sub("", MODEL_ARN.sub("", model.lower()))
    if is_claude(model, cfg):
        return not any(old in name for old in _CLAUDE_WITHOUT_CACHING)
    family = cfg.extra.get("model_family") if cfg is not None else None
    if name.startswith("amazon.nova") or (isinstance(family, str) and family.lower() == "nova"):
        return True
    return None if name.startswith("arn:") else False
