"""Conformance cases for the OpenAI Chat Completions adapter (``openai`` row).

Every capability points at a recorded exchange except two with no recording in the shared
set: streamed structured output (no recorded stream sends ``response_format``) and image
generation (the Images API was never recorded); those use synthetic cassettes built from the
OpenAI OpenAPI spec and the recorded chunk format. ``reasoning`` here means the model takes
``reasoning_effort`` and reports reasoning tokens: Chat Completions never returns OpenAI
reasoning text, so ``expect`` checks ``reasoning_tokens`` instead of ``reasoning``.
"""

from __future__ import annotations

import base64

from cloverleaf._capabilities import Capability
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    EmbeddingRequest,
    ImageRequest,
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

OA = "pydantic-ai/tests/models/cassettes/test_openai/"
EMB = "pydantic-ai/tests/cassettes/test_embeddings/"
SYN = "../synthetic/openai/"

_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"]}
_COUNTRY = Tool("get_user_country", parameters={"additionalProperties": False, "properties": {}, "type": "object"})
_CAPITAL = Tool("get_capital", parameters={"additionalProperties": False, "properties": {"country": {"type": "string"}},
                                           "required": ["country"], "type": "object"}, strict=True)


def _inline(path: str, kind: str) -> bytes:
    """The attachment bytes the recorded request carried (so the case request is the real one)."""
    part = next(p for p in cassette(path)[-1].request_json["messages"][0]["content"] if p["type"] == kind)
    if kind == "input_audio":
        return base64.b64decode(part["input_audio"]["data"])
    url = part["image_url"]["url"] if kind == "image_url" else part["file"]["file_data"]
    return base64.b64decode(url.split(",", 1)[1])


_AUDIO = OA + "test_audio_as_binary_content_input.yaml"
_PDF = OA + "test_document_as_binary_content_input.yaml"
_IMAGE = OA + "test_image_url_input_force_download.yaml"

CASES: list[Case] = [
    Case("openai", Capability.TEXT, OA + "test_valid_response.yaml",
         ChatRequest("gpt-4o", [Message.user("What is the capital of France?")]),
         expect={"content_contains": "Paris", "finish_reason": "stop", "input_tokens": 14, "output_tokens": 7}),
    Case("openai", Capability.TOOLS, OA + "test_openai_tool_output.yaml",
         ChatRequest("gpt-4o", [Message.user("What is the largest city in the user country?")],
                     tools=[_COUNTRY], tool_choice=ToolChoice("required")),
         interaction=0,
         expect={"tool_names": ["get_user_country"], "finish_reason": "tool_calls", "input_tokens": 68,
                 "output_tokens": 12}),
    Case("openai", Capability.STRUCTURED, OA + "test_openai_native_output.yaml",
         ChatRequest("gpt-4o", [
             Message.user("What is the largest city in the user country?"),
             Message.assistant([ToolCall("call_PkRGedQNRFUzJp2R7dO7avWR", "get_user_country", {}, raw_arguments="{}")]),
             Message.tool("call_PkRGedQNRFUzJp2R7dO7avWR", "Mexico")],
             tools=[_COUNTRY], tool_choice=ToolChoice("auto"),
             response_format=ResponseFormat(schema=_CITY, name="result", strict=False)),
         interaction=1,
         expect={"content_contains": '"city":"Mexico City"', "finish_reason": "stop", "input_tokens": 92,
                 "output_tokens": 15}),
    Case("openai", Capability.STREAMING, OA + "test_run_stream_sync_streams_real_model.yaml",
         ChatRequest("gpt-4o-mini", [
             Message.user("What is the capital of the UK? Use the tool, then answer."),
             Message.assistant([ToolCall("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"},
                                         raw_arguments='{"country":"UK"}')]),
             Message.tool("call_ZR5UUuTt3pf61kjwAJIYdVMj", "London")],
             tools=[_CAPITAL], tool_choice=ToolChoice("auto"), stream=True),
         interaction=1,
         expect={"content_contains": "London", "finish_reason": "stop", "input_tokens": 78, "output_tokens": 9}),
    Case("openai", Capability.STREAM_TOOLS, OA + "test_run_stream_sync_streams_real_model.yaml",
         ChatRequest("gpt-4o-mini", [Message.user("What is the capital of the UK? Use the tool, then answer.")],
                     tools=[_CAPITAL], tool_choice=ToolChoice("auto"), stream=True),
         interaction=0,
         expect={"tool_names": ["get_capital"], "finish_reason": "tool_calls", "input_tokens": 53,
                 "output_tokens": 15}),
    Case("openai", Capability.STREAM_STRUCTURED, SYN + "stream_structured.yaml",
         ChatRequest("gpt-4o-mini", [Message.user("What is the largest city in Mexico?")], stream=True,
                     response_format=ResponseFormat(schema={**_CITY, "additionalProperties": False},
                                                    name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 61,
                 "output_tokens": 12},
         synthetic="no recorded OpenAI stream sends response_format; chunks in the recorded stream format"),
    Case("openai", Capability.EMBEDDINGS, EMB + "TestOpenAI.test_documents.yaml",
         EmbeddingRequest("text-embedding-3-small", list(cassette(EMB + "TestOpenAI.test_documents.yaml")[0]
                                                          .request_json["input"])),
         expect={"vectors": len(cassette(EMB + "TestOpenAI.test_documents.yaml")[0].request_json["input"])}),
    Case("openai", Capability.IMAGE_GENERATION, SYN + "images_gpt_image_1_b64.yaml",
         ImageRequest("gpt-image-1", "a cute baby sea otter", n=2, size="1024x1024"),
         expect={"images": 2, "input_tokens": 50, "output_tokens": 50},
         synthetic="the Images API was never recorded; the response is the OpenAPI spec's example"),
    Case("openai", Capability.IMAGE_INPUT, _IMAGE,
         ChatRequest("gpt-4.1-nano", [Message.user([
             Text("What is this vegetable?"),
             Attachment(type="image", media_type="image/jpeg", data=_inline(_IMAGE, "image_url"))])]),
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 515, "output_tokens": 6}),
    Case("openai", Capability.PDF_INPUT, _PDF,
         ChatRequest("gpt-4o", [Message.user([
             Text("What is the main content on this document?"),
             Attachment(type="pdf", media_type="application/pdf", data=_inline(_PDF, "file"),
                        filename="filename.pdf")])]),
         expect={"content_contains": "Dummy PDF file", "finish_reason": "stop", "input_tokens": 235,
                 "output_tokens": 13}),
    Case("openai", Capability.AUDIO_INPUT, _AUDIO,
         ChatRequest("gpt-4o-audio-preview", [Message.user([
             Text("Whose name is mentioned in the audio?"),
             Attachment(type="audio", media_type="audio/mpeg", data=_inline(_AUDIO, "input_audio"))])]),
         expect={"content_contains": "Marcelo", "finish_reason": "stop", "input_tokens": 64, "output_tokens": 9}),
    Case("openai", Capability.REASONING, OA + "test_openai_model_thinking_part.yaml",
         ChatRequest("o3-mini", [
             Message.user("How do I cross the street?"),
             Message.assistant(cassette(OA + "test_openai_model_thinking_part.yaml")[1]
                               .request_json["messages"][1]["content"]),
             Message.user("Considering the way to cross the street, analogously, how do I cross the river?")],
             reasoning=ReasoningConfig(effort="high")),
         interaction=1,
         expect={"content_contains": "river", "finish_reason": "stop", "input_tokens": 577, "output_tokens": 2320,
                 "reasoning_tokens": 1792}),
]
