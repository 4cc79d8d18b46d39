"""A tool call's thought signature in its id: reversible, compact, and an id Anthropic accepts."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from cloverleaf.server.signed_call_ids import call_extra, signed_id, unsigned

ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")


def test_a_base64_signature_rides_as_its_bytes() -> None:
    signature = base64.b64encode(bytes(range(256)) * 3).decode()   # '+', '/' and '=' included
    call_id = signed_id("call_resp1_0", {"thoughtSignature": signature})
    assert ANTHROPIC_ID.fullmatch(call_id) and call_id.startswith("call_resp1_0")
    assert len(call_id) <= len("call_resp1_0") + len(signature) + 10
    assert unsigned(call_id) == ("call_resp1_0", signature)
    assert call_extra(call_id) == ("call_resp1_0", {"thoughtSignature": signature})


@given(st.text(min_size=1), st.text(alphabet="abcXYZ019_-", min_size=1, max_size=40))
def test_any_signature_comes_back_as_it_went(signature: str, original: str) -> None:
    call_id = signed_id(original, {"thoughtSignature": signature})
    assert ANTHROPIC_ID.fullmatch(call_id)
    assert unsigned(call_id) == (original, signature)


def test_ids_without_a_signature_pass_unchanged() -> None:
    assert signed_id("toolu_01A", None) == signed_id("toolu_01A", {}) == "toolu_01A"
    for plain in ("toolu_01A", "call_abc", "x__thsig_", "x__thsig_q", "x__thsig_b!!"):
        assert unsigned(plain) == (plain, None)
    # extra_content wins over the id (Google's OpenAI-compatible field)
    assert call_extra("call_1", {"google": {"thought_signature": "U0lH"}}) == ("call_1", {"thoughtSignature": "U0lH"})
