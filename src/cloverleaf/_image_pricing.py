"""What an image generation costs, and the most it can cost before it is made.

Image models are not billed like chat: OpenAI's gpt-image models bill tokens, but of three kinds
(text in, image in, image out) and report them in the answer's ``usage``; DALL-E, Imagen, Nova
Canvas, Titan Image and Stability bill each image made, by its quality and size. The rates live
in ``data/prices.json`` under ``images`` (its ``_about`` says where each comes from), next to the
token prices, and are found by the same keys (:func:`~._pricing.table_keys`: reseller aliases,
dated snapshots, an adapter's ``price_keys``).

A budget reserves before the call (:meth:`ImagePrice.bound`), and an image's upper bound is known
up front: per-image price times ``n``, or for a token-billed model the prompt at the dearest input
rate plus ``n`` times the most output tokens OpenAI lists for one image of that quality and size.
A quality or size the request does not pin down (``auto``, none given where the model has no
default, a name the table does not list) bounds, and bills, at the dearest the row lists: never
less than the provider can charge. A model the table does not list has no image price (None),
never 0, so a budget refuses it rather than let it spend unmetered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ._pricing import table_keys
from ._types import ImageRequest, ImageResponse

#: (pixels, value) steps, fewest pixels first: a size bills at the first step that holds it.
Steps = tuple[tuple[int, float], ...]
#: A row's steps by the quality they bill at ("" when the price does not depend on it).
ByQuality = tuple[tuple[str, Steps], ...]


@dataclass(frozen=True, slots=True)
class ImagePrice:
    """An image model's rates. Token-billed (``output`` set): USD per 1M ``text_input``,
    ``image_input`` and ``output`` tokens, with ``output_tokens`` the most output tokens one image
    bills by quality and size (for the bound only: the cost is the usage's). ``text_output`` is
    what the answer's other output tokens (its text, and the thinking of Gemini 3's image models)
    bill at where the provider prices them apart ($12 against $120 for images on Gemini 3 Pro
    Image); None: every output token at ``output``. Per-image: USD an image in ``per_image``. ``qualities`` maps a request's quality name to the row's (``*``: any
    other, or none); ``size`` is what a request that names none gets."""

    per_image: ByQuality = ()
    qualities: tuple[tuple[str, str], ...] = ()
    size: str | None = None
    text_input: float = 0.0
    image_input: float = 0.0
    output: float | None = None
    output_tokens: ByQuality = ()
    text_output: float | None = None

    @property
    def by_tokens(self) -> bool:
        return self.output is not None

    def cost(self, req: ImageRequest, resp: ImageResponse) -> float | None:
        """What ``resp`` costs: its usage at the token rates (None when the upstream reported
        none), or each image it holds at the per-image rate of what ``req`` asked for. Output
        tokens the usage does not say are images (``Usage.image_output_tokens``) bill at
        ``text_output``, unless it names none at all: an answer that holds images without the
        split bills every output token at the image rate, the dearer reading."""
        if self.output is None:
            return round(len(resp.images) * self._value(self.per_image, req.quality, req.size), 10)
        usage = resp.usage
        if not usage.reported:
            return None
        images_in = min(usage.image_input_tokens, usage.input_tokens)
        images_out = min(usage.image_output_tokens, usage.output_tokens)
        if self.text_output is None or not images_out:
            images_out = usage.output_tokens
        total = ((usage.input_tokens - images_in) * self.text_input + images_in * self.image_input
                 + images_out * self.output + (usage.output_tokens - images_out) * (self.text_output or 0.0))
        return round(total / 1_000_000, 10)

    def bound(self, req: ImageRequest, prompt_tokens: int) -> float:
        """The most ``req`` can cost: ``n`` images at their dearest reading, plus, for a
        token-billed model, ``prompt_tokens`` (a bound of the prompt) at the dearer input rate."""
        n = max(req.n, 1)
        if self.output is None:
            return round(n * self._value(self.per_image, req.quality, req.size), 10)
        most_out = self._value(self.output_tokens, req.quality, req.size)
        total = (prompt_tokens * max(self.text_input, self.image_input)
                 + n * most_out * max(self.output, self.text_output or 0.0))
        return round(total / 1_000_000, 10)

    def _value(self, table: ByQuality, quality: str | None, size: str | None) -> float:
        """The value ``table`` lists for ``quality`` at ``size`` (see the module docstring for
        what a quality or size it does not pin down reads as)."""
        listed = dict(table)
        if quality not in listed:   # a name of the request's own (hd for premium), or none given
            named = dict(self.qualities)
            quality = named.get(quality or "", named.get("*", quality))
        steps = listed.get("", listed.get(quality or ""))
        if steps is None:   # a quality this row does not list: its dearest
            return max(_at(s, _pixels(size or self.size)) for _, s in table)
        return _at(steps, _pixels(size or self.size))


def _pixels(size: str | None) -> int | None:
    """The pixels of a ``WIDTHxHEIGHT`` size; None for ``auto``, an aspect ratio or nothing."""
    width, sep, height = (size or "").lower().partition("x")
    if sep and width.strip().isdigit() and height.strip().isdigit():
        return int(width) * int(height)
    return None


def _at(steps: Steps, pixels: int | None) -> float:
    """The value of the first step that holds ``pixels``: the largest when none does, or when
    the size is not known."""
    if pixels is not None:
        for most, value in steps:
            if pixels <= most:
                return value
    return steps[-1][1]


def _steps(by_size: Any) -> Steps:
    """``{"1024x1024": v, ...}`` (or one number, any size) as steps, fewest pixels first; sizes of
    the same pixels (1024x1536, 1536x1024) as one step at the higher of their values."""
    if isinstance(by_size, int | float):
        return ((0, float(by_size)),)
    merged: dict[int, float] = {}
    for size, value in by_size.items():
        pixels = _pixels(size)
        if pixels is None:
            raise ValueError(f"image price size {size!r} is not WIDTHxHEIGHT")
        merged[pixels] = max(float(value), merged.get(pixels, 0.0))
    # a larger size never bills less than a smaller one it contains
    out: list[tuple[int, float]] = []
    for pixels in sorted(merged):
        out.append((pixels, max(merged[pixels], out[-1][1] if out else 0.0)))
    return tuple(out)


def _by_quality(table: Any) -> ByQuality:
    if isinstance(table, dict):
        return tuple((quality, _steps(sizes)) for quality, sizes in table.items())
    return (("", _steps(table)),)


def price_row(row: dict[str, Any], output_tables: dict[str, Any]) -> ImagePrice:
    tokens = row.get("output_tokens", {})
    if isinstance(tokens, str):   # the name of a shared table (``_output_tokens``)
        tokens = output_tables[tokens]
    return ImagePrice(per_image=_by_quality(row["per_image"]) if "per_image" in row else (),
                      qualities=tuple(row.get("quality", {}).items()), size=row.get("size"),
                      text_input=row.get("text_input", 0.0), image_input=row.get("image_input", 0.0),
                      output=row.get("output"), output_tokens=_by_quality(tokens) if tokens else (),
                      text_output=row.get("text_output"))


@lru_cache(maxsize=1)
def _raw_images() -> dict[str, Any]:
    raw = json.loads(resources.files("cloverleaf.data").joinpath("prices.json").read_text("utf-8"))
    images: dict[str, Any] = raw.get("images", {})
    return images


@lru_cache(maxsize=1)
def _table() -> dict[str, ImagePrice]:
    images = _raw_images()
    output_tables = images.get("_output_tokens", {})
    return {key: price_row(row, output_tables) for key, row in images.items() if not key.startswith("_")}


def output_token_tables() -> dict[str, Any]:
    """The named tables of the most output tokens one image bills (``_output_tokens``), which a
    registry entry's token-billed image price may name instead of writing one out."""
    return dict(_raw_images().get("_output_tokens", {}))


def lookup_image_keys(keys: list[str]) -> ImagePrice | None:
    """The image price for the first of ``keys`` (``provider/model``, most specific first) the
    table lists, found as token prices are; None when unknown."""
    table = _table()
    return next((table[key] for key in table_keys(keys) if key in table), None)


def lookup_image(provider: str, model: str) -> ImagePrice | None:
    """The image price of ``provider``/``model``, through the provider's adapter's ``price_keys``
    (Bedrock's version suffixes and inference-profile geographies), as ``_pricing.lookup``."""
    from .providers.registry import get_adapter, get_spec, provider_names

    if provider in provider_names():
        return lookup_image_keys(get_adapter(get_spec(provider)).price_keys(model))
    return lookup_image_keys([f"{provider}/{model}"])


#: What a local provider's images cost: nothing.
FREE_IMAGES = ImagePrice(per_image=(("", ((0, 0.0),)),))
