"""LiteLLM's spellings, and what to write here instead.

Most users arrive from LiteLLM with its model prefixes and environment variables in their code,
their shell and their CI. Where cloverleaf spells a thing differently, the LiteLLM spelling must
never be taken for something else: ``vertex_ai/gemini-1.5-pro`` is refused naming
``vertex/gemini-1.5-pro``, and ``OLLAMA_API_BASE`` (which cloverleaf does not read) pointing at
a remote Ollama must not let a call go quietly to ``localhost`` instead. Nothing here *accepts* a
LiteLLM spelling: each is a clear error that names the one to write, so there is one way to say
a thing, and the error is read once and fixed.

A leaf: it knows provider and variable names only, and the resolver and the model-id parser ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._secret_urls import masked_url

#: LiteLLM's model-id prefixes that name a provider cloverleaf spells otherwise (or has not),
#: and what to write instead; ``{model}`` is the rest of the id.
MODEL_PREFIXES: dict[str, str] = {
    "vertex_ai": "'vertex/{model}' (Vertex AI is the 'vertex' provider here)",
    "vertex_ai_beta": "'vertex/{model}' (Vertex AI is the 'vertex' provider here)",
    "ollama_chat": "'ollama/{model}' (the 'ollama' provider already talks to Ollama's /api/chat)",
    "together_ai": "'together/{model}'",
    "fireworks_ai": "'fireworks/{model}'",
    "lm_studio": "'lmstudio/{model}'",
    "hosted_vllm": "'vllm/{model}' with base_url= (or VLLM_BASE_URL) naming your server",
    "openai_like": "'chat_completions/{model}' with base_url= naming the server (any OpenAI-compatible server)",
    "text-completion-openai": ("'openai/{model}' with a chat model: the legacy Completions API (/v1/completions) "
                               "is not supported, only Chat Completions"),
    "text-completion-codestral": "'mistral/{model}' (Chat Completions; the legacy Completions API is not supported)",
    "codestral": "'mistral/{model}'",
    "huggingface": ("a [providers.huggingface] table with kind = \"openai\", base_url = "
                    "\"https://router.huggingface.co/v1\" and api_key_env = \"HF_TOKEN\" in cloverleaf.toml, "
                    "then 'huggingface/{model}' (Hugging Face's router speaks Chat Completions)"),
    "azure_ai": ("a [providers.NAME] table with kind = \"openai\" and your Azure AI Foundry endpoint as base_url "
                 "in cloverleaf.toml, then 'NAME/{model}' ('azure/' is Azure OpenAI's deployments)"),
}

#: LiteLLM's Bedrock sub-routes (``bedrock/converse/MODEL``): cloverleaf picks Bedrock's API itself.
BEDROCK_ROUTES = ("converse/", "invoke/", "converse_like/")


def model_prefix_advice(provider: str, model: str) -> str | None:
    """What to write instead of LiteLLM's ``provider/model``, or None when it is not LiteLLM's."""
    advice = MODEL_PREFIXES.get(provider)
    if advice is not None:
        return (f"{provider!r} is LiteLLM's prefix, not a cloverleaf provider: write "
                + advice.format(model=model))
    return None


def bedrock_route_advice(model: str) -> str | None:
    """``bedrock/converse/X`` names an API, not a model: what to write instead, or None."""
    for route in BEDROCK_ROUTES:
        if model.startswith(route) and len(model) > len(route):
            rest = model[len(route):]
            return (f"'bedrock/{route}' is LiteLLM's way to pick a Bedrock API; cloverleaf picks it itself "
                    f"(Converse for chat): write 'bedrock/{rest}'")
    return None


#: ``completion()`` keywords LiteLLM (or the OpenAI SDK) takes that cloverleaf's calls spell otherwise.
OPTION_NAMES: dict[str, str] = {
    "api_base": "base_url=",
    "num_retries": "max_retries=",
    "request_timeout": "timeout=",
    "max_completion_tokens": "max_tokens=",
    "stream": "cloverleaf.stream(model, messages, ...) (chat() returns the whole answer; iterate the stream)",
    "stream_options": "cloverleaf.stream(...), whose s.response has the usage",
    "functions": "tools=",
    "function_call": "tool_choice=",
    "reasoning_effort": "reasoning= ('low', 'medium', 'high' or a token budget)",
    "thinking": "reasoning= ('low', 'medium', 'high' or a token budget)",
    "caching": "cache=",
    "fallbacks": "a route: [routes.NAME] targets = [...] in cloverleaf.toml (or client.gateway.register(...)), "
                 "then chat('NAME', ...)",
    "mock_response": "the offline fake provider: model 'fake/echo' (or CLOVERLEAF_BACKEND=fake)",
    "custom_llm_provider": "the provider in the model id: 'PROVIDER/MODEL'",
    "api_version": "api_version in the model's additional_config (a [[models]] entry) or [providers.azure] extra",
    "aws_region_name": "region in the model's additional_config (or AWS_REGION)",
    "vertex_project": "project in the model's additional_config (or GOOGLE_CLOUD_PROJECT)",
    "vertex_location": "location in the model's additional_config (or GOOGLE_CLOUD_LOCATION)",
}


def option_advice(unknown: set[str] | frozenset[str]) -> str:
    """``; write X instead of Y=`` for each unknown keyword that is LiteLLM's name for one of ours."""
    advice = [f"{OPTION_NAMES[name]} instead of {name}=" for name in sorted(unknown) if name in OPTION_NAMES]
    return f" (use {'; '.join(advice)})" if advice else ""


