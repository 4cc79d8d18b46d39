"""Conformance cases for Groq (an ``openai``-kind row). All recorded (pydantic-ai test_groq).

Groq's json_schema structured outputs do not stream, so ``stream_structured`` is not claimed.
"""

from __future__ import annotations

from cloverleaf._capabilities import Capability
from cloverleaf._types import Attachment, ChatRequest, Message, ResponseFormat, Text, Tool, ToolChoice
from tests.conformance.case import Case
from tests.wire import cassette

GQ = "pydantic-ai/tests/models/cassettes/test_groq/"
_TOOL = Tool("get_something_by_name", parameters={"additionalProperties": False, "required": ["name"],
                                                  "properties": {"name": {"type": "string"}}, "type": "object"})
_CITY = {"additionalProperties": False, "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "type": "object"}
_ASK = ("Please call the \"get_something_by_name\" tool with non-existent parameters to test error handling; "
        "on the second try you can use valid args")
_IMAGE_URL = "https://t3.ftcdn.net/jpg/00/85/79/92/360_F_85799278_0BBGV9OAdQDTLnKwAPBCcg1J7QtiieJY.jpg"
_THINK = cassette(GQ + "test_groq_model_thinking_part.yaml")[1].request_json["messages"]

CASES: list[Case] = [
    Case("groq", Capability.TEXT, GQ + "test_groq_model_instructions.yaml",
         ChatRequest("llama-3.3-70b-versatile", [Message.system("You are a helpful assistant."),
                                                 Message.user("What is the capital of France?")]),
         expect={"content_contains": "Paris", "finish_reason": "stop", "input_tokens": 48, "output_tokens": 8}),
    Case("groq", Capability.TOOLS, GQ + "test_tool_use_failed_error.yaml",
         ChatRequest("openai/gpt-oss-120b", [Message.system("Be concise. Never use pretty double quotes, just regular ones."),
                                             Message.user(_ASK)], tools=[_TOOL], tool_choice=ToolChoice("auto")),
         interaction=1,
         expect={"tool_names": ["get_something_by_name"], "finish_reason": "tool_calls", "input_tokens": 301,
                 "output_tokens": 52}),
    Case("groq", Capability.STRUCTURED, GQ + "test_groq_native_output.yaml",
         ChatRequest("openai/gpt-oss-120b", [Message.user("What is the largest city in Mexico?")],
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"city":"Mexico City"', "finish_reason": "stop", "input_tokens": 178,
                 "output_tokens": 94}),
    Case("groq", Capability.STREAMING, GQ + "test_tool_use_failed_error_streaming.yaml",
         ChatRequest("openai/gpt-oss-120b", [Message.system("Be concise. Never use pretty double quotes, just regular ones."),
                                             Message.user(_ASK)], tools=[_TOOL], tool_choice=ToolChoice("auto"),
                     stream=True),
         interaction=2,
         expect={"content_contains": "valid call", "finish_reason": "stop", "input_tokens": 339, "output_tokens": 58}),
    Case("groq", Capability.STREAM_TOOLS, GQ + "test_tool_use_failed_error_streaming.yaml",
         ChatRequest("openai/gpt-oss-120b", [Message.system("Be concise. Never use pretty double quotes, just regular ones."),
                                             Message.user(_ASK)], tools=[_TOOL], tool_choice=ToolChoice("auto"),
                     stream=True),
         interaction=1,
         expect={"tool_names": ["get_something_by_name"], "finish_reason": "tool_calls", "input_tokens": 304,
                 "output_tokens": 49, "reasoning": True}),
    Case("groq", Capability.IMAGE_INPUT, GQ + "test_image_url_input.yaml",
         ChatRequest("meta-llama/llama-4-scout-17b-16e-instruct", [Message.user([
             Text("What is the name of this fruit?"), Attachment(type="image", url=_IMAGE_URL, fetch="provider")])]),
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 749, "output_tokens": 107}),
    Case("groq", Capability.REASONING, GQ + "test_groq_model_thinking_part.yaml",
         ChatRequest("deepseek-r1-distill-llama-70b", [
             Message.system(_THINK[0]["content"]), Message.user(_THINK[1]["content"]),
             Message.assistant(_THINK[2]["content"]), Message.user(_THINK[3]["content"])],
             extra_body={"reasoning_format": "parsed"}),
         interaction=1,
         expect={"reasoning": True, "finish_reason": "stop", "input_tokens": 524, "output_tokens": 1590}),
]
