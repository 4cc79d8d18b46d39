"""What a Gemini answer carries beside its text is kept, the same whole and streamed: grounding
(sources as citations), URL context, safety ratings, the code the code-execution tool ran and its
output (in order, set off from the text), and a generated image (an Attachment part). Recorded
answers where the wire collection has them (safety ratings, an image), synthetic ones otherwise."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cloverleaf._errors import ContentFilterError
from cloverleaf._http import HttpResponse
from cloverleaf._types import Attachment, ChatRequest, ChatResponse, Message, Text
from cloverleaf.gateway.cache import codec
from cloverleaf.providers.gemini.messages import build_contents
from tests.providers.test_gemini_support import GOOGLE, adapter, decode
from tests.wire import cassette

REQ = ChatRequest("gemini-2.5-flash", [Message.user("x")])
SAFETY = GOOGLE + "test_google_model_safety_settings.yaml"
IMAGE = GOOGLE + "test_google_vertexai_image_generation_with_output_format.yaml"

GROUNDING = {
    "webSearchQueries": ["UEFA Euro 2024 winner"],
    "searchEntryPoint": {"renderedContent": "<div>chips</div>"},
    "groundingChunks": [{"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/1",
                                 "title": "aljazeera.com"}},
                        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/2",
                                 "title": "uefa.com"}}],
    "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 19, "text": "Spain won Euro 2024"},
                           "groundingChunkIndices": [0, 1], "confidenceScores": [0.9, 0.8]}]}
URL_CONTEXT = {"urlMetadata": [{"retrievedUrl": "https://www.uefa.com/euro2024/",
                                "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS"}]}
USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30}


def _whole(body: dict[str, Any] | bytes) -> ChatResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return adapter().parse_chat(HttpResponse(200, {}, raw), REQ)


def _streamed(*chunks: dict[str, Any]) -> ChatResponse:
    """The chunks as Gemini streams them (one SSE event each), fed a few bytes at a time."""
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
    return decode(REQ, [sse[i:i + 7] for i in range(0, len(sse), 7)])[1]


def _both(*chunks: dict[str, Any]) -> list[ChatResponse]:
    """The answer whole (its chunks' parts in one response) and streamed."""
    last = chunks[-1]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    whole = {**last, "candidates": [{**last["candidates"][0], "content": {"role": "model", "parts": parts}}]}
    return [_whole(whole), _streamed(*chunks)]


def _chunk(parts: list[dict[str, Any]], **candidate: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts}, **candidate}]}
    if "finishReason" in candidate:
        body["usageMetadata"] = USAGE
    return body


def test_grounding_sources_are_kept_and_cite_the_text():
    first = _chunk([{"text": "Spain won Euro 2024, "}])
    last = _chunk([{"text": "beating England 2-1."}], finishReason="STOP", groundingMetadata=GROUNDING,
                  urlContextMetadata=URL_CONTEXT)
    for r in _both(first, last):
        assert r.text == "Spain won Euro 2024, beating England 2-1."
        assert r.metadata.extra["grounding_metadata"] == GROUNDING
        assert r.metadata.extra["url_context_metadata"] == URL_CONTEXT
        [text] = r.parts
        assert isinstance(text, Text) and text.citations is not None
        assert [(c.type, c.url, c.title) for c in text.citations] == [
            ("web_search_result_location", GROUNDING["groundingChunks"][i]["web"]["uri"],  # type: ignore[index]
             GROUNDING["groundingChunks"][i]["web"]["title"]) for i in (0, 1)]  # type: ignore[index]
        assert text.citations[0].extra == {"segment": GROUNDING["groundingSupports"][0]["segment"],  # type: ignore[index]
                                           "grounding_chunk_index": 0, "confidence_score": 0.9}


def test_code_execution_is_kept_in_order_and_set_off_from_the_text():
    code = {"executableCode": {"language": "PYTHON", "code": "print(sum(range(1, 101)))"}}
    result = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "5050\n"}}
    first = _chunk([{"text": "I'll compute it."}, code])
    last = _chunk([result, {"text": "The sum is 5050."}], finishReason="STOP")
    for r in _both(first, last):
        assert r.text == ("I'll compute it.\n```python\nprint(sum(range(1, 101)))\n```\n"
                          "\n```output\n5050\n```\nThe sum is 5050.")
        assert r.metadata.extra["code_execution"] == [code, result]


def test_a_failed_run_says_so_in_the_text():
    failed = {"codeExecutionResult": {"outcome": "OUTCOME_FAILED", "output": "ZeroDivisionError"}}
    r = _whole(_chunk([failed], finishReason="STOP"))
    assert "```output (OUTCOME_FAILED)\nZeroDivisionError\n```" in r.text


def test_a_generated_image_is_an_attachment_part_whole_and_streamed():
    recorded = cassette(IMAGE)[0].response
    raw = json.loads(recorded.body)
    inline = raw["candidates"][0]["content"]["parts"][0]["inlineData"]
    for r in (adapter().parse_chat(recorded, REQ), _streamed(raw)):
        [image] = [p for p in r.parts if isinstance(p, Attachment)]
        assert (image.type, image.media_type) == ("image", "image/jpeg")
        assert image.data == base64.b64decode(inline["data"]) and image.data[:3] == b"\xff\xd8\xff"
        assert r.usage.output_tokens == 1290


def test_a_generated_image_goes_back_to_gemini_in_the_model_turn():
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 8
    r = _whole(_chunk([{"text": "Here:"}, {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png)
                                                          .decode()}, "thoughtSignature": "c2ln"}],
                      finishReason="STOP"))
    history = [Message.user("draw a cat"), r.to_message(), Message.user("make it blue")]
    contents = build_contents(adapter(), history, vertex=False, model="gemini-2.5-flash-image")
    assert contents[1] == {"role": "model", "parts": [
        {"text": "Here:"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}, "thoughtSignature": "c2ln"}]}


def test_safety_ratings_of_a_safety_stop_are_kept_whole_and_streamed():
    recorded = cassette(SAFETY)[0].response
    ratings = json.loads(recorded.body)["candidates"][0]["safetyRatings"]
    for r in (adapter().parse_chat(recorded, REQ), _streamed(json.loads(recorded.body))):
        assert r.finish_reason == "content_filter" and r.metadata.raw_finish_reason == "SAFETY"
        assert r.metadata.extra["safety_ratings"] == ratings
        assert [x["category"] for x in r.metadata.extra["safety_ratings"] if x.get("blocked")] == [
            "HARM_CATEGORY_HATE_SPEECH"]


def test_a_blocked_prompt_names_the_blocking_category():
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}, "usageMetadata": USAGE}
    with pytest.raises(ContentFilterError, match=r"\(SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT\)"):
        _whole(body)


def test_the_extras_survive_the_gateway_cache():
    r = _whole(_chunk([{"text": "Spain won Euro 2024"},
                       {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"\x89PNG").decode()}}],
                      finishReason="STOP", groundingMetadata=GROUNDING))
    json.dumps(r.metadata.extra)   # a store or a log can write them
    back = codec.loads(codec.dumps(codec.CachedAnswer(r))).response
    assert back.parts == r.parts and back.metadata.extra == r.metadata.extra
