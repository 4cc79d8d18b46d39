"""The capability matrix, generated from the adapters' own flags.

``cloverleaf providers`` prints it and the README embeds the Markdown form; a test fails
when the README's copy differs, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from ._capabilities import Capability
from .providers.registry import ROWS, capabilities_of

#: Short column headings, in display order.
COLUMNS: tuple[tuple[Capability, str], ...] = (
    (Capability.TEXT, "text"),
    (Capability.TOOLS, "tools"),
    (Capability.STRUCTURED, "structured"),
    (Capability.STREAMING, "stream"),
    (Capability.STREAM_TOOLS, "stream+tools"),
    (Capability.STREAM_STRUCTURED, "stream+structured"),
    (Capability.EMBEDDINGS, "embeddings"),
    (Capability.IMAGE_GENERATION, "image gen"),
    (Capability.IMAGE_INPUT, "image in"),
    (Capability.PDF_INPUT, "pdf in"),
    (Capability.AUDIO_INPUT, "audio in"),
    (Capability.REASONING, "reasoning"),
)


def rows() -> list[tuple[str, list[bool]]]:
    out = []
    for spec in ROWS:
        caps = capabilities_of(spec)
        out.append((spec.name, [caps.supports(cap) for cap, _ in COLUMNS]))
    return out


def markdown() -> str:
    head = "| provider | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---|" + "|".join(":-:" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for name, flags in rows():
        lines.append(f"| {name} | " + " | ".join("✓" if f else "–" for f in flags) + " |")
    return "\n".join(lines) + "\n"