@dataclass(frozen=True, slots=True)
class EnvName:
    """One LiteLLM environment variable cloverleaf does not read, and the one(s) it does."""

    litellm: str
    ours: tuple[str, ...]
    provider: str
    #: What it steers: ``""`` for a credential (missing: the call fails anyway, so only the
    #: error names it); otherwise the ``extra`` key (``region``, ``location``, ``project``,
    #: ``credentials_file``) or ``base_url`` it would have set. Ignoring one of these would send
    #: the call somewhere the user did not mean, so it is refused.
    steers: str = ""
    #: What the call uses when neither an entry nor our variables say (Vertex AI's location is
    #: ``global``, ``vertex_urls.DEFAULT_LOCATION``): LiteLLM's variable set to it sends the call
    #: where the user meant all the same, so it is no reason to refuse one.
    default: str = ""


ENV_NAMES: tuple[EnvName, ...] = (
    EnvName("OPENAI_API_BASE", ("OPENAI_BASE_URL",), "openai", "base_url"),
    EnvName("OPENAI_API_BASE", ("OPENAI_BASE_URL",), "openai-responses", "base_url"),
    EnvName("ANTHROPIC_API_BASE", ("ANTHROPIC_BASE_URL",), "anthropic", "base_url"),
    EnvName("OLLAMA_API_BASE", ("OLLAMA_BASE_URL",), "ollama", "base_url"),
    EnvName("AZURE_API_BASE", ("AZURE_OPENAI_ENDPOINT",), "azure", "base_url"),
    EnvName("AZURE_API_KEY", ("AZURE_OPENAI_API_KEY",), "azure"),
    EnvName("AWS_REGION_NAME", ("AWS_REGION", "AWS_DEFAULT_REGION"), "bedrock", "region"),
    EnvName("VERTEXAI_PROJECT", ("GOOGLE_CLOUD_PROJECT",), "vertex", "project"),
    EnvName("VERTEXAI_LOCATION", ("GOOGLE_CLOUD_LOCATION",), "vertex", "location", default="global"),
    EnvName("VERTEXAI_CREDENTIALS", ("GOOGLE_APPLICATION_CREDENTIALS",), "vertex", "credentials_file"),
    EnvName("TOGETHERAI_API_KEY", ("TOGETHER_API_KEY",), "together"),
    EnvName("TOGETHER_AI_API_KEY", ("TOGETHER_API_KEY",), "together"),
    EnvName("TOGETHER_AI_TOKEN", ("TOGETHER_API_KEY",), "together"),
    EnvName("FIREWORKS_AI_API_KEY", ("FIREWORKS_API_KEY",), "fireworks"),
    EnvName("FIREWORKSAI_API_KEY", ("FIREWORKS_API_KEY",), "fireworks"),
    EnvName("OR_API_KEY", ("OPENROUTER_API_KEY",), "openrouter"),
    EnvName("PERPLEXITYAI_API_KEY", ("PERPLEXITY_API_KEY",), "perplexity"),
)


