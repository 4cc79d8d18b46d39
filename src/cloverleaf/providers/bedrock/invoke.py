"""InvokeModel bodies for Bedrock embeddings and image generation, one model family at a time.

InvokeModel has no common schema: each vendor's native body goes through unchanged. This
module knows four of them, and only builds and reads JSON; the adapter (``bedrock.py``) adds
URL and signing.

- Embeddings: Amazon Titan Text (``amazon.titan-embed-text-v1/v2``, one text per call),
  Amazon Nova multimodal (``amazon.nova-*-embeddings-*``, one text per call) and Cohere
  (``cohere.embed-*``, up to 96 texts per call). A batch may therefore need several requests:
  :func:`embed_bodies` returns one body per request and :func:`parse_embeddings` reads them
  back in the same order.
- Images: Stability (``stability.*``: SD3.5, Stable Image Ultra/Core; one image per call,
  ``aspect_ratio`` instead of a size) and Amazon Titan Image Generator / Nova Canvas
  (``taskType: TEXT_IMAGE`` with ``imageGenerationConfig``).

Which family a model belongs to is read from its id; an ARN or inference-profile id that hides
the model can name it with ``extra={"model_family": "titan"|"nova"|"cohere"|"stability"}``.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Literal

from ..._types import EmbeddingRequest, GeneratedImage, ImageRequest

EmbedFamily = Literal["titan", "nova", "cohere"]
ImageFamily = Literal["stability", "titan"]

#: Cohere on Bedrock accepts at most this many texts per call.
COHERE_BATCH = 96
STABILITY_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")


def embed_family(model: str, hint: str | None = None) -> EmbedFamily | None:
    if hint in ("titan", "nova", "cohere"):
        return hint  # type: ignore[return-value]
    m = model.lower()
    if "cohere.embed" in m:
        return "cohere"
    if "titan-embed" in m:
        return "titan"
    if "nova" in m and "embed" in m:
        return "nova"
    return None


def image_family(model: str, hint: str | None = None) -> ImageFamily | None:
    if hint in ("stability", "titan"):
        return hint  # type: ignore[return-value]
    m = model.lower()
    if "stability." in m:
        return "stability"
    if "titan-image" in m or "nova-canvas" in m:
        return "titan"
    return None


# --------------------------------------------------------------------------- embeddings

_COHERE_INPUT_TYPES = {"query": "search_query", "document": "search_document"}
_NOVA_PURPOSES = {"query": "GENERIC_RETRIEVAL", "document": "GENERIC_INDEX"}


def embed_bodies(family: EmbedFamily, req: EmbeddingRequest) -> list[dict[str, Any]]:
    """The InvokeModel bodies for ``req``, in input order."""
    extra = req.extra_body or {}
    if family == "cohere":
        if req.dimensions is not None and "-v3" in req.model.lower():   # v4 takes output_dimension
            raise ValueError(f"{req.model} makes 1024-dimension vectors only (Bedrock refuses output_dimension for "
                             "Embed v3); leave dimensions out, or use cohere.embed-v4:0 (256, 512, 1024, 1536)")
        bodies = []
        for start in range(0, len(req.inputs), COHERE_BATCH):
            body: dict[str, Any] = {
                "texts": req.inputs[start:start + COHERE_BATCH],
                "input_type": _COHERE_INPUT_TYPES.get(req.input_type or "document", req.input_type),
            }
            if req.dimensions is not None:
                body["output_dimension"] = req.dimensions
            bodies.append({**body, **extra})
        return bodies
    if family == "titan":
        return [{**body, **extra} for body in _titan_bodies(req)]
    out = []
    for text in req.inputs:
        params: dict[str, Any] = {
            "embeddingPurpose": _NOVA_PURPOSES.get(req.input_type or "document", req.input_type),
            "text": {"value": text, "truncationMode": "NONE"},
        }
        if req.dimensions is not None:
            params["embeddingDimension"] = req.dimensions
        out.append({"taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams": params, **extra})
    return out


#: The output sizes each Titan embedding model takes (Bedrock's model parameters pages).
TITAN_TEXT_V2_DIMENSIONS = (256, 512, 1024)
TITAN_MULTIMODAL_DIMENSIONS = (256, 384, 1024)


def _titan_bodies(req: EmbeddingRequest) -> list[dict[str, Any]]:
    """Titan bodies, one per text, in each model's own shape: Text v2 takes ``normalize`` and
    ``dimensions``; Multimodal G1 (``amazon.titan-embed-image-v1``) takes neither (Bedrock refuses
    the extraneous keys: every text embedding there was a 400) but ``embeddingConfig.
    outputEmbeddingLength``; Text v1 has a fixed size. A size the model cannot give is a ValueError
    naming the sizes it can, not a vector of another length or Bedrock's enum error."""
    model = req.model.lower()
    dims = req.dimensions
    if "titan-embed-image" in model:
        _check_dimensions(req.model, dims, TITAN_MULTIMODAL_DIMENSIONS)
        config = {"embeddingConfig": {"outputEmbeddingLength": dims}} if dims is not None else {}
        return [{"inputText": text, **config} for text in req.inputs]
    if "text-v1" in model or "g1-text" in model:
        if dims is not None:
            raise ValueError(f"{req.model} makes 1536-dimension vectors only; leave dimensions out, or use "
                             f"amazon.titan-embed-text-v2:0 ({', '.join(map(str, TITAN_TEXT_V2_DIMENSIONS))})")
        return [{"inputText": text} for text in req.inputs]
    _check_dimensions(req.model, dims, TITAN_TEXT_V2_DIMENSIONS)
    sized = {"dimensions": dims} if dims is not None else {}
    return [{"inputText": text, "normalize": True, **sized} for text in req.inputs]


