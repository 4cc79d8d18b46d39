"""Conformance cases for the OpenAI Responses adapter (``openai-responses`` row).

Every capability points at a recorded exchange with ``/v1/responses`` except streamed
structured output: no recorded Responses stream sends ``text.format``, so that case uses a
synthetic stream built from the recorded text-stream events and the OpenAPI
``ResponseStreamEvent`` schema. Embeddings, image generation and audio input are not part of
this API adapter (the ``openai`` row serves the first two; the Responses API takes no audio).
"""

from __future__ import annotations

import base64

from cloverleaf._capabilities import Capability
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
)
from tests.conformance.case import Case
from tests.wire import cassette

R = "pydantic-ai/tests/models/cassettes/test_openai_responses/"
OA = "pydantic-ai/tests/models/cassettes/test_openai/"
SYN = "../synthetic/openai_responses/"
ROW = "openai-responses"

_CAPITAL = Tool("get_capital", parameters={"additionalProperties": False,
                                           "properties": {"country": {"type": "string"}},
                                           "required": ["country"], "type": "object"}, strict=True)
_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "additionalProperties": False}
_PAYMENT = {"additionalProperties": False, "required": ["amount"], "type": "object", "properties": {"amount": {
    "anyOf": [{"type": "number"}, {"description": "pattern=^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$", "type": "string"}]}}}


def _inline(path: str, field: str) -> bytes:
    """The attachment bytes the recorded request carried (so the case request is the real one)."""
    part = next(p for p in cassette(path)[-1].request_json["input"][0]["content"] if field in p)
    return base64.b64decode(part[field].split(",", 1)[1])


_IMAGE = OA + "test_image_url_input_force_download_response_api.yaml"
_PDF = R + "test_openai_responses_document_as_binary_content_input.yaml"
_STREAM = R + "test_openai_responses_stream.yaml"
_FC_ID = "fc_67e554a1de488191af0831d35cbe082e0794405d35281ae2"  # this old recording used the item id as call id

CASES: list[Case] = [
    Case(ROW, Capability.TEXT, R + "test_openai_responses_model_simple_response.yaml",
         ChatRequest("gpt-4o", [Message.user("What is the capital of France?")]),
         expect={"content_contains": "Paris", "finish_reason": "stop", "input_tokens": 14, "output_tokens": 8}),
    Case(ROW, Capability.TOOLS, R + "test_openai_responses_model_simple_response_with_tool_call.yaml",
         ChatRequest("gpt-4o", [Message.user("What is the capital of PotatoLand?")], tools=[_CAPITAL],
                     tool_choice=ToolChoice("auto")),
         interaction=0,
         expect={"tool_names": ["get_capital"], "finish_reason": "tool_calls", "input_tokens": 40,
                 "output_tokens": 18}),
    Case(ROW, Capability.STRUCTURED, OA + "test_openai_responses_native_output_decimal_strict.yaml",
         ChatRequest("gpt-5.4-mini", [Message.user("Return exactly this payment amount: 12.34")],
                     response_format=ResponseFormat(schema=_PAYMENT, name="Payment")),
         expect={"content_contains": '{"amount":12.34}', "finish_reason": "stop", "input_tokens": 72,
                 "output_tokens": 14}),
    Case(ROW, Capability.STREAMING, _STREAM,
         ChatRequest("gpt-4o", [
             Message.user("What is the capital of France?"),
             Message.assistant([ToolCall(_FC_ID, "get_capital", {"country": "France"},
                                         raw_arguments='{"country":"France"}')]),
             Message.tool(_FC_ID, "Paris")], tools=[_CAPITAL], tool_choice=ToolChoice("auto"), stream=True),
         interaction=1,
         expect={"content_contains": "Paris", "finish_reason": "stop", "input_tokens": 278, "output_tokens": 9}),
    Case(ROW, Capability.STREAM_TOOLS, _STREAM,
         ChatRequest("gpt-4o", [Message.user("What is the capital of France?")], tools=[_CAPITAL],
                     tool_choice=ToolChoice("auto"), stream=True),
         interaction=0,
         expect={"tool_names": ["get_capital"], "finish_reason": "tool_calls", "input_tokens": 255,
                 "output_tokens": 16}),
    Case(ROW, Capability.STREAM_STRUCTURED, SYN + "stream_structured.yaml",
         ChatRequest("gpt-4o-mini", [Message.user("What is the largest city in Mexico?")], stream=True,
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 61,
                 "output_tokens": 12},
         synthetic="no recorded Responses stream sends text.format; events as in the recorded text streams"),
    Case(ROW, Capability.IMAGE_INPUT, _IMAGE,
         ChatRequest("gpt-4.1-nano", [Message.user([
             Text("What is this vegetable?"),
             Attachment(type="image", media_type="image/jpeg", data=_inline(_IMAGE, "image_url"))])]),
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 515, "output_tokens": 6}),
    Case(ROW, Capability.PDF_INPUT, _PDF,
         ChatRequest("gpt-4o", [Message.user([
             Text("What is in the document?"),
             Attachment(type="pdf", media_type="application/pdf", data=_inline(_PDF, "file_data"),
                        filename="filename.pdf")])]),
         expect={"content_contains": "Dummy PDF file", "finish_reason": "stop", "input_tokens": 51,
                 "output_tokens": 11}),
    Case(ROW, Capability.REASONING, R + "test_reasoning_summary_auto.yaml",
         ChatRequest("gpt-5.2", [
             Message.system("You are a helpful coding assistant."),
             Message.user("Write a Python function that calculates the factorial of a number. Think step by step.")],
             reasoning=ReasoningConfig(effort="high", summary=True)),
         expect={"reasoning": True, "content_contains": "factorial", "finish_reason": "stop", "input_tokens": 34,
                 "output_tokens": 226}),
    Case(ROW, Capability.REASONING, R + "test_openai_responses_thinking_part_iter.yaml",
         ChatRequest("o3-mini", [Message.user("How do I cross the street?")], stream=True,
                     reasoning=ReasoningConfig(effort="high", summary=True)),
         extra={"reasoning_summary": "detailed"},
         expect={"reasoning": True, "finish_reason": "stop", "input_tokens": 13, "output_tokens": 1680}),
]
