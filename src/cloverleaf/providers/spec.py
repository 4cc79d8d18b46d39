"""One registry row's shape: a leaf (adapters and the registry both read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._capabilities import Capabilities


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
    local: bool = False
