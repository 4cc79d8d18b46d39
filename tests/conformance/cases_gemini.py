"""Conformance cases for the native Gemini API adapter.

Every claimed capability points at a real recording. Two of them were recorded on Vertex AI
(same request and response shapes, so ``base_url`` is the Vertex publisher root): audio input
(the only recorded audio reaches Gemini as a ``fileData`` URL, which Vertex fetches itself)
and image generation (``gemini-2.5-flash-image`` answering ``generateContent`` with an
``inlineData`` image; the Gemini API image recordings were too large to keep).
The image and PDF cases send the exact bytes the recording downloaded.
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

REC = "pydantic-ai/tests/models/cassettes/test_google/"
NEW = "pydantic-ai/tests/models/google/cassettes/"
EMB = "pydantic-ai/tests/cassettes/test_embeddings/"
VERTEX = "https://aiplatform.googleapis.com/v1beta1/projects/pydantic-ai/locations/global/publishers/google"

_CITY = {"type": "object", "title": "CityLocation", "description": "A city and its country.",
         "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"]}
_COUNTRY_TOOLS = [
    Tool("get_user_country", "", {"type": "object", "properties": {}}),
    Tool("final_result", "The final response which ends this conversation", {
        "type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]}),
]
_CAPITAL_TOOLS = [
    Tool("get_capital", "Get the capital of a country.", {
        "type": "object", "properties": {"country": {"type": "string", "description": "The country name."}},
        "required": ["country"]}),
    Tool("get_temperature", "Get the temperature in a city.", {
        "type": "object", "properties": {"city": {"type": "string", "description": "The city name."}},
        "required": ["city"]}),
]
_SYSTEM = Message.system("You are a helpful chatbot.")


def _downloaded(name: str) -> bytes:
    """The media file the recording's test downloaded before calling Gemini."""
    return cassette(REC + name)[0].response.body


_STRUCTURED_STREAM = NEW + "test_structured_output/test_native_output_with_function_tools_stream.yaml"


def _tool_turn_history() -> list[Message]:
    """User question, the model's recorded function call, and the recorded tool result."""
    user, model, result = cassette(_STRUCTURED_STREAM)[1].request_json["contents"]
    part = model["parts"][0]
    call = part["functionCall"]
    response = result["parts"][0]["functionResponse"]
    return [
        Message.user(user["parts"][0]["text"]),
        Message.assistant([ToolCall(call["id"], call["name"], call["args"],
                                    extra={"thoughtSignature": part["thoughtSignature"]})]),
        Message.tool(response["id"], response["response"]["return_value"], name=response["name"]),
    ]


