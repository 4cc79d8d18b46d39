"""Model ids: ``provider/model``, ``provider:model``, and inference from well-known prefixes.

Only a *known provider name* before the first ``/`` or ``:`` counts as a provider, so
ids that contain those characters themselves survive intact: OpenRouter's
``openrouter/anthropic/claude-3.5-sonnet`` keeps its inner slash, Ollama's
``ollama/llama3.1:8b`` its tag, and Bedrock's ``anthropic.claude-3-5-sonnet-20241022-v2:0``
its version suffix.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ConfigError
from ._litellm_names import bedrock_route_advice, model_prefix_advice

#: Bare-id prefixes that imply a provider. Order matters: first match wins.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("claude-", "anthropic"),
    ("gemini-", "gemini"),
    ("gemma-", "gemini"),
    ("text-embedding-004", "gemini"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("dall-e-", "openai"),
    ("text-embedding-", "openai"),
    ("omni-moderation", "openai"),
    ("tts-", "openai"),
    ("whisper-", "openai"),
    ("anthropic.", "bedrock"),
    ("amazon.", "bedrock"),
    ("meta.", "bedrock"),
    ("mistral.", "bedrock"),
    ("cohere.", "bedrock"),
    ("stability.", "bedrock"),
    ("ai21.", "bedrock"),
    ("deepseek.", "bedrock"),
    ("writer.", "bedrock"),
    ("us.", "bedrock"),
    ("eu.", "bedrock"),
    ("apac.", "bedrock"),
    ("global.", "bedrock"),
    ("arn:aws:bedrock:", "bedrock"),
    ("mistral-", "mistral"),
    ("codestral-", "mistral"),
    ("open-mistral-", "mistral"),
    ("deepseek-", "deepseek"),
    ("grok-", "xai"),
    ("sonar", "perplexity"),
)


@dataclass(frozen=True, slots=True)
class ModelId:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def infer_provider(model: str) -> str | None:
    """The provider a bare model id implies (``gpt-4o`` → openai), or None."""
    lowered = model.lower()
    for prefix, provider in _PREFIXES:
        if lowered.startswith(prefix):
            # "o1"/"o3"/"o4" only when followed by nothing, "-" or a digit-free suffix
            if prefix in ("o1", "o3", "o4") and len(lowered) > 2 and lowered[2] not in "-_":
                continue
            return provider
    return None


def parse_model_id(model_id: str, known_providers: frozenset[str] | set[str]) -> ModelId:
    """Split ``model_id`` into provider and provider-native model name.

    Raises :class:`ConfigError` listing the known providers when nothing matches.
    """
    model_id = model_id.strip()
    if not model_id:
        raise ConfigError("empty model id; pass e.g. 'openai/gpt-4o-mini' or set CLOVERLEAF_MODEL")
    for sep in ("/", ":"):
        head, found, tail = model_id.partition(sep)
        if found and head in known_providers:
            if not tail:
                raise ConfigError(f"model id {model_id!r} names provider {head!r} but no model; "
                                  f"write it as '{head}/MODEL'")
            if head == "bedrock" and (advice := bedrock_route_advice(tail)):
                raise ConfigError(f"model id {model_id!r}: {advice}")
            return ModelId(head, tail)
    inferred = infer_provider(model_id)
    if inferred is not None:
        return ModelId(inferred, model_id)
    known = ", ".join(sorted(known_providers))
    if "/" in model_id:
        head, _, rest = model_id.partition("/")
        if advice := model_prefix_advice(head, rest):
            raise ConfigError(f"model id {model_id!r}: {advice}")
        raise ConfigError(f"unknown provider {head!r} in model id {model_id!r}; known providers: {known}")
    raise ConfigError(
        f"cannot tell which provider serves {model_id!r}; write it as 'provider/{model_id}' "
        f"(known providers: {known}) or add it to [[models]] in cloverleaf.toml"
    )
