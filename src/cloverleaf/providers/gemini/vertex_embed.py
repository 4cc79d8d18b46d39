"""Vertex AI embeddings: the ``:predict`` method, not the Gemini API's ``embedContent``.

``text-embedding-005``, ``text-multilingual-embedding-002`` and ``gemini-embedding-001`` on Vertex AI
take ``{"instances": [{"content": text, "task_type": ...}], "parameters": {"outputDimensionality": N,
"autoTruncate": false}}`` and answer ``{"predictions": [{"embeddings": {"values": [...],
"statistics": {"token_count": N, "truncated": false}}}]}``.

``autoTruncate`` is sent false: Vertex AI's default (true) silently embeds only the start of an
over-long text, and a vector of half a document is a wrong answer no caller can see; false makes
it a 400 that says so (as OpenAI's embeddings do). ``extra_body={"parameters": {"autoTruncate":
True}}`` asks for the cut. ``gemini-embedding-001`` takes one instance per call, the text models
up to 250, so a batch may be several requests, read back in order.
"""

from __future__ import annotations

from typing import Any

from ..._types import EmbeddingRequest

#: Instances per ``:predict`` call: Vertex AI's limit for the text-embedding models.
TEXT_BATCH = 250


def batch_size(model: str) -> int:
    """``gemini-embedding-*`` on Vertex AI embeds one text per request; the others up to 250."""
    return 1 if "gemini-embedding" in model else TEXT_BATCH


def embed_requests(req: EmbeddingRequest, task_type: str | None) -> list[dict[str, Any]]:
    """The ``:predict`` bodies for ``req``'s inputs, in order."""
    parameters: dict[str, Any] = {"autoTruncate": False}
    if req.dimensions is not None:
        parameters["outputDimensionality"] = req.dimensions
    size = batch_size(req.model)
    bodies = []
    for start in range(0, len(req.inputs), size):
        instances = [{"content": text, **({"task_type": task_type} if task_type else {})}
                     for text in req.inputs[start:start + size]]
        body: dict[str, Any] = {"instances": instances, "parameters": dict(parameters)}
        for key, value in (req.extra_body or {}).items():   # one level deep, as the Gemini adapter merges
            body[key] = {**body[key], **value} if isinstance(value, dict) and isinstance(body.get(key), dict) \
                else value
        bodies.append(body)
    return bodies


def read_predictions(data: Any) -> tuple[list[list[float]], int | None]:
    """(the vectors, the input tokens Vertex counted or None when a prediction gave no count).
    Raises KeyError/TypeError/ValueError on a shape that is not a predict answer."""
    vectors: list[list[float]] = []
    tokens: int | None = 0
    for prediction in data["predictions"]:
        embeddings = prediction["embeddings"]
        vectors.append([float(v) for v in embeddings["values"]])
        count = (embeddings.get("statistics") or {}).get("token_count")
        if isinstance(count, int | float) and tokens is not None:
            tokens += int(count)
        else:
            tokens = None
    return vectors, tokens
