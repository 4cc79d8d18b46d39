"""Conformance cases for AWS Bedrock (Converse, ConverseStream, InvokeModel).

Every claimed capability points at a pydantic-ai recording, except image generation: no
Bedrock image call was recorded, so the two image cases use synthetic cassettes built from the
InvokeModel formats AWS documents for Stable Image Ultra and Titan Image Generator. Audio input
is not claimed (Converse takes no audio). ``extra`` carries a region and fixed keys so that
``build_*`` can sign without touching the environment.
"""

from __future__ import annotations

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

REC = "pydantic-ai/tests/models/cassettes/test_bedrock/"
EMB = "pydantic-ai/tests/cassettes/test_embeddings/TestBedrock."
SYN = "../synthetic/bedrock/"
EXTRA = {"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "conformance-secret"}

NOVA = "us.amazon.nova-micro-v1:0"
_TEMPERATURE = Tool("get_temperature", "Get the current temperature in a city.", {
    "additionalProperties": False, "properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"})
_CAPITAL = Tool("get_capital", "Get the capital of a country.", {
    "properties": {"country": {"description": "The country name.", "title": "Country", "type": "string"}},
    "required": ["country"], "type": "object", "additionalProperties": False})
_CITY_TEMPERATURE = Tool("get_temperature", "Get the temperature in a city.", {
    "properties": {"city": {"description": "The city name.", "title": "City", "type": "string"}},
    "required": ["city"], "type": "object", "additionalProperties": False})
_DATED_TEMPERATURE = Tool("temperature", "<summary>Get the temperature in a city on a specific date.</summary>\n<returns>\n"
                          "<description>The temperature in degrees Celsius.</description>\n</returns>", {
    "additionalProperties": False, "properties": {"city": {"description": "The city name.", "type": "string"},
                                                  "date": {"description": "The date.", "format": "date", "type": "string"}},
    "required": ["city", "date"], "type": "object"})
_FINAL = ResponseFormat(name="final_result", schema={
    "properties": {"temperature": {"type": "string"}, "date": {"format": "date", "type": "string"},
                   "city": {"type": "string"}}, "required": ["temperature", "date", "city"], "type": "object"})
_RESULT = ResponseFormat(name="final_result", schema={"properties": {"result": {"type": "number"}},
                                                      "required": ["result"], "type": "object"})
_STRUCTURED_HISTORY = [
    Message.system("You are a helpful chatbot."),
    Message.user("What was the temperature in London 1st January 2022?"),
    Message.assistant([ToolCall("tooluse_Mj06ft-ITJik1Otgpkc1uA", "temperature", {"date": "2022-01-01", "city": "London"})]),
    Message.tool("tooluse_Mj06ft-ITJik1Otgpkc1uA", "30°C"),
    Message.assistant("\n<thinking> The tool has provided the temperature for London on 1st January 2022, which was "
                      "30°C. I will now provide this information to the user.</thinking>\nThe temperature in London on "
                      "1st January 2022 was 30°C."),
    # pydantic-ai's retry prompt, verbatim from the recorded request
    Message.user(cassette(REC + "test_bedrock_model_structured_output.yaml")[2].request_json["messages"][4]["content"][0]["text"]),
]


def _downloaded(name: str) -> bytes:
    """The media file the recording's test downloaded before calling Bedrock (interaction 0)."""
    return cassette(REC + name)[0].response.body


CASES: list[Case] = [
    Case("bedrock", Capability.TEXT, REC + "test_bedrock_model.yaml",
         ChatRequest(NOVA, [Message.system("You are a chatbot."), Message.user("Hello!")]),
         interaction=0, extra=EXTRA,
         expect={"content_contains": "How can I assist you today?", "finish_reason": "stop", "input_tokens": 7,
                 "output_tokens": 30}),
    Case("bedrock", Capability.TOOLS, REC + "test_bedrock_moonshotai_tool_call.yaml",
         ChatRequest("moonshot.kimi-k2-thinking", [Message.system("You are a helpful chatbot. Use tools when helpful."),
                                                   Message.user("What is the temperature in London? Use the tool.")],
                     tools=[_TEMPERATURE], tool_choice=ToolChoice("auto")),
         interaction=0, extra=EXTRA,
         expect={"tool_names": ["get_temperature"], "finish_reason": "tool_calls", "input_tokens": 92,
                 "output_tokens": 75}),
    Case("bedrock", Capability.STRUCTURED, REC + "test_bedrock_model_structured_output.yaml",
         ChatRequest(NOVA, _STRUCTURED_HISTORY, tools=[_DATED_TEMPERATURE], response_format=_FINAL),
         interaction=2, extra=EXTRA,
         expect={"content_contains": '"temperature":"30°C"', "finish_reason": "stop", "input_tokens": 821,
                 "output_tokens": 31}),
    Case("bedrock", Capability.STREAMING, REC + "test_bedrock_model_stream.yaml",
         ChatRequest(NOVA, [Message.system("You are a helpful chatbot."), Message.user("What is the capital of France?")],
                     temperature=0.0, stream=True),
         interaction=0, extra=EXTRA,
         expect={"content_contains": "The capital of France is Paris.", "finish_reason": "stop", "input_tokens": 13,
                 "output_tokens": 82}),
    Case("bedrock", Capability.STREAM_TOOLS, REC + "test_bedrock_model_iter_stream.yaml",
         ChatRequest(NOVA, [Message.system("You are a helpful chatbot."),
                            Message.user("What is the temperature of the capital of France?")],
                     tools=[_CAPITAL, _CITY_TEMPERATURE], top_p=0.5, stream=True),
         interaction=0, extra=EXTRA,
         expect={"tool_names": ["get_temperature"], "finish_reason": "tool_calls", "input_tokens": 471,
                 "output_tokens": 91}),
    Case("bedrock", Capability.STREAM_STRUCTURED, REC + "test_bedrock_model_code_execution_tool_stream.yaml",
         ChatRequest("us.amazon.nova-2-lite-v1:0", [Message.system("You are a helpful chatbot."),
                                                    Message.user("What is 1234 * 5678?")],
                     response_format=_RESULT, stream=True),
         interaction=0, extra=EXTRA,
         expect={"content_contains": '{"result":7006652.0}', "finish_reason": "stop", "input_tokens": 1002,
                 "output_tokens": 59}),
    Case("bedrock", Capability.EMBEDDINGS, EMB + "test_cohere_v4_batch_documents.yaml",
         EmbeddingRequest("cohere.embed-v4:0", ["hello", "world"], input_type="document",
                          extra_body={"truncate": "NONE"}),
         interaction=0, extra=EXTRA, expect={"vectors": 2, "input_tokens": 2}),
    Case("bedrock", Capability.EMBEDDINGS, EMB + "test_titan_v1_minimal.yaml",
         EmbeddingRequest("amazon.titan-embed-text-v1", ["Hello, world!"]),
         interaction=0, extra=EXTRA, expect={"vectors": 1, "input_tokens": 4}),
    Case("bedrock", Capability.IMAGE_GENERATION, SYN + "stability_image_ultra.yaml",
         ImageRequest("stability.stable-image-ultra-v1:1", "A red square", size="1024x1024"),
         interaction=0, extra={**EXTRA, "region": "us-west-2"}, expect={"images": 1},
         synthetic="no Bedrock image generation was recorded; built from the Stable Image Ultra InvokeModel "
                   "format AWS documents (1x1 PNG)"),
    Case("bedrock", Capability.IMAGE_GENERATION, SYN + "titan_image_generator.yaml",
         ImageRequest("amazon.titan-image-generator-v2:0", "Two squares", n=2, quality="standard"),
         interaction=0, extra=EXTRA, expect={"images": 2},
         synthetic="no Bedrock image generation was recorded; built from the Titan Image Generator TEXT_IMAGE "
                   "format AWS documents (1x1 PNGs)"),
    Case("bedrock", Capability.IMAGE_INPUT, REC + "test_image_url_input.yaml",
         ChatRequest("us.amazon.nova-pro-v1:0", [
             Message.system("You are a helpful chatbot."),
             Message.user([Text("What is this vegetable?"),
                           Attachment(type="image", media_type="image/jpeg",
                                      data=_downloaded("test_image_url_input.yaml"))])]),
         interaction=1, extra=EXTRA,
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 1837, "output_tokens": 82}),
    Case("bedrock", Capability.PDF_INPUT, REC + "test_document_url_input.yaml",
         ChatRequest("anthropic.claude-v2", [
             Message.system("You are a helpful chatbot."),
             Message.user([Text("What is the main content on this document?"),
                           Attachment(type="pdf", media_type="application/pdf",
                                      data=_downloaded("test_document_url_input.yaml"))])]),
         interaction=1, extra=EXTRA,
         expect={"content_contains": "Dummy PDF file", "finish_reason": "stop", "input_tokens": 68,
                 "output_tokens": 42}),
    Case("bedrock", Capability.REASONING, REC + "test_bedrock_model_thinking_part_anthropic.yaml",
         ChatRequest("us.anthropic.claude-sonnet-4-20250514-v1:0", [Message.user("How do I cross the street?")],
                     reasoning=ReasoningConfig(budget_tokens=1024)),
         interaction=0, extra=EXTRA,
         expect={"reasoning": True, "content_contains": "crossing the street safely", "finish_reason": "stop",
                 "input_tokens": 42, "output_tokens": 313}),
    Case("bedrock", Capability.REASONING, REC + "test_bedrock_model_thinking_part_stream.yaml",
         ChatRequest("us.anthropic.claude-sonnet-4-20250514-v1:0", [Message.user("Hello")],
                     reasoning=ReasoningConfig(budget_tokens=1024), stream=True),
         interaction=0, extra=EXTRA,
         expect={"reasoning": True, "content_contains": "How can I help you today?", "finish_reason": "stop",
                 "input_tokens": 36, "output_tokens": 73}),
]
