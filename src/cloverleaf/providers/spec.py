"""One registry row's shape: a leaf (adapters and the registry both read it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .._capabilities import Capabilities
from .._secret_repr import masked_repr

#: Spellings of ``additional_config``/``extra`` keys that mean the same setting.
CONFIG_KEY_ALIASES: dict[str, str] = {"aws_region": "region", "region_name": "region"}


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    kind: str
    base_url: str
    #: Environment variables tried in order for the API key.
    key_env: tuple[str, ...] = ()
    key_required: bool = True
    #: None: the adapter kind's own capabilities.
    capabilities: Capabilities | None = None
    #: What to start when a local server refuses the connection.
    start_hint: str | None = None
    #: Default ``extra`` settings for the adapter (e.g. ``{"api_version": ...}``).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Environment variable that overrides ``base_url``.
    base_url_env: str | None = None
    description: str = ""
    #: Runs on the user's own machine or network: no bill, so an unpriced model costs 0.0.
    local: bool = False
    #: False when the adapter finds its endpoint itself (Bedrock from the region, local models).
    needs_base_url: bool = True
    #: What to tell a user who gave no base_url (``{model}`` is the model id asked for).
    base_url_hint: str = ""
    #: The key is required only for the row's own host: the ``openai`` row pointed at a local
    #: OpenAI-compatible server (vLLM, llama.cpp) asks for none.
    key_only_for_default_host: bool = False
    #: The model ``embed("PROVIDER", ...)`` and ``cloverleaf embed -m PROVIDER`` use.
    embedding_model: str | None = None
    #: Processing tiers the provider names in its answers but bills at its standard rates
    #: (Groq's ``flex``), so a call served at one is priced, not left unpriced as OpenAI's and
    #: Google's flex and priority are where the price table lists no rates for them.
    standard_rate_tiers: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        # a [providers.NAME] base_url may carry a password or ?api-key= (a resolved Target shows it)
        return masked_repr(self)

    def needs_key(self, base_url: str) -> bool:
        if not self.key_required:
            return False
        if self.key_only_for_default_host and base_url and self.base_url:
            return _host(base_url) == _host(self.base_url)
        return True

    def normalize_extra(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """``extra`` with alias spellings (``aws_region``) under their canonical key (``region``)."""
        if not any(k in CONFIG_KEY_ALIASES for k in extra):
            return dict(extra)
        out = {CONFIG_KEY_ALIASES.get(k, k): v for k, v in extra.items() if k not in CONFIG_KEY_ALIASES}
        for alias, key in CONFIG_KEY_ALIASES.items():
            if alias in extra:
                out.setdefault(key, extra[alias])
        return out