def _check_dimensions(model: str, dims: int | None, allowed: tuple[int, ...]) -> None:
    if dims is not None and dims not in allowed:
        raise ValueError(f"{model} makes vectors of {', '.join(map(str, allowed))} dimensions, not {dims}")


def parse_embeddings(payloads: list[Any]) -> list[list[float]]:
    """Vectors from the response bodies of :func:`embed_bodies`, whatever the family
    (recognised by shape, so an ARN-addressed model parses too). ValueError if unknown."""
    vectors: list[list[float]] = []
    for data in payloads:
        if not isinstance(data, dict):
            raise ValueError("embedding response is not a JSON object")
        if "embedding" in data:  # Titan
            vectors.append(data["embedding"])
            continue
        found = data.get("embeddings")
        if isinstance(found, dict):  # Cohere embed v4: embeddings by type
            found = found.get("float")
        if not isinstance(found, list):
            raise ValueError("embedding response has no 'embedding' or 'embeddings'")
        for item in found:
            vectors.append(item["embedding"] if isinstance(item, dict) else item)  # Nova | Cohere
    return vectors


def embedding_tokens(payload: Any, header: str | None) -> int | None:
    """The input tokens Bedrock counted for one embedding response (its header, or Titan's
    ``inputTextTokenCount``); None when it said nothing (Cohere's body has no count): unknown,
    which the caller books as an estimate, never as a reported 0."""
    if header and header.isdigit():
        return int(header)
    if isinstance(payload, dict) and isinstance(payload.get("inputTextTokenCount"), int):
        return int(payload["inputTextTokenCount"])
    return None


# --------------------------------------------------------------------------- images


def image_bodies(family: ImageFamily, req: ImageRequest) -> list[dict[str, Any]]:
    """The InvokeModel bodies for ``req``: one per image for Stability, one call for Titan."""
    extra = req.extra_body or {}
    if family == "stability":
        body: dict[str, Any] = {"prompt": req.prompt, "output_format": "png"}
        if "sd3" in req.model:
            body["mode"] = "text-to-image"
        if req.size:
            body["aspect_ratio"] = aspect_ratio(req.size)
        return [{**body, **extra} for _ in range(req.n)]
    width, height = _dimensions(req.size)
    config: dict[str, Any] = {"numberOfImages": req.n, "width": width, "height": height}
    if req.quality:
        config["quality"] = "premium" if req.quality in ("hd", "high", "premium") else "standard"
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": req.prompt},
        "imageGenerationConfig": config,
    }
    return [{**body, **extra}]


def parse_images(payloads: list[Any], media_type: str = "image/png") -> tuple[list[GeneratedImage], str | None]:
    """(images, refusal) from the response bodies; ``refusal`` names a filtered result.

    Stability says per image in ``finish_reasons`` (null when fine): a filtered call answers
    ``{"finish_reasons": ["Filter reason: prompt"]}`` with no ``images`` at all (which read as a
    malformed answer, a 502), and an image its output filter caught may still come back, and is
    not the image asked for, so only the images whose reason is null are kept. A reason that is
    no filter's ("Inference error") is a failed call, a ValueError."""
    images: list[GeneratedImage] = []
    refusal = None
    for data in payloads:
        reasons = data.get("finish_reasons") if isinstance(data, dict) else None
        if isinstance(reasons, list) and any(reasons):   # Stability
            failed = next((str(r) for r in reasons if r and not str(r).startswith("Filter reason")), None)
            if failed:
                raise ValueError(f"Stability answered {failed!r}")
            refusal = str(next(r for r in reasons if r))
            made = data.get("images") if isinstance(data.get("images"), list) else []
            images.extend(GeneratedImage(data=base64.b64decode(b64), media_type=media_type)
                          for b64, reason in zip(made, reasons, strict=False) if b64 and not reason)
            continue
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError("image response has no 'images' list")
        if data.get("error"):  # Titan
            refusal = str(data["error"])
        images.extend(GeneratedImage(data=base64.b64decode(b64), media_type=media_type) for b64 in data["images"])
    return images, refusal


def aspect_ratio(size: str) -> str:
    """The Stability aspect ratio closest to ``size`` ("1024x768" -> "5:4"; "16:9" passes)."""
    if size in STABILITY_RATIOS:
        return size
    width, height = _dimensions(size)
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log(int(w) / int(h)) - target)

    return min(STABILITY_RATIOS, key=distance)


def _dimensions(size: str | None) -> tuple[int, int]:
    if not size:
        return 1024, 1024
    w, sep, h = size.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        raise ValueError(f"image size must look like 1024x1024, not {size!r}")
    return int(w), int(h)
