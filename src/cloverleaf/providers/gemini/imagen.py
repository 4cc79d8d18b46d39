"""Imagen (``imagen-3.0-*``, ``imagen-4.0-*``): image models behind the ``:predict`` method, not
``generateContent`` as Gemini's own image models (``gemini-2.5-flash-image``) are.

Google refuses an Imagen model at ``generateContent`` (it is "not supported for generateContent"),
so each Imagen call failed. Imagen takes ``{"instances": [{"prompt": ...}], "parameters":
{"sampleCount": 1-4, "aspectRatio": "1:1"|"3:4"|"4:3"|"9:16"|"16:9", "includeRaiReason": true}}``
and answers ``{"predictions": [{"bytesBase64Encoded": ..., "mimeType": "image/png"}, ...]}``. An
image its safety filter withheld is a prediction with only ``raiFilteredReason`` (asked for by
``includeRaiReason``; without it the answer is an empty ``{}``, which says nothing of why), so
``n`` images may come back fewer, and none at all is the prompt's matter: a content filter. More
than four images are several calls, read back in order.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from ..._types import GeneratedImage, ImageRequest

#: Images one ``:predict`` call makes at most (``sampleCount``).
MAX_SAMPLES = 4
#: The aspect ratios Imagen takes.
RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")


def is_imagen(model: str) -> bool:
    return model.lower().removeprefix("models/").startswith("imagen-")


def predict_bodies(req: ImageRequest) -> list[dict[str, Any]]:
    """The ``:predict`` bodies for ``req``'s ``n`` images, four at most a call. ValueError for a
    size Imagen has no aspect ratio for."""
    parameters: dict[str, Any] = {"includeRaiReason": True}
    if req.size:
        parameters["aspectRatio"] = aspect_ratio(req.size)
    bodies = []
    for start in range(0, req.n, MAX_SAMPLES):
        body: dict[str, Any] = {"instances": [{"prompt": req.prompt}],
                                "parameters": {**parameters, "sampleCount": min(MAX_SAMPLES, req.n - start)}}
        for key, value in (req.extra_body or {}).items():   # one level deep, as the Gemini adapter merges
            body[key] = {**body[key], **value} if isinstance(value, dict) and isinstance(body.get(key), dict) \
                else value
        bodies.append(body)
    return bodies


def aspect_ratio(size: str) -> str:
    """Imagen's ratio for ``size``: one of :data:`RATIOS` as given, or the closest to a
    ``WIDTHxHEIGHT`` (OpenAI's 1792x1024 is 16:9, 1536x1024 is 4:3)."""
    if size in RATIOS:
        return size
    width, sep, height = size.lower().partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit() and int(width) and int(height)):
        raise ValueError(f"size {size!r}: Imagen takes an aspect ratio ({', '.join(RATIOS)}) or a size such "
                         "as 1024x1024")
    target = math.log(int(width) / int(height))

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log(int(w) / int(h)) - target)

    return min(RATIOS, key=distance)


def read_predictions(payloads: list[Any]) -> tuple[list[GeneratedImage], list[str]]:
    """(the images, the reasons given for those withheld) from the answers of
    :func:`predict_bodies`. KeyError/TypeError/ValueError on a shape that is not Imagen's."""
    images: list[GeneratedImage] = []
    withheld: list[str] = []
    for data in payloads:
        if not isinstance(data, dict):
            raise TypeError("the answer is not a JSON object")
        for prediction in data.get("predictions") or []:
            if prediction.get("bytesBase64Encoded"):
                images.append(GeneratedImage(data=base64.b64decode(prediction["bytesBase64Encoded"]),
                                             media_type=str(prediction.get("mimeType") or "image/png")))
            elif prediction.get("raiFilteredReason"):
                withheld.append(str(prediction["raiFilteredReason"]))
            else:
                raise ValueError("a prediction with neither bytesBase64Encoded nor raiFilteredReason")
    return images, withheld
