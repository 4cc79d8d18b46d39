"""Conformance cases for OpenRouter (an ``openai``-kind row; model ids keep their inner slash).

Recorded: text, tools, streaming, image input (inline, with cache_control), PDF input (by
URL), reasoning (signed, via ``reasoning_details``). No recording sends ``response_format``
or streams a client tool call, so structured output and the two streamed variants use
synthetic cassettes in the recorded OpenRouter chunk format (keep-alive comments included).
"""

from __future__ import annotations

import base64

from cloverleaf._capabilities import Capability
from cloverleaf._types import Attachment, ChatRequest, Message, ReasoningConfig, ResponseFormat, Text, Tool, ToolChoice
from tests.conformance.case import Case
from tests.wire import cassette

OR = "pydantic-ai/tests/models/cassettes/test_openrouter/"
CACHE = "pydantic-ai/tests/models/openrouter/cassettes/test_cache/"
SYN = "../synthetic/openrouter/"
_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "additionalProperties": False}
_WEATHER = Tool("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                           "required": ["city"]})
_DIVIDE = Tool("divide", "Divide two numbers.", cassette(OR + "test_openrouter_tool_calling.yaml")[0]
               .request_json["tools"][0]["function"]["parameters"])
_IMG_PART = cassette(CACHE + "test_openrouter_cache_point_image_e2e.yaml")[0].request_json["messages"][0]["content"][0]
_PDF_URL = "https://www.w3.org/WAI/ER/tests/xhtml/testfiles/resources/pdf/dummy.pdf"

CASES: list[Case] = [
    Case("openrouter", Capability.TEXT, OR + "test_openrouter_preserve_reasoning_block.yaml",
         ChatRequest("openai/gpt-5-mini", [Message.user("Hello!")]),
         interaction=0,
         expect={"content_contains": "How can I help you today?", "finish_reason": "stop", "input_tokens": 8,
                 "output_tokens": 15}),
    Case("openrouter", Capability.TOOLS, OR + "test_openrouter_tool_calling.yaml",
         ChatRequest("mistralai/mistral-small", [Message.user("What is 123 / 456?")], tools=[_DIVIDE],
                     tool_choice=ToolChoice("auto")),
         expect={"tool_names": ["divide"], "finish_reason": "tool_calls", "input_tokens": 134, "output_tokens": 43}),
    Case("openrouter", Capability.STREAMING, OR + "test_openrouter_streaming_reasoning.yaml",
         ChatRequest("anthropic/claude-sonnet-4.5", [Message.user("What is 2+2?")], stream=True,
                     extra_body={"reasoning": {"enabled": True}}),
         expect={"content_contains": "2 + 2 = 4", "finish_reason": "stop", "input_tokens": 43, "output_tokens": 36,
                 "reasoning": True}),
    Case("openrouter", Capability.REASONING, OR + "test_openrouter_thinking_high_emits_effort_high.yaml",
         ChatRequest("anthropic/claude-sonnet-4.5", [Message.user("Reply with the single word: ok")],
                     reasoning=ReasoningConfig(effort="high")),
         expect={"reasoning": True, "content_contains": "ok", "finish_reason": "stop", "input_tokens": 43,
                 "output_tokens": 53}),
    Case("openrouter", Capability.IMAGE_INPUT, CACHE + "test_openrouter_cache_point_image_e2e.yaml",
         ChatRequest("anthropic/claude-sonnet-4.6", [Message.user([
             Attachment(type="image", media_type="image/jpeg", cache_control=_IMG_PART["cache_control"],
                        data=base64.b64decode(_IMG_PART["image_url"]["url"].split(",", 1)[1])),
             Text("What is in this image? Answer in one word.")])]),
         expect={"content_contains": "Kiwi", "finish_reason": "stop", "input_tokens": 484, "output_tokens": 9}),
    Case("openrouter", Capability.PDF_INPUT, OR + "test_openrouter_document_url_no_force_download.yaml",
         ChatRequest("openai/gpt-4.1-mini", [Message.user([
             Text("What is the main content of this document?"),
             Attachment(type="pdf", url=_PDF_URL, fetch="provider", filename="filename.pdf")])]),
         expect={"content_contains": "placeholder", "finish_reason": "stop", "input_tokens": 23, "output_tokens": 48}),
    Case("openrouter", Capability.STRUCTURED, SYN + "structured.yaml",
         ChatRequest("openai/gpt-4o-mini", [Message.user("What is the largest city in Mexico?")],
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"city":"Mexico City"', "finish_reason": "stop", "input_tokens": 60,
                 "output_tokens": 12},
         synthetic="no recorded OpenRouter call sends response_format"),
    Case("openrouter", Capability.STREAM_TOOLS, SYN + "stream_tools.yaml",
         ChatRequest("openai/gpt-4o-mini", [Message.user("Weather in Paris?")], tools=[_WEATHER], stream=True),
         expect={"tool_names": ["get_weather"], "finish_reason": "tool_calls", "input_tokens": 70, "output_tokens": 15},
         synthetic="no recorded OpenRouter stream calls a client-side tool"),
    Case("openrouter", Capability.STREAM_STRUCTURED, SYN + "stream_structured.yaml",
         ChatRequest("openai/gpt-4o-mini", [Message.user("What is the largest city in Mexico?")], stream=True,
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 60, "output_tokens": 12},
         synthetic="no recorded OpenRouter stream sends response_format"),
]
