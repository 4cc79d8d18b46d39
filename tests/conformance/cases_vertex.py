"""Conformance cases for the ``vertex`` row: Gemini on Vertex AI, through the Gemini adapter.

Vertex AI speaks the Gemini API's request and response shapes (``generateContent``,
``streamGenerateContent?alt=sse``), so every Gemini case is replayed again as the ``vertex``
row, in Vertex mode, at the Vertex publisher root. Two of those recordings were made on Vertex AI
itself (image generation and audio input; see ``cases_gemini``). The Gemini API's embeddings are
not replayed: Vertex AI embeds through ``:predict`` (a synthetic case in its published shape).
How the token reaches Vertex (service account, gcloud login), Claude on Vertex and the quota
project are tested on loopback in ``tests/providers/test_vertex*.py``.
"""

from __future__ import annotations

from dataclasses import replace

from cloverleaf._capabilities import Capability
from cloverleaf._types import EmbeddingRequest
from tests.conformance.case import Case
from tests.conformance.cases_gemini import CASES as GEMINI_CASES
from tests.conformance.cases_gemini import VERTEX

CASES: list[Case] = [replace(case, provider="vertex", base_url=case.base_url or VERTEX)
                     for case in GEMINI_CASES if case.capability is not Capability.EMBEDDINGS]
CASES.append(Case("vertex", Capability.EMBEDDINGS, "../synthetic/vertex/embeddings.yaml",
                  EmbeddingRequest("text-embedding-005", ["first", "second"], dimensions=3, input_type="document"),
                  expect={"vectors": 2, "input_tokens": 2}, base_url=VERTEX,
                  synthetic="no recorded Vertex AI embeddings; the :predict shape Google documents"))
