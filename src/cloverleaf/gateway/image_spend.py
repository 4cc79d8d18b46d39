"""The most an image generation can cost at any of its targets, reserved before it is made.

Chat's bound (``estimate.CostBound``) prices tokens in and out, but an image call's output is
not tokens a request caps with ``max_tokens``: it is ``n`` images, whose price the image table
knows up front (:mod:`cloverleaf._image_pricing`: per image by quality and size, or the most
output tokens one image of that quality and size bills). A target whose image price is unknown
can spend anything, so a budget refuses the call (``unpriced``) rather than reserve a guess.
"""

from __future__ import annotations

from typing import Any

from .._types import ImageRequest
from .estimate import texts_bound


def _image_price(t: Any) -> Any:
    """Target ``t``'s image price (the Engine's ``Target.image_price``), None when unknown."""
    return getattr(t.target, "image_price", None)


def unpriced_images(targets: list[Any]) -> tuple[str, ...]:
    """The targets that have no image price: a budget cannot bound what they spend."""
    return tuple(t.key for t in targets if _image_price(t) is None)


def image_bound(targets: list[Any], req: ImageRequest) -> float:
    """The most ``req`` can cost at any of ``targets`` (each priced: see :func:`unpriced_images`),
    its prompt counted at a token a byte (``texts_bound``), which no tokenizer exceeds."""
    prompt = texts_bound([req.prompt])
    return max((_image_price(t).bound(req, prompt) for t in targets), default=0.0)
