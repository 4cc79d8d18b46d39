"""Conformance cases for Azure OpenAI (crewAI and pydantic-ai recordings of real deployments).

Recorded: text, tools (parallel), structured output, streaming, streamed tools, image input,
reasoning (gpt-5-nano deployments report reasoning tokens; like OpenAI Chat Completions no
reasoning text comes back, so ``expect`` checks ``reasoning_tokens``). No recorded Azure
stream sends ``response_format`` and no Azure embeddings were recorded: those two use
synthetic cassettes in the recorded Azure formats. ``base_url`` is each recording's
deployment root.
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
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
)
from tests.conformance.case import Case
from tests.wire import cassette

CREW = "crewAI/lib/crewai/tests/cassettes/"
SYN = "../synthetic/azure/"
HOST = "https://fake-azure-endpoint.openai.azure.com/openai/deployments/"
_V = {"api_version": "2024-12-01-preview"}
_CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
         "required": ["city", "country"], "additionalProperties": False}

_STRUCT = CREW + "llms/azure/test_azure_agent_kickoff_structured_output_without_tools.yaml"
_STRUCT_REQ = cassette(_STRUCT)[0].request_json
_PARALLEL = CREW + "agents/TestAzureNativeToolCalling.test_azure_parallel_native_tool_calling_test_agent_kickoff.yaml"
_PARALLEL_REQ = cassette(_PARALLEL)[0].request_json
_PARALLEL_TOOLS = [Tool(t["function"]["name"], t["function"]["description"], t["function"]["parameters"])
                   for t in _PARALLEL_REQ["tools"]]
_STREAM_TOOL = CREW + "llms/TestAzureToolCallStreaming.test_azure_streaming_emits_tool_call_events.yaml"
_TEMP = cassette(_STREAM_TOOL)[0].request_json["tools"][0]["function"]
_IMAGE = CREW + "llms/TestAzureMultimodalIntegration.test_describe_image.yaml"
_IMAGE_URL = cassette(_IMAGE)[0].request_json["messages"][0]["content"][1]["image_url"]["url"]

CASES: list[Case] = [
    Case("azure", Capability.TEXT, CREW + "llms/azure/test_azure_async_with_system_message.yaml",
         ChatRequest("gpt-4o-mini", [Message.system("You are a helpful assistant."), Message.user("What is 2+2?")]),
         expect={"content_contains": "4", "finish_reason": "stop", "input_tokens": 24, "output_tokens": 9},
         base_url=HOST + "gpt-4o-mini", extra=_V),
    Case("azure", Capability.TOOLS, _PARALLEL,
         ChatRequest("gpt-5-nano", [Message.system(_PARALLEL_REQ["messages"][0]["content"]),
                                    Message.user(_PARALLEL_REQ["messages"][1]["content"])],
                     tools=_PARALLEL_TOOLS, tool_choice=ToolChoice("auto")),
         interaction=0,
         expect={"tool_names": ["parallel_local_search_one", "parallel_local_search_two",
                                "parallel_local_search_three"], "finish_reason": "tool_calls",
                 "input_tokens": 343, "output_tokens": 666},
         base_url=HOST + "gpt-5-nano", extra=_V),
    Case("azure", Capability.REASONING, _PARALLEL,
         ChatRequest("gpt-5-nano", [Message.system(_PARALLEL_REQ["messages"][0]["content"]),
                                    Message.user(_PARALLEL_REQ["messages"][1]["content"])],
                     tools=_PARALLEL_TOOLS, tool_choice=ToolChoice("auto")),
         interaction=0,
         expect={"finish_reason": "tool_calls", "input_tokens": 343, "output_tokens": 666, "reasoning_tokens": 576},
         base_url=HOST + "gpt-5-nano", extra=_V),
    Case("azure", Capability.STRUCTURED, _STRUCT,
         ChatRequest("gpt-4o-mini", [Message.system(_STRUCT_REQ["messages"][0]["content"]),
                                     Message.user(_STRUCT_REQ["messages"][1]["content"])],
                     stop=_STRUCT_REQ["stop"],
                     response_format=ResponseFormat(schema=_STRUCT_REQ["response_format"]["json_schema"]["schema"],
                                                    name="AnalysisResult")),
         interaction=0,
         expect={"content_contains": '"topic":"Benefits of Remote Work"', "finish_reason": "stop",
                 "input_tokens": 160, "output_tokens": 127},
         base_url=HOST + "gpt-4o-mini", extra=_V),
    Case("azure", Capability.STREAMING, CREW + "llms/azure/test_azure_streaming_completion.yaml",
         ChatRequest("gpt-4o-mini", [Message.user("Say hello")], stream=True),
         expect={"content_contains": "Hello!", "finish_reason": "stop", "input_tokens": 9, "output_tokens": 10},
         base_url=HOST + "gpt-4o-mini", extra=_V),
    Case("azure", Capability.STREAM_TOOLS, _STREAM_TOOL,
         ChatRequest("gpt-4o-mini", [Message.user("What is the temperature in San Francisco?")], stream=True,
                     tools=[Tool(_TEMP["name"], _TEMP["description"], _TEMP["parameters"])],
                     tool_choice=ToolChoice("auto")),
         expect={"tool_names": ["get_current_temperature"], "finish_reason": "tool_calls", "input_tokens": 66,
                 "output_tokens": 17},
         base_url=HOST + "gpt-4o-mini", extra=_V),
    Case("azure", Capability.IMAGE_INPUT, _IMAGE,
         ChatRequest("gpt-4o", [Message.user([
             Text("Describe this image in one sentence. Be brief."),
             Attachment(type="image", media_type="image/png",
                        data=base64.b64decode(_IMAGE_URL.split(",", 1)[1]))])]),
         expect={"content_contains": "revenue", "finish_reason": "stop", "input_tokens": 442, "output_tokens": 27},
         base_url=HOST + "gpt-4o", extra={"api_version": "2024-08-01-preview"}),
    Case("azure", Capability.STREAM_STRUCTURED, SYN + "stream_structured.yaml",
         ChatRequest("gpt-4o-mini", [Message.user("What is the largest city in Mexico?")], stream=True,
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         expect={"content_contains": '"Mexico City"', "finish_reason": "stop", "input_tokens": 61, "output_tokens": 12},
         synthetic="no recorded Azure stream sends response_format", base_url=HOST + "gpt-4o-mini"),
    Case("azure", Capability.EMBEDDINGS, SYN + "embeddings.yaml",
         EmbeddingRequest("text-embedding-3-small", ["first", "second"]),
         expect={"vectors": 2, "input_tokens": 2},
         synthetic="no Azure embeddings were recorded", base_url=HOST + "text-embedding-3-small"),
    Case("azure", Capability.IMAGE_GENERATION, SYN + "images_dall_e_3.yaml",
         ImageRequest("dall-e-3", "A badger wearing a tuxedo", size="1024x1024"),
         expect={"images": 1},
         synthetic="no Azure image generation was recorded", base_url=HOST + "dall-e-3"),
]
