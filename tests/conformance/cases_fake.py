"""The fake provider's capabilities (all of them), each proven on what FakeUpstream answers.

The fake has no real upstream to record, so its cassettes under tests/fixtures/synthetic/fake/
are FakeUpstream's own replies to these requests, written by
``python -m tests.providers.test_fake_cassettes``; that test module also fails if the fake's
answers ever drift from the stored bytes (the fake must stay deterministic).
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
)
from tests.conformance.case import Case

SYN = "../synthetic/fake/"
SYNTHETIC = "the fake provider has no real upstream: these are FakeUpstream's own deterministic replies"

WEATHER = Tool("get_weather", "Weather for a city", {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
})
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"], "additionalProperties": False}
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x02\x01\xe2!{\xc0\x00\x00\x00\x00IEND\xaeB`\x82")


def _ask(text: str, *attachments: Attachment) -> list[Message]:
    return [Message.user([Text(text), *attachments])] if attachments else [Message.user(text)]


def _case(cap: Capability, name: str, request: ChatRequest | EmbeddingRequest | ImageRequest,
          **expect: object) -> Case:
    return Case("fake", cap, SYN + name + ".yaml", request, expect=dict(expect), synthetic=SYNTHETIC)


CASES: list[Case] = [
    _case(Capability.TEXT, "text", ChatRequest("echo", _ask("Say hello to the tests")),
          content_contains="Say hello to the tests", finish_reason="stop", input_tokens=6, output_tokens=6),
    _case(Capability.STREAMING, "text_stream", ChatRequest("echo", _ask("Stream these five words"), stream=True),
          content_contains="Stream these five words", finish_reason="stop", input_tokens=6, output_tokens=6),
    _case(Capability.TOOLS, "tools", ChatRequest("chat", _ask("Weather in Oslo?"), tools=[WEATHER]),
          tool_names=["get_weather"], finish_reason="tool_calls"),
    _case(Capability.STREAM_TOOLS, "tools_stream",
          ChatRequest("chat", _ask("Weather in Oslo?"), tools=[WEATHER], stream=True),
          tool_names=["get_weather"], finish_reason="tool_calls"),
    _case(Capability.STRUCTURED, "structured",
          ChatRequest("chat", _ask("Invent a person"), response_format=ResponseFormat(schema=PERSON, name="person")),
          content_contains='"age": ', finish_reason="stop"),
    _case(Capability.STREAM_STRUCTURED, "structured_stream",
          ChatRequest("chat", _ask("Invent a person"), response_format=ResponseFormat(schema=PERSON, name="person"),
                      stream=True),
          content_contains='"age": ', finish_reason="stop"),
    _case(Capability.REASONING, "reasoning",
          ChatRequest("chat", _ask("Is 91 prime?"), reasoning=ReasoningConfig(effort="medium")),
          reasoning=True, finish_reason="stop"),
    _case(Capability.IMAGE_INPUT, "image_input",
          ChatRequest("echo", _ask("What is in this image?", Attachment(type="image", media_type="image/png",
                                                                         data=PNG))),
          content_contains="What is in this image?", finish_reason="stop"),
    _case(Capability.PDF_INPUT, "pdf_input",
          ChatRequest("echo", _ask("Summarise this PDF", Attachment(type="pdf", media_type="application/pdf",
                                                                     data=b"%PDF-1.4\n%%EOF\n"))),
          content_contains="Summarise this PDF", finish_reason="stop"),
    _case(Capability.AUDIO_INPUT, "audio_input",
          ChatRequest("echo", _ask("Transcribe this", Attachment(type="audio", media_type="audio/wav",
                                                                  data=b"RIFF\x24\x00\x00\x00WAVE"))),
          content_contains="Transcribe this", finish_reason="stop"),
    _case(Capability.EMBEDDINGS, "embeddings", EmbeddingRequest("embed", ["alpha", "beta gamma"]),
          vectors=2, input_tokens=5),
    _case(Capability.IMAGE_GENERATION, "image_generation",
          ImageRequest("image", "a lighthouse at dusk", size="256x256", response_format="b64_json"),
          images=1),
]
