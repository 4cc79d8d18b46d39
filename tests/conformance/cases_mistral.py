"""Conformance cases for Mistral (an ``openai``-kind row).

Recorded: text, tools, streaming, image input, reasoning (Magistral ``thinking`` parts).
No recording uses ``response_format``, streams a tool call or embeds, so structured output,
streamed tools, streamed structured output and embeddings use synthetic cassettes in the
recorded Mistral body/chunk format (usage arrives in the finish chunk).
"""

from __future__ import annotations

import base64

from cloverleaf._capabilities import Capability
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    EmbeddingRequest,
    Message,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
)
from tests.conformance.case import Case
from tests.wire import cassette

MI = "pydantic-ai/tests/models/cassettes/test_mistral/"
SYN = "../synthetic/mistral/"
_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "additionalProperties": False}
_WEATHER = Tool("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                           "required": ["city"]})
_GET_IMAGE = Tool("get_image", parameters={"additionalProperties": False, "properties": {}, "type": "object"})
_TOOL_REQ = cassette(MI + "test_image_as_binary_content_tool_response.yaml")[1].request_json["messages"]
_IMAGE = base64.b64decode(_TOOL_REQ[4]["content"][1]["image_url"]["url"].split(",", 1)[1])
_ASK = "What fruit is in the image you can get from the get_image tool? Call the tool."
_CACHE_SYSTEM = cassette(MI + "test_mistral_history_uses_prompt_cache.yaml")[0].request_json["messages"][0]["content"]

CASES: list[Case] = [
    Case("mistral", Capability.TEXT, MI + "test_mistral_history_uses_prompt_cache.yaml",
         ChatRequest("mistral-large-latest", [Message.system(_CACHE_SYSTEM),
                                              Message.user("Reply with exactly: cache probe one.")], top_p=1.0,
                     extra_body={"prompt_cache_key": "pydantic-ai-test-mistral-history-cache"}),
         interaction=0,
         expect={"content_contains": "cache probe one", "finish_reason": "stop", "input_tokens": 253,
                 "output_tokens": 5}),
    Case("mistral", Capability.TOOLS, MI + "test_image_as_binary_content_tool_response.yaml",
         ChatRequest("pixtral-12b-latest", [Message.user(_ASK)], tools=[_GET_IMAGE], tool_choice=ToolChoice("auto"),
                     top_p=1.0),
         interaction=0,
         expect={"tool_names": ["get_image"], "finish_reason": "tool_calls", "input_tokens": 65, "output_tokens": 16}),
    Case("mistral", Capability.IMAGE_INPUT, MI + "test_image_as_binary_content_tool_response.yaml",
         ChatRequest("pixtral-12b-latest", [
             Message.user(_ASK),
             Message.assistant([ToolCall("FI5qQGzDE", "get_image", {}, raw_arguments="{}")]),
             Message.tool("FI5qQGzDE", "See file 241a70"),
             Message.assistant("OK"),
             Message.user([Text("This is file 241a70:"), Attachment(type="image", media_type="image/jpeg", data=_IMAGE)])],
             tools=[_GET_IMAGE], tool_choice=ToolChoice("auto"), top_p=1.0),
         interaction=1,
         expect={"content_contains": "kiwi", "finish_reason": "stop", "input_tokens": 1540, "output_tokens": 54}),
    Case("mistral", Capability.STREAMING, MI + "test_mistral_model_thinking_part_iter.yaml",
         ChatRequest("magistral-medium-latest", [Message.user("How do I cross the street?")], stream=True),
         expect={"content_contains": "cross the street safely", "finish_reason": "stop", "input_tokens": 10,
                 "output_tokens": 232, "reasoning": True}),
    Case("mistral", Capability.REASONING, MI + "test_mistral_model_thinking_part_iter.yaml",
         ChatRequest("magistral-medium-latest", [Message.user("How do I cross the street?")], stream=True),
         expect={"reasoning": True, "finish_reason": "stop", "input_tokens": 10, "output_tokens": 232}),
    Case("mistral", Capability.STRUCTURED, SYN + "structured.yaml",
         ChatRequest("mistral-large-latest", [Message.user("What is the largest city in Mexico?")],
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 15, "output_tokens": 14},
         synthetic="no recorded Mistral call sends response_format"),
    Case("mistral", Capability.STREAM_TOOLS, SYN + "stream_tools.yaml",
         ChatRequest("mistral-large-latest", [Message.user("Weather in Paris?")], tools=[_WEATHER], stream=True),
         expect={"tool_names": ["get_weather"], "finish_reason": "tool_calls", "input_tokens": 70, "output_tokens": 20},
         synthetic="no recorded Mistral stream calls a tool"),
    Case("mistral", Capability.STREAM_STRUCTURED, SYN + "stream_structured.yaml",
         ChatRequest("mistral-large-latest", [Message.user("What is the largest city in Mexico?")], stream=True,
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 15, "output_tokens": 14},
         synthetic="no recorded Mistral stream sends response_format"),
    Case("mistral", Capability.EMBEDDINGS, SYN + "embeddings.yaml",
         EmbeddingRequest("mistral-embed", ["first", "second"]),
         expect={"vectors": 2, "input_tokens": 6},
         synthetic="no recorded Mistral embeddings; docs.mistral.ai /v1/embeddings shape"),
]
