"""What each provider can do, as flags on its adapter, and the check that enforces them.

The matrix shown by ``cloverleaf providers`` and the README is generated from these flags;
a "no" is enforced by :func:`require` before any network call, with an error that names
providers that can do it. Nothing is ever silently rerouted to another provider.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from typing import Any


class Capability(str, enum.Enum):
    TEXT = "text"
    TOOLS = "tools"
    STRUCTURED = "structured output"
    STREAMING = "streaming"
    STREAM_TOOLS = "streaming + tools"
    STREAM_STRUCTURED = "streaming + structured"
    EMBEDDINGS = "embeddings"
    IMAGE_GENERATION = "image generation"
    IMAGE_INPUT = "image input"
    PDF_INPUT = "pdf input"
    AUDIO_INPUT = "audio input"
    REASONING = "reasoning"


@dataclass(frozen=True, slots=True)
class Capabilities:
    text: bool = True
    tools: bool = False
    structured: bool = False
    streaming: bool = False
    stream_tools: bool = False
    stream_structured: bool = False
    embeddings: bool = False
    image_generation: bool = False
    image_input: bool = False
    pdf_input: bool = False
    audio_input: bool = False
    reasoning: bool = False
    #: Attachments by URL (``fetch="provider"``) are accepted for these kinds.
    url_image_input: bool = False
    url_pdf_input: bool = False
    url_audio_input: bool = False
    #: System messages may carry attachments (OpenAI Chat Completions and Ollama take them in a
    #: system turn); elsewhere the system prompt is text only, and an attachment there is refused
    #: before anything is downloaded rather than dropped on the way.
    system_attachments: bool = False
    #: Cloud-storage URI schemes the provider reads itself (``fetch="provider"``): ``s3`` for
    #: Bedrock's ``s3Location``, ``gs`` for Vertex AI's ``fileData``. cloverleaf never downloads them.
    storage_schemes: tuple[str, ...] = ()

    def supports(self, cap: Capability) -> bool:
        return bool(getattr(self, _FIELD[cap]))

    def with_(self, **changes: Any) -> Capabilities:
        return replace(self, **changes)

    def as_row(self) -> dict[Capability, bool]:
        return {cap: self.supports(cap) for cap in Capability}


_FIELD: dict[Capability, str] = {
    Capability.TEXT: "text",
    Capability.TOOLS: "tools",
    Capability.STRUCTURED: "structured",
    Capability.STREAMING: "streaming",
    Capability.STREAM_TOOLS: "stream_tools",
    Capability.STREAM_STRUCTURED: "stream_structured",
    Capability.EMBEDDINGS: "embeddings",
    Capability.IMAGE_GENERATION: "image_generation",
    Capability.IMAGE_INPUT: "image_input",
    Capability.PDF_INPUT: "pdf_input",
    Capability.AUDIO_INPUT: "audio_input",
    Capability.REASONING: "reasoning",
}
assert set(_FIELD.values()) <= {f.name for f in fields(Capabilities)}

_EVERY: dict[str, Any] = {name: True for name in _FIELD.values()}
ALL = Capabilities(**_EVERY, url_image_input=True, url_pdf_input=True, url_audio_input=True,
                   system_attachments=True)
