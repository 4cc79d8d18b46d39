"""Mistral through the OpenAI adapter: list-shaped content with ``thinking`` parts (Magistral),
tools with images, prompt-cache usage, and the dialect (no ``stream_options``)."""

from __future__ import annotations

from cloverleaf._types import ChatRequest, Message, Reasoning, Text, Tool, ToolChoice
from tests.providers._openai_replay import PA, adapter, config, interaction, recorded_chunks, replay_chat, replay_stream

MI = f"{PA}/test_mistral"


def test_thinking_content_list_becomes_reasoning_then_text() -> None:
    path = f"{MI}/test_mistral_model_thinking_part.yaml"
    resp = replay_chat("mistral", path, ChatRequest("magistral-medium-latest", [Message.user("river?")]), 1)
    content = interaction(path, 1).response.json()["choices"][0]["message"]["content"]
    thinking = "".join(t["text"] for t in content[0]["thinking"])
    assert isinstance(resp.parts[0], Reasoning) and resp.parts[0].text == thinking
    assert isinstance(resp.parts[1], Text) and resp.text == content[1]["text"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (664, 747)


def test_streamed_thinking_and_usage_in_finish_chunk() -> None:
    path = f"{MI}/test_mistral_model_thinking_part_iter.yaml"
    req = ChatRequest("magistral-medium-latest", [Message.user("How do I cross the street?")], stream=True)
    events, resp = replay_stream("mistral", path, req)
    thinking, text = [], []
    for chunk in recorded_chunks(path):
        content = chunk["choices"][0]["delta"].get("content")
        if isinstance(content, str):
            text.append(content)
        elif isinstance(content, list):
            thinking.extend(t["text"] for item in content for t in item.get("thinking", []))
    assert resp.reasoning == "".join(thinking) and resp.text == "".join(text)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (10, 232)
    assert events[-1].type == "done" and resp.finish_reason == "stop"


def test_stream_request_omits_stream_options() -> None:
    req = ChatRequest("mistral-large-latest", [Message.user("x")], stream=True)
    body = adapter("mistral").build_chat(req, config("mistral")).json()
    assert body["stream"] is True and "stream_options" not in body
    assert interaction(f"{MI}/test_mistral_model_thinking_part_iter.yaml").request_json.keys() == {
        "messages", "model", "stream"}


def test_tool_call_then_image_answer_with_top_p() -> None:
    path = f"{MI}/test_image_as_binary_content_tool_response.yaml"
    tool = Tool("get_image", parameters={"additionalProperties": False, "properties": {}, "type": "object"})
    req = ChatRequest("pixtral-12b-latest", [Message.user("What fruit is in the image you can get from the get_image tool?")],
                      tools=[tool], tool_choice=ToolChoice("auto"), top_p=1.0)
    built = adapter("mistral").build_chat(req, config("mistral")).json()
    recorded = interaction(path, 0).request_json
    assert (built["tools"], built["tool_choice"], built["top_p"]) == (
        [{"type": "function", "function": {k: v for k, v in recorded["tools"][0]["function"].items() if v != ""}}],
        recorded["tool_choice"], recorded["top_p"])
    first = replay_chat("mistral", path, req, 0)
    [call] = first.tool_calls
    assert (call.name, call.arguments, first.finish_reason) == ("get_image", {}, "tool_calls")
    assert "kiwi" in replay_chat("mistral", path, req, 1).text.lower()


def test_prompt_cache_usage() -> None:
    path = f"{MI}/test_mistral_history_uses_prompt_cache.yaml"
    resp = replay_chat("mistral", path, ChatRequest("mistral-large-latest", [Message.user("probe")]), 1)
    assert (resp.text, resp.usage.input_tokens, resp.usage.cached_tokens) == ("cache probe two.", 268, 224)
