"""The most one image (or one PDF page's picture) can bill at a model, by model family.

A budget reserves a call's worst case, so this is an upper bound over every size and detail
level a provider accepts, not an estimate. The rules, from each provider's documentation:

- OpenAI, tile-based models (https://platform.openai.com/docs/guides/images-vision#calculating-costs):
  ``detail: "high"`` fits the image in 2048x2048, scales its short side to 768px and bills
  ``base + tiles x per_tile`` for the 512px tiles that cover it — at most 2 x 4 = 8 tiles;
  ``"low"`` bills ``base`` alone. gpt-4o / gpt-4.1 / gpt-4.5 / gpt-4-turbo: 85 + 170 a tile
  (1,445 at most); gpt-4o-mini: 2,833 + 5,667 a tile (48,169 at most); o1 / o3: 75 + 150;
  computer-use-preview: 65 + 129.
- OpenAI, patch-based models (same page): 32px patches, capped at 1,536 a image, times a
  per-model factor (gpt-4.1-mini and gpt-5-mini 1.62, gpt-4.1-nano and gpt-5-nano 2.46,
  o4-mini 1.72); ``detail: "low"`` does not lower it. The GPT-5.x mini/nano models are reported
  billing up to 2,500 patches (https://community.openai.com/t/1377015), so those take 2,500 at
  the largest factor of their size (1.72 mini, 2.46 nano).
- OpenAI, GPT-5 flagship models: GPT-5.4's ``detail: "original"`` reads up to 10.24M pixels —
  10,000 patches — at a reported 1.2 factor: 12,000 (and no "low" discount assumed).
- Anthropic (https://docs.claude.com/en/docs/build-with-claude/vision): about
  ``width x height / 750`` tokens after the image is scaled to a 1,568px long edge (~1,600
  tokens); Claude Opus 4.7 and later read up to 2,576px, 4,784 tokens: 4,800 for every Claude.
- Google (https://ai.google.dev/gemini-api/docs/image-understanding, media-resolution): 258
  tokens a 768px tile, an image scaled to at most 3072x3072 (16 tiles, 4,128); Gemini 3's
  ``media_resolution`` tops out at 2,240 (ultra high), under that. A PDF page bills as an image
  of at most 2,240 there (258 a page before Gemini 3).

A model none of these names (an Azure deployment, an OpenAI-compatible server's alias, a local
model) may be any of them underneath, so it takes the largest: gpt-4o-mini's 48,169.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class ImageRule:
    """A family's bound: ``most`` for any image; ``low`` when the request fixes ``detail: "low"``
    (None: low detail bills no less); ``page`` for the picture of one PDF page."""

    most: int
    low: int | None = None
    page: int | None = None

    def image(self, detail: str | None) -> int:
        return self.low if detail == "low" and self.low is not None else self.most

    def pdf_page(self) -> int:
        return self.page if self.page is not None else self.most


def _tiles(base: int, per_tile: int) -> ImageRule:
    """OpenAI's tile rule: at most 8 tiles at high detail, ``base`` alone at low."""
    return ImageRule(most=base + 8 * per_tile, low=base)


#: (pattern on the model's last path segment, lowercased; rule), the first match wins: the
#: specific names (gpt-4o-mini, the mini/nano patch models) before the families they prefix
_FAMILIES: tuple[tuple[re.Pattern[str], ImageRule], ...] = (
    (re.compile(r"gpt-4o-mini"), _tiles(2_833, 5_667)),
    (re.compile(r"gpt-5\.\d+[^/]*-nano"), ImageRule(most=-(-2_500 * 246 // 100))),
    (re.compile(r"gpt-5\.\d+[^/]*-mini"), ImageRule(most=-(-2_500 * 172 // 100))),
    (re.compile(r"gpt-(4\.1|5)-nano"), ImageRule(most=-(-1_536 * 246 // 100))),
    (re.compile(r"gpt-(4\.1|5)-mini"), ImageRule(most=-(-1_536 * 162 // 100))),
    (re.compile(r"(^|-)o4-mini|codex-mini"), ImageRule(most=-(-1_536 * 172 // 100))),
    (re.compile(r"gpt-5"), ImageRule(most=12_000)),
    (re.compile(r"gpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-4-vision"), _tiles(85, 170)),
    (re.compile(r"computer-use"), _tiles(65, 129)),
    (re.compile(r"^o[13]\b"), _tiles(75, 150)),
    (re.compile(r"claude"), ImageRule(most=4_800)),
    (re.compile(r"gemini"), ImageRule(most=4_128, page=2_240)),
)

#: a model none of the families names: the largest of them
UNKNOWN = ImageRule(most=max(rule.most for _, rule in _FAMILIES))


@lru_cache(maxsize=1024)
def rule_for(model: str | None) -> ImageRule:
    """The image rule of ``model`` (a provider's model id: ``gpt-4o-mini-2024-07-18``,
    ``anthropic.claude-sonnet-4-5-v1:0``, ``openai/gpt-4o``), else :data:`UNKNOWN`."""
    if not model:
        return UNKNOWN
    name = model.rsplit("/", 1)[-1].lower()
    for pattern, rule in _FAMILIES:
        if pattern.search(name):
            return rule
    return UNKNOWN