CASES: list[Case] = [
    Case("gemini", Capability.TEXT, REC + "test_google_model.yaml",
         ChatRequest("gemini-2.5-flash", [Message.system("You are a chatbot."), Message.user("Hello!")]),
         interaction=0,
         expect={"content_contains": "How can I help you today?", "finish_reason": "stop", "input_tokens": 9,
                 "output_tokens": 43}),
    Case("gemini", Capability.TOOLS, REC + "test_google_tool_output.yaml",
         ChatRequest("gemini-2.0-flash", [Message.user("What is the largest city in the user country?")],
                     tools=_COUNTRY_TOOLS, tool_choice=ToolChoice("required")),
         interaction=0,
         expect={"tool_names": ["get_user_country"], "finish_reason": "tool_calls", "input_tokens": 33,
                 "output_tokens": 5}),
    Case("gemini", Capability.STRUCTURED, REC + "test_google_native_output.yaml",
         ChatRequest("gemini-2.0-flash", [Message.user("What is the largest city in Mexico?")],
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation")),
         interaction=0,
         expect={"content_contains": '"city": "Mexico City"', "finish_reason": "stop", "input_tokens": 8,
                 "output_tokens": 20}),
    Case("gemini", Capability.STREAMING, REC + "test_google_model_stream.yaml",
         ChatRequest("gemini-2.0-flash-exp", [_SYSTEM, Message.user("What is the capital of France?")],
                     temperature=0.0, stream=True),
         interaction=0,
         expect={"content_contains": "The capital of France is Paris.", "finish_reason": "stop",
                 "input_tokens": 13, "output_tokens": 8}),
    Case("gemini", Capability.STREAM_TOOLS, REC + "test_google_model_iter_stream.yaml",
         ChatRequest("gemini-2.0-flash", [_SYSTEM, Message.user("What is the temperature of the capital of France?")],
                     tools=_CAPITAL_TOOLS, stream=True),
         interaction=0,
         expect={"tool_names": ["get_capital"], "finish_reason": "tool_calls", "input_tokens": 52,
                 "output_tokens": 5}),
    Case("gemini", Capability.STREAM_STRUCTURED, _STRUCTURED_STREAM,
         # the second turn of a tool conversation: the recorded call (with its signature) and its result
         ChatRequest("gemini-3-flash-preview", _tool_turn_history(), tools=[_COUNTRY_TOOLS[0]],
                     response_format=ResponseFormat(schema=_CITY, name="CityLocation"), stream=True),
         interaction=1,
         expect={"content_contains": '"city": "Mexico City"', "finish_reason": "stop", "input_tokens": 128,
                 "output_tokens": 51}),
    Case("gemini", Capability.EMBEDDINGS, EMB + "TestGoogle.test_documents.yaml",
         EmbeddingRequest("gemini-embedding-2-preview", ["hello", "world"], input_type="document"),
         interaction=0,
         expect={"vectors": 2}),
    Case("gemini", Capability.IMAGE_GENERATION, REC + "test_google_vertexai_image_generation_with_output_format.yaml",
         ImageRequest("gemini-2.5-flash-image", "Generate an image of an axolotl."),
         interaction=0, base_url=VERTEX,
         expect={"images": 1}),
    Case("gemini", Capability.IMAGE_INPUT, REC + "test_google_model_image_url_input.yaml",
         ChatRequest("gemini-2.0-flash", [_SYSTEM, Message.user([
             Text("What is this vegetable?"),
             Attachment(type="image", media_type="image/jpeg", data=_downloaded("test_google_model_image_url_input.yaml")),
         ])]),
         interaction=1,
         expect={"content_contains": "potato", "finish_reason": "stop", "input_tokens": 1817, "output_tokens": 5}),
    Case("gemini", Capability.PDF_INPUT, REC + "test_google_model_document_url_input.yaml",
         ChatRequest("gemini-2.0-flash", [_SYSTEM, Message.user([
             Text("What is the main content on this document?"),
             Attachment(type="pdf", media_type="application/pdf",
                        data=_downloaded("test_google_model_document_url_input.yaml")),
         ])]),
         interaction=1,
         expect={"content_contains": "dummy PDF", "finish_reason": "stop", "input_tokens": 1305, "output_tokens": 11}),
    Case("gemini", Capability.AUDIO_INPUT, REC + "test_google_url_input[AudioUrl].yaml",
         ChatRequest("gemini-2.0-flash", [Message.user([
             Text("What is the main content of this URL?"),
             Attachment(type="audio", media_type="audio/wav", fetch="provider",
                        url="https://cdn.openai.com/API/docs/audio/alloy.wav"),
         ])]),
         interaction=0, base_url=VERTEX,
         expect={"content_contains": "sunrise in the east", "finish_reason": "stop", "input_tokens": 159,
                 "output_tokens": 22}),
    Case("gemini", Capability.REASONING, REC + "test_google_model_thinking_part.yaml",
         ChatRequest("gemini-3-pro-preview", [Message.system("You are a helpful assistant."),
                                              Message.user("How do I cross the street?")],
                     reasoning=ReasoningConfig(effort="high")),
         interaction=0,
         expect={"reasoning": True, "content_contains": "Crossing the street safely", "finish_reason": "stop",
                 "input_tokens": 29, "output_tokens": 1737}),
]
