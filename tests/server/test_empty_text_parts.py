"""An empty text part (``{"type": "text", "text": ""}``, which the Vercel AI SDK sends beside a
file or other text, and OpenAI takes) from each client shape to providers that refuse empty text.

Claude refuses an empty text block ("text content blocks must be non-empty"), Converse a blank one,
and some Gemini models an empty text part ("Unable to submit request because it has an empty text
parameter"): the stand-ins below answer such a request with that 400. Beside other content the empty
part says nothing and is left out, so the call is answered as OpenAI answers it. A user message of
nothing but empty text was left out too, silently: the turns around it joined, or the conversation
ended with the assistant's turn, which Claude then continued as its own (a prefill), a different
request from the one sent. It is now a 400 naming the message, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from cloverleaf._config import ProviderSettings
from tests.loopback import Answer, LoopbackServer, Request, json_answer
from tests.providers.api_rules import RuleCheckingUpstream

from .conftest import Live, settings, start_live, stop_live

CLAUDE = "anthropic/claude-sonnet-4-5"
BEDROCK_CLAUDE = "bed/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
GEMINI = "gemini/gemini-2.0-flash"
GEMINI_REFUSAL = "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."
GEMINI_ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Done."}]}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}}
EMPTY_AND_HELLO: Any = [{"type": "text", "text": ""}, {"type": "text", "text": "Hello"}]


class Gemini:
    """``generateContent`` refusing an empty text part as gemini-2.0-flash did (public issue threads)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.server = LoopbackServer(self._answer)

    def _answer(self, request: Request) -> Answer:
        body = request.json()
        self.bodies.append(body)
        if any(part.get("text") == "" for turn in body["contents"] for part in turn["parts"]):
            return json_answer({"error": {"code": 400, "message": GEMINI_REFUSAL, "status": "INVALID_ARGUMENT"}}, 400)
        return json_answer(GEMINI_ANSWER)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[RuleCheckingUpstream, Gemini]]:
    rules, gemini = RuleCheckingUpstream(), Gemini()
    yield rules, gemini
    rules.close()
    gemini.server.close()


@pytest.fixture(scope="module")
def live(upstreams: tuple[RuleCheckingUpstream, Gemini]) -> Iterator[Live]:
    rules, gemini = upstreams
    providers = {
        "anthropic": ProviderSettings("anthropic", base_url=rules.url, api_key="sk-ant-mock"),
        "bed": ProviderSettings("bed", kind="bedrock", base_url=rules.url, extra={"region": "us-east-1"}),
        "gemini": ProviderSettings("gemini", kind="gemini", base_url=gemini.server.url, api_key="gm-mock"),
    }
    server = start_live(settings(providers=providers, env={"AWS_BEARER_TOKEN_BEDROCK": "bk-mock"}))
    yield server
    stop_live(server)


@pytest.mark.parametrize("model", [CLAUDE, BEDROCK_CLAUDE, GEMINI])
def test_openai_chat_empty_text_beside_other_text_is_answered(live: Live, upstreams: tuple[RuleCheckingUpstream, Gemini],
                                                              model: str) -> None:
    reply = live.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": EMPTY_AND_HELLO}])
    assert reply.choices[0].message.content == "Done."
    rules, gemini = upstreams
    if model == GEMINI:
        assert gemini.bodies[-1]["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    else:
        assert rules.refused == []


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_responses_empty_input_text_beside_other_text_is_answered(live: Live, model: str) -> None:
    content: Any = [{"type": "input_text", "text": ""}, {"type": "input_text", "text": "Hello"}]
    reply = live.openai().responses.create(model=model, input=[{"role": "user", "content": content}])
    assert reply.output_text == "Done."


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_anthropic_messages_empty_text_block_beside_other_text_is_answered(live: Live, model: str) -> None:
    reply = live.anthropic().messages.create(model=model, max_tokens=64,
                                             messages=[{"role": "user", "content": EMPTY_AND_HELLO}])
    assert [block.text for block in reply.content if block.type == "text"] == ["Done."]


@pytest.mark.parametrize("model", [CLAUDE, BEDROCK_CLAUDE])
def test_a_user_message_of_only_empty_text_is_a_400_not_a_prefill(live: Live,
                                                                  upstreams: tuple[RuleCheckingUpstream, Gemini],
                                                                  model: str) -> None:
    rules, _ = upstreams
    before = len(rules.bodies)
    history: Any = [{"role": "user", "content": "Write a haiku."}, {"role": "assistant", "content": "Autumn wind"},
                    {"role": "user", "content": [{"type": "text", "text": ""}]}]
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().chat.completions.create(model=model, messages=history)
    assert "messages[2] is a user message of only empty or blank text" in caught.value.message
    assert len(rules.bodies) == before   # nothing sent


def test_an_anthropic_client_gets_the_same_400(live: Live) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        live.anthropic().messages.create(model=CLAUDE, max_tokens=64, messages=[
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": ""}]}])
    assert "text content blocks must be non-empty" in json.dumps(caught.value.body)
