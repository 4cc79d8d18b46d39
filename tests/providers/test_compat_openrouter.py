"""OpenRouter through the OpenAI adapter: model ids with a slash, reasoning (with
signatures), caching usage, PDFs by URL, 429s and the in-stream error."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cloverleaf._errors import InvalidRequestError, RateLimitError
from cloverleaf._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Message,
    Reasoning,
    ReasoningConfig,
    Text,
    Tool,
    ToolChoice,
)
from tests.providers._openai_replay import PA, adapter, config, interaction, recorded_chunks, replay_chat, replay_stream

OR = f"{PA}/test_openrouter"
CACHE = "pydantic-ai/tests/models/openrouter/cassettes/test_cache"


def test_model_id_keeps_its_inner_slash() -> None:
    req = ChatRequest("anthropic/claude-3.5-sonnet", [Message.user("hi")])
    http = adapter("openrouter").build_chat(req, config("openrouter"))
    assert http.url == "https://openrouter.ai/api/v1/chat/completions"
    assert http.json()["model"] == "anthropic/claude-3.5-sonnet"


def test_reasoning_request_and_signed_reasoning_answer() -> None:
    path = f"{OR}/test_openrouter_thinking_high_emits_effort_high.yaml"
    req = ChatRequest("anthropic/claude-sonnet-4.5", [Message.user("Reply with the single word: ok")],
                      reasoning=ReasoningConfig(effort="high"))
    built = adapter("openrouter").build_chat(req, config("openrouter")).json()
    recorded = interaction(path).request_json
    assert built["reasoning"] == recorded["reasoning"] == {"effort": "high", "enabled": True}
    assert built["messages"] == recorded["messages"]
    resp = replay_chat("openrouter", path, req)
    detail = interaction(path).response.json()["choices"][0]["message"]["reasoning_details"][0]
    [reasoning, text] = resp.parts
    assert isinstance(reasoning, Reasoning) and reasoning.text == detail["text"]
    assert reasoning.signature == detail["signature"]
    assert isinstance(text, Text) and text.text == "ok"
    upstream = interaction(path).response.json()["provider"]
    assert (resp.usage.reasoning_tokens, resp.metadata.extra["upstream_provider"]) == (48, upstream)


def test_reasoning_is_echoed_back_as_reasoning_details() -> None:
    history = [Message.user("q"), Message.assistant([Reasoning("thought", signature="sig"), Text("answer")]),
               Message.user("more")]
    msgs = adapter("openrouter").build_chat(ChatRequest("anthropic/claude-sonnet-4.5", history),
                                            config("openrouter")).json()["messages"]
    assert msgs[1] == {"role": "assistant", "content": "answer",
                       "reasoning_details": [{"type": "reasoning.text", "text": "thought", "signature": "sig"}]}
    # the plain OpenAI dialect drops reasoning from history (Chat Completions has no field for it)
    plain = adapter("openai").build_chat(ChatRequest("gpt-4o", history), config("openai")).json()["messages"]
    assert plain[1] == {"role": "assistant", "content": "answer"}


def test_another_vendors_reasoning_signature_is_not_forwarded() -> None:
    """After a fallback mid-conversation, a Gemini thoughtSignature or an Anthropic signature in the
    history would be forwarded by OpenRouter and refused upstream; OpenRouter's own and unnamed
    reasoning still go back."""
    history = [Message.user("q"),
               Message.assistant([Reasoning("from gemini", signature="Gemini-sig", provider="gemini"),
                                  Reasoning("from claude", signature="Claude-sig", provider="anthropic"),
                                  Reasoning("from openrouter", signature="or-sig", provider="openrouter"),
                                  Text("answer")]),
               Message.user("more")]
    msgs = adapter("openrouter").build_chat(ChatRequest("anthropic/claude-sonnet-4.5", history),
                                            config("openrouter")).json()["messages"]
    assert msgs[1]["reasoning_details"] == [{"type": "reasoning.text", "text": "from openrouter", "signature": "or-sig"}]


def test_tool_call() -> None:
    path = f"{OR}/test_openrouter_tool_calling.yaml"
    resp = replay_chat("openrouter", path, ChatRequest("mistralai/mistral-small", [Message.user("divide")],
                                                       tools=[Tool("divide")], tool_choice=ToolChoice("auto")))
    [call] = resp.tool_calls
    assert (call.name, call.arguments) == ("divide", {"numerator": 123, "denominator": 456, "on_inf": "infinity"})
    assert (resp.finish_reason, resp.usage.input_tokens, resp.usage.output_tokens) == ("tool_calls", 134, 43)


def test_pdf_by_url_is_sent_as_file_data() -> None:
    path = f"{OR}/test_openrouter_document_url_no_force_download.yaml"
    recorded = interaction(path).request_json
    url = recorded["messages"][0]["content"][1]["file"]["file_data"]
    req = ChatRequest("openai/gpt-4.1-mini", [Message.user([
        Text("What is the main content of this document?"),
        Attachment(type="pdf", url=url, fetch="provider", filename="filename.pdf")])])
    assert adapter("openrouter").build_chat(req, config("openrouter")).json()["messages"] == recorded["messages"]
    assert "placeholder" in replay_chat("openrouter", path, req).text


def test_cache_control_on_image_part_and_cache_usage() -> None:
    path = f"{CACHE}/test_openrouter_cache_point_image_e2e.yaml"
    recorded = interaction(path).request_json
    part = recorded["messages"][0]["content"][0]
    media, b64 = part["image_url"]["url"][5:].split(";base64,")
    import base64

    req = ChatRequest("anthropic/claude-sonnet-4.6", [Message.user([
        Attachment(type="image", media_type=media, data=base64.b64decode(b64), cache_control=part["cache_control"]),
        Text("What is in this image? Answer in one word.")])])
    assert adapter("openrouter").build_chat(req, config("openrouter")).json()["messages"] == recorded["messages"]
    assert replay_chat("openrouter", path, req).text == "**Kiwi**"
    second = replay_chat("openrouter", f"{CACHE}/test_openrouter_cache_messages_anthropic_real_api.yaml", req, 1)
    assert (second.usage.input_tokens, second.usage.cached_tokens, second.usage.cache_write_tokens) == (3329, 3211, 115)


def test_429_upstream_rate_limit() -> None:
    path = f"{OR}/test_openrouter_errors_raised.yaml"
    err = adapter("openrouter").parse_error(interaction(path, 0).response, "google/gemini-2.0-flash-exp:free")
    assert type(err) is RateLimitError and err.status == 429 and err.retryable
    assert "temporarily rate-limited upstream" in err.message  # metadata.raw is surfaced


def test_in_stream_error_chunk_raises() -> None:
    path = f"{OR}/test_openrouter_stream_error.yaml"
    req = ChatRequest("minimax/minimax-m2:free", [Message.user("hi")], stream=True, max_tokens=10)
    with pytest.raises(InvalidRequestError, match="Token limit reached") as info:
        replay_stream("openrouter", path, req)
    assert info.value.status == 400


def test_streamed_reasoning_with_keepalive_comments() -> None:
    path = f"{OR}/test_openrouter_streaming_reasoning.yaml"
    req = ChatRequest("anthropic/claude-sonnet-4.5", [Message.user("2+2?")], stream=True,
                      reasoning=ReasoningConfig(effort="medium"))
    events, resp = replay_stream("openrouter", path, req)
    chunks = recorded_chunks(path)
    expected_reasoning = "".join(c["choices"][0]["delta"].get("reasoning") or "" for c in chunks if c.get("choices"))
    assert resp.reasoning == expected_reasoning and resp.text == "2 + 2 = 4"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.reasoning_tokens) == (43, 36, 13)
    assert [e.type for e in events].count("done") == 1 and resp.finish_reason == "stop"


def test_streamed_encrypted_reasoning_is_kept() -> None:
    path = f"{OR}/test_openrouter_stream_with_reasoning.yaml"
    _, resp = replay_stream("openrouter", path, ChatRequest("openai/o3", [Message.user("who are you")], stream=True))
    assert resp.text.startswith("I’m ChatGPT")
    assert any(isinstance(p, Reasoning) and p.redacted and p.redacted.startswith("gAAAA") for p in resp.parts)


def _replayed_details(resp: ChatResponse) -> list[dict]:
    history = [Message.user("q"), resp.to_message(), Message.user("more")]
    msgs = adapter("openrouter").build_chat(ChatRequest("openai/gpt-5-mini", history), config("openrouter")).json()
    return msgs["messages"][1]["reasoning_details"]


def test_reasoning_details_go_back_as_received() -> None:
    """OpenRouter asks for reasoning_details back unchanged: the encrypted block (OpenAI's encrypted
    reasoning, Gemini 3's thought signature) and each detail's format, index and id. The summary
    and the encrypted block of this recording both went back, whole; the encrypted one was dropped."""
    path = f"{OR}/test_openrouter_preserve_reasoning_block.yaml"
    recorded = interaction(path).response.json()["choices"][0]["message"]["reasoning_details"]
    resp = replay_chat("openrouter", path, ChatRequest("openai/gpt-5-mini", [Message.user("q")]))
    assert [d["type"] for d in recorded] == ["reasoning.summary", "reasoning.encrypted"]
    assert _replayed_details(resp) == recorded


def test_streamed_reasoning_details_go_back_whole() -> None:
    """A stream sends a detail in fragments (same type and index); it goes back as one detail, with
    its format and the signature that came last."""
    path = f"{OR}/test_openrouter_streaming_reasoning.yaml"
    req = ChatRequest("anthropic/claude-sonnet-4.5", [Message.user("2+2?")], stream=True)
    _, resp = replay_stream("openrouter", path, req)
    fragments = [d for c in recorded_chunks(path) for ch in c.get("choices") or ()
                 for d in ch["delta"].get("reasoning_details") or ()]
    assert len(fragments) > 1
    [detail] = _replayed_details(resp)
    assert detail == {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0,
                      "text": "".join(d.get("text") or "" for d in fragments),
                      "signature": [d["signature"] for d in fragments if d.get("signature")][-1]}
    assert detail["text"] == resp.reasoning


def test_reasoning_with_text_and_encrypted_data_sends_both() -> None:
    """Reasoning that came without details (from a client) still sends its encrypted block beside its text."""
    history = [Message.user("q"), Message.assistant([Reasoning("thought", redacted="enc"), Text("answer")]),
               Message.user("more")]
    msgs = adapter("openrouter").build_chat(ChatRequest("openai/o3", history), config("openrouter")).json()["messages"]
    assert msgs[1]["reasoning_details"] == [{"type": "reasoning.text", "text": "thought"},
                                            {"type": "reasoning.encrypted", "data": "enc"}]


CHOICE_ERROR = {"code": 502, "message": "Provider returned error",
                "metadata": {"raw": "upstream connection reset", "provider_name": "Anthropic"}}


def test_an_error_inside_a_choice_raises() -> None:
    """OpenRouter reports a failure after generation started on the choice (``choices[].error``,
    finish_reason "error"), in a 200: it is the provider's error, as a top-level one is, not an
    empty (or partial) answer."""
    from cloverleaf._errors import ServerError
    from cloverleaf._http import HttpResponse

    req = ChatRequest("anthropic/claude-3.5-sonnet", [Message.user("hi")])
    body = {"id": "gen-1", "object": "chat.completion", "model": "anthropic/claude-3.5-sonnet",
            "choices": [{"index": 0, "finish_reason": "error", "native_finish_reason": "error",
                         "message": {"role": "assistant", "content": ""}, "error": CHOICE_ERROR}]}
    with pytest.raises(ServerError, match="upstream connection reset") as whole:
        adapter("openrouter").parse_chat(HttpResponse(200, {}, json.dumps(body).encode()), req)
    assert whole.value.status == 502
    head = {"id": "gen-1", "choices": [{"index": 0, "delta": {"content": "The answer is"}, "finish_reason": None}]}
    tail = {"id": "gen-1", "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                                        "error": CHOICE_ERROR}]}
    dec = adapter("openrouter").stream_decoder(replace(req, stream=True))
    assert [e.text for e in dec.feed(f"data: {json.dumps(head)}\n\n".encode())] == ["The answer is"]
    with pytest.raises(ServerError, match="upstream connection reset"):
        dec.feed(f"data: {json.dumps(tail)}\n\ndata: [DONE]\n\n".encode())
