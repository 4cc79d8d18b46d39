"""Conformance cases for the ``vertex`` row: Gemini on Vertex AI, through the Gemini adapter.

Vertex AI speaks the Gemini API's request and response shapes (``generateContent``,
``streamGenerateContent?alt=sse``), so every Gemini case is replayed again as the ``vertex``
row, in Vertex mode, at the Vertex publisher root. Two of those recordings were made on Vertex AI
itself (image generation and audio input; see ``cases_gemini``). Embeddings are not claimed:
Vertex AI embeds through ``:predict``, which the adapter does not speak. How the token reaches
Vertex (service account, gcloud login) is tested on loopback in ``tests/providers/test_vertex*.py``.
"""

from __future__ import annotations

from dataclasses import replace

from cloverleaf._capabilities import Capability
from tests.conformance.case import Case
from tests.conformance.cases_gemini import CASES as GEMINI_CASES
from tests.conformance.cases_gemini import VERTEX

CASES: list[Case] = [replace(case, provider="vertex", base_url=case.base_url or VERTEX)
                     for case in GEMINI_CASES if case.capability is not Capability.EMBEDDINGS]
