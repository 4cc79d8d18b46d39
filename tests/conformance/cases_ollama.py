"""Ollama's claimed capabilities, each proven on a recording (openllmetry) or, where none
exists (tools, thinking, structured output, images, /api/embed), on a fixture built from the
published API format (tests/fixtures/synthetic/ollama/, marked SYNTHETIC in its header).

Ollama does not claim image generation, PDF input or audio input: its native API takes
images only, and it has no image-generation endpoint.
"""

from __future__ import annotations

import base64

from cloverleaf._capabilities import Capability
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    EmbeddingRequest,
    Message,
    ReasoningConfig,
    ResponseFormat,
    Text,
    Tool,
)
from tests.conformance.case import Case

REC = "openllmetry/packages/opentelemetry-instrumentation-ollama/tests/cassettes/"
SYN = "../synthetic/ollama/"
SYNTHETIC = "no recording of this Ollama feature exists; built from shared/specs/ollama/openapi.yaml"

JOKE = [Message.user("Tell me a joke about OpenTelemetry")]
WEATHER_ASK = [Message.user("What is the weather today in Paris?")]
WEATHER = Tool("get_current_weather", "Get the current weather for a location", {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The location to get the weather for, e.g. San Francisco, CA"},
        "format": {"type": "string",
                   "description": "The format to return the weather in, e.g. 'celsius' or 'fahrenheit'",
                   "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location", "format"],
})
POPULATIONS = {"type": "object", "properties": {"countries": {"type": "array", "items": {
    "type": "object", "properties": {"country": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["country", "population"]}}}, "required": ["countries"]}
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAIB4iF7wAAAAABJRU5ErkJggg==")


def _chat(model: str, messages: list[Message], **kw: object) -> ChatRequest:
    return ChatRequest(model, list(messages), **kw)  # type: ignore[arg-type]


CASES: list[Case] = [
    Case("ollama", Capability.TEXT, REC + "test_chat/test_ollama_chat_legacy.yaml", _chat("llama3", JOKE),
         expect={"content_contains": "OpenTelemetry", "finish_reason": "stop", "input_tokens": 17,
                 "output_tokens": 66}),
    Case("ollama", Capability.TEXT,
         REC + "test_ollama_metrics/test_ollama_operation_duration_includes_model_attribute.yaml",
         _chat("gemma3:1b", [Message.user("Hello, this is a test for model attribute.")]),
         expect={"content_contains": "testing my model", "finish_reason": "stop", "input_tokens": 19,
                 "output_tokens": 104}),
    Case("ollama", Capability.STREAMING, REC + "test_chat/test_ollama_streaming_chat_legacy.yaml",
         _chat("llama3", JOKE, stream=True),
         expect={"content_contains": "Why did the OpenTelemetry agent go to therapy?", "finish_reason": "stop",
                 "input_tokens": 17, "output_tokens": 50}),
    Case("ollama", Capability.STREAMING, REC + "test_chat/test_ollama_async_streaming_chat_legacy.yaml",
         _chat("llama3", JOKE, stream=True),
         expect={"finish_reason": "stop", "input_tokens": 17, "output_tokens": 63}),
    Case("ollama", Capability.TOOLS, SYN + "chat_tools.yaml", _chat("qwen3", WEATHER_ASK, tools=[WEATHER]),
         expect={"tool_names": ["get_current_weather"], "finish_reason": "tool_calls", "input_tokens": 213,
                 "output_tokens": 28}, synthetic=SYNTHETIC),
    Case("ollama", Capability.STREAM_TOOLS, SYN + "chat_tools_stream.yaml",
         _chat("qwen3", WEATHER_ASK, tools=[WEATHER], stream=True),
         expect={"tool_names": ["get_current_weather"], "finish_reason": "tool_calls", "input_tokens": 213,
                 "output_tokens": 28}, synthetic=SYNTHETIC),
    Case("ollama", Capability.STRUCTURED, SYN + "chat_structured.yaml",
         _chat("gemma3", [Message.user("What are the populations of the United States and Canada?")],
               response_format=ResponseFormat(schema=POPULATIONS)),
         expect={"content_contains": '"country": "Canada"', "finish_reason": "stop", "input_tokens": 23,
                 "output_tokens": 41}, synthetic=SYNTHETIC),
    Case("ollama", Capability.STREAM_STRUCTURED, SYN + "chat_structured_stream.yaml",
         _chat("gemma3", [Message.user("What are the populations of the United States and Canada?")],
               response_format=ResponseFormat(schema=POPULATIONS), stream=True),
         expect={"content_contains": '"country": "Canada"', "finish_reason": "stop", "input_tokens": 23,
                 "output_tokens": 41}, synthetic=SYNTHETIC),
    Case("ollama", Capability.REASONING, SYN + "chat_thinking.yaml",
         _chat("qwen3", [Message.user("What is 1+1?")], reasoning=ReasoningConfig()),
         expect={"reasoning": True, "content_contains": "1 + 1 = 2.", "finish_reason": "stop"},
         synthetic=SYNTHETIC),
    Case("ollama", Capability.REASONING, SYN + "chat_thinking_stream.yaml",
         _chat("qwen3", [Message.user("What is 1+1?")], reasoning=ReasoningConfig(), stream=True),
         expect={"reasoning": True, "content_contains": "1 + 1 = 2.", "finish_reason": "stop"},
         synthetic=SYNTHETIC),
    Case("ollama", Capability.IMAGE_INPUT, SYN + "chat_image.yaml",
         _chat("gemma3", [Message.user([
             Text("What is in this image?"),
             Attachment(type="image", media_type="image/png", data=PIXEL)])]),
         expect={"content_contains": "pixel", "finish_reason": "stop", "input_tokens": 270, "output_tokens": 12},
         synthetic=SYNTHETIC),
    Case("ollama", Capability.EMBEDDINGS, REC + "test_embeddings/test_ollama_embeddings_legacy.yaml",
         EmbeddingRequest("llama3", ["all-minilm"]), expect={"vectors": 1}),
    Case("ollama", Capability.EMBEDDINGS, SYN + "embed.yaml",
         EmbeddingRequest("embeddinggemma", ["Why is the sky blue?", "Why is the grass green?"]),
         expect={"vectors": 2, "input_tokens": 16}, synthetic=SYNTHETIC),
]