def _set(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _same_place(url: str, other: str) -> bool:
    """Whether two base URLs name the same place: ``http://localhost:11434/`` is the default
    ``http://localhost:11434`` (scheme and host in any case, a trailing ``/`` or not)."""
    try:
        a, b = urlsplit(url.strip()), urlsplit(other)
    except ValueError:
        return False
    return ((a.scheme.lower(), a.netloc.lower(), a.path.rstrip("/"), a.query)
            == (b.scheme.lower(), b.netloc.lower(), b.path.rstrip("/"), b.query))


def credential_hints(provider: str, env: Mapping[str, str], message: str = "") -> str:
    """A sentence for a provider's configuration error (no key, no base URL, no region): which
    LiteLLM-named variables are set that cloverleaf does not read (and ``message`` does not name
    yet), and what it reads instead. Not one whose variable of ours is set as well: the error is
    about something else then, and "cloverleaf reads X" would send the user to set X again."""
    hints = [f"{n.litellm} is set, but that is LiteLLM's name: cloverleaf reads {' or '.join(n.ours)}"
             for n in ENV_NAMES if n.provider == provider and _set(env, n.litellm) and n.litellm not in message
             and not any(_set(env, ours) for ours in n.ours)]
    if provider == "gemini" and (_set(env, "VERTEXAI_PROJECT") or _set(env, "GOOGLE_APPLICATION_CREDENTIALS")):
        hints.append("for Gemini on Vertex AI with Google credentials, write 'vertex/MODEL'")
    return f" ({'; '.join(hints)})" if hints else ""


def steering_conflict(provider: str, env: Mapping[str, str], configured: Mapping[str, object],
                      default_base_url: str | None, using: Mapping[str, object] | None = None) -> str | None:
    """Why a call must not go out when a LiteLLM variable would have sent it elsewhere, or None.

    ``configured`` is the row's ``extra`` before the environment is read (a value there wins over
    any variable, so nothing conflicts); ``default_base_url`` is the row's default URL (``""``
    when it has none) when the call would go there because neither the call, an entry, a table
    nor our variable gave one, else None. ``using`` is the ``extra`` the call goes out with, once
    the adapter has filled it in (None when it could not): a variable naming what the call uses
    anyway (``VERTEXAI_PROJECT`` set to the service account's own project) is no conflict.
    """
    for n in ENV_NAMES:
        if n.provider != provider or not n.steers or not (theirs := _set(env, n.litellm)):
            continue
        if n.steers == "base_url":
            # LiteLLM's variable naming the very default the call goes to (OPENAI_API_BASE=https://api.openai.com/v1,
            # OLLAMA_API_BASE=http://localhost:11434, as LiteLLM's docs write them) sends it nowhere else
            if default_base_url is not None and not _same_place(theirs, default_base_url):
                instead = f"; nothing is sent to {default_base_url} in its place" if default_base_url else ""
                shown = masked_url(theirs, "<redacted>")   # a proxy URL may carry a password
                return (f"{n.litellm} is set ({shown!r}), but that is LiteLLM's name and cloverleaf does not read "
                        f"it: set {n.ours[0]} instead (or pass base_url=), or unset {n.litellm}{instead}")
            continue
        if configured.get(n.steers):
            continue
        ours = next((value for name in n.ours if (value := _set(env, name))), "")
        if theirs in (ours or n.default, str((using or {}).get(n.steers) or "")):
            continue   # the call goes where LiteLLM's variable says all the same
        where = (f"{n.ours[0]} is not set" if not ours and len(n.ours) == 1
                 else f"neither {' nor '.join(n.ours)} is set" if not ours
                 else f"cloverleaf would use {next(name for name in n.ours if _set(env, name))}")
        shown = "" if n.steers == "credentials_file" else f"={theirs!r}"   # may be a key's JSON itself
        return (f"{n.litellm}{shown} is set, but that is LiteLLM's name and cloverleaf does not read it "
                f"({where}): set {n.ours[0]} (or {n.steers} in the provider's additional_config/extra), or unset "
                f"{n.litellm}, so the call goes where you mean")
    return None


def config_file_advice(text: str, suffix: str) -> str | None:
    """Why a config file that is not TOML cannot be read, when it is LiteLLM's proxy config (or
    another YAML file), naming the way over; None for anything else (the TOML error says it)."""
    lines = {line.split(":", 1)[0].strip() for line in text.splitlines() if line and not line[0].isspace()}
    if lines & {"model_list", "litellm_settings", "router_settings", "general_settings"}:
        return ("this is a LiteLLM proxy config (model_list:); cloverleaf reads TOML (cloverleaf.toml). Each "
                "model_list entry becomes a [[models]] table: name = its model_name, and litellm_params.model "
                "'openai/gpt-4o' becomes provider = \"openai\", identifier = \"gpt-4o\" (api_base: base_url; "
                "api_key: os.environ/VAR: api_key_env = \"VAR\"); several entries under one model_name become a [routes.NAME] "
                "targets list with strategy = \"weighted\", router_settings fallbacks one in priority order; general_settings master_key "
                "is the CLOVERLEAF_MASTER_KEY variable. README.md, \"Coming from LiteLLM\", has an example")
    if suffix.lower() in (".yaml", ".yml"):
        return ("cloverleaf's configuration is TOML (cloverleaf.toml), not YAML; a YAML file with steps: is a "
                "workflow, run with `cloverleaf run FILE`")
    return None
