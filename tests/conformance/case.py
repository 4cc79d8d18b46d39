"""One conformance case: a capability of a provider, proven on recorded (or published-format) traffic.

Each provider contributes ``tests/conformance/cases_<provider>.py`` with a module-level
``CASES: list[Case]``. ``test_conformance.py`` runs the same checks over all of them and
checks the matrix is honest: every capability a provider claims has at least one case,
and every capability it lacks raises UnsupportedCapability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloverleaf._capabilities import Capability
from cloverleaf._types import ChatRequest, EmbeddingRequest, ImageRequest


@dataclass
class Case:
    provider: str                     # registry row name ("anthropic", "groq", ...)
    capability: Capability
    cassette: str                     # path under tests/fixtures/wire/ (or tests/fixtures/synthetic/...)
    request: ChatRequest | EmbeddingRequest | ImageRequest
    interaction: int = -1             # which interaction of the cassette answers `request`
    #: Optional expectations checked on the parsed result:
    #:   content_contains: str, tool_names: list[str], finish_reason: str,
    #:   input_tokens: int, output_tokens: int, reasoning: bool, vectors: int, images: int
    expect: dict[str, Any] = field(default_factory=dict)
    #: Why this case is not a real recording (published format only), or None.
    synthetic: str | None = None
    #: Provider config extras for build_* (e.g. {"ollama_api": "native"}).
    extra: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.capability.name.lower()}-{self.cassette.rsplit('/', 1)[-1]}"
