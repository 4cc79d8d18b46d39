"""Conformance cases for the native Anthropic Messages adapter.

Each claimed capability points at a recording whose response proves it. Streamed function tool
use and streamed structured output have no recording (the recorded streams only use server-side
tools and no streamed ``output_config``), so those two use synthetic cassettes built from the
documented SSE format. Embeddings, image generation and audio input are not claimed.
"""

from __future__ import annotations

from cloverleaf._capabilities import Capability
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
)
from tests.conformance.case import Case

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
OUT = "pydantic-ai/tests/models/anthropic/cassettes/test_output/"
SYN = "../synthetic/anthropic/"

_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"},
                                          "population": {"type": "integer"}},
         "required": ["city", "country", "population"], "additionalProperties": False}
_ENTITY = Tool("retrieve_entity_info", "Get the knowledge about the given entity.", {
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
    "additionalProperties": False})
_WEATHER = Tool("get_weather", "Get the current weather in a given location", {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})

CASES: list[Case] = [
    Case("anthropic", Capability.TEXT, REC + "test_anthropic_model_instructions.yaml",
         ChatRequest("claude-3-opus-latest", [Message.system("You are a helpful assistant.\n\n"),
                                              Message.user("What is the capital of France?")], max_tokens=4096),
         interaction=0,
         expect={"content_contains": "Paris", "finish_reason": "stop", "input_tokens": 20, "output_tokens": 10}),
    Case("anthropic", Capability.TOOLS, REC + "test_multiple_parallel_tool_calls.yaml",
         ChatRequest("claude-haiku-4-5", [Message.user("Alice, Bob, Charlie and Daisy are a family. Who is the youngest?")],
                     tools=[_ENTITY], tool_choice=ToolChoice("auto"), max_tokens=4096),
         interaction=0,
         expect={"tool_names": ["retrieve_entity_info"] * 4, "finish_reason": "tool_calls", "input_tokens": 423,
                 "output_tokens": 202}),
    Case("anthropic", Capability.STRUCTURED, OUT + "test_no_tools_native_output_strict_true.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user("Tell me about London")], max_tokens=4096,
                     response_format=ResponseFormat(schema=_CITY)),
         interaction=0,
         expect={"content_contains": '"city":"London"', "finish_reason": "stop", "input_tokens": 196,
                 "output_tokens": 19}),
    Case("anthropic", Capability.STREAMING, REC + "test_request_stream_fallback_for_high_max_tokens.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user("What is 1+1? Answer with just the number.")],
                     max_tokens=32000, stream=True),
         interaction=0,
         expect={"content_contains": "2", "finish_reason": "stop", "input_tokens": 20, "output_tokens": 5}),
    Case("anthropic", Capability.STREAM_TOOLS, SYN + "stream_tool_use.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user("What is the weather like in San Francisco?")],
                     tools=[_WEATHER], stream=True),
         interaction=0,
         expect={"tool_names": ["get_weather"], "finish_reason": "tool_calls", "input_tokens": 472,
                 "output_tokens": 89},
         synthetic="no recorded stream calls a client-side tool (only server tools); built from the documented "
                   "tool-use SSE example"),
    Case("anthropic", Capability.STREAM_STRUCTURED, SYN + "stream_structured_output.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user("Tell me about London")], stream=True,
                     response_format=ResponseFormat(schema=_CITY)),
         interaction=0,
         expect={"content_contains": '"population":9002488', "finish_reason": "stop", "input_tokens": 196,
                 "output_tokens": 19},
         synthetic="no recorded stream uses output_config.format; the non-streamed recording's answer, streamed as "
                   "text_delta events in the documented SSE format"),
    Case("anthropic", Capability.IMAGE_INPUT, REC + "test_image_url_input.yaml",
         ChatRequest("claude-haiku-4-5", [Message.user([
             Text("What is this vegetable?"),
             Attachment(type="image", media_type="image/jpeg", fetch="provider",
                        url="https://t3.ftcdn.net/jpg/00/85/79/92/360_F_85799278_0BBGV9OAdQDTLnKwAPBCcg1J7QtiieJY.jpg"),
         ])], max_tokens=4096),
         interaction=0,
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 296, "output_tokens": 91}),
    Case("anthropic", Capability.PDF_INPUT, REC + "test_document_url_input.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user([
             Text("What is the main content on this document?"),
             Attachment(type="pdf", media_type="application/pdf", fetch="provider",
                        url="https://pdfobject.com/pdf/sample.pdf"),
         ])], max_tokens=4096),
         interaction=0,
         expect={"content_contains": "Lorem ipsum", "finish_reason": "stop", "input_tokens": 2682,
                 "output_tokens": 101}),
    Case("anthropic", Capability.REASONING, REC + "test_anthropic_model_thinking_part.yaml",
         ChatRequest("claude-sonnet-4-5", [Message.user("How do I cross the street?")], max_tokens=4096,
                     reasoning=ReasoningConfig(budget_tokens=1024)),
         interaction=0,
         expect={"reasoning": True, "content_contains": "cross the street safely", "finish_reason": "stop",
                 "input_tokens": 43, "output_tokens": 321}),
]
