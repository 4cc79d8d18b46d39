"""Nearest stored prompt by cosine similarity.

A scope (model, parameters, history) holds at most the cache's ``max_entries`` vectors, so
a linear scan is bounded; vectors are normalised once when stored, so a comparison is one
dot product. Pure Python keeps the core free of numpy; at a few thousand 384-dimension
vectors per scope a scan stays in the low milliseconds, far below the upstream call it saves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .backends import Vector


def normalise(vector: Iterable[float]) -> Vector:
    values = [float(x) for x in vector]
    norm = math.sqrt(math.fsum(x * x for x in values))
    return [x / norm for x in values] if norm > 0 else values


def nearest(query: Vector, candidates: Iterable[tuple[str, Vector]]) -> tuple[str, float] | None:
    """The candidate most similar to ``query`` (both normalised), with its similarity."""
    best: tuple[str, float] | None = None
    for key, vec in candidates:
        if len(vec) != len(query):
            continue      # stored by another embedding model: never comparable
        score = sum(a * b for a, b in zip(query, vec, strict=True))
        if best is None or score > best[1]:
            best = (key, score)
    return best
