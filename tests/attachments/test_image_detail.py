"""An image's ``detail`` (OpenAI's low/high/auto), from the SDK and from both server APIs.

It was dropped everywhere: the Chat Completions parser read only the image's ``url``, the
Responses parser stored it but never carried it, the Responses encoder always sent "auto" and
the Chat Completions encoder never sent it, so a client asking for "high" got "auto" (and the
cache answered a "high" request with a "low" answer). Now ``Attachment.detail`` carries it to
every OpenAI-shaped upstream and into the cache key (only when given: older keys stay valid).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cloverleaf import Attachment, AttachmentError, Client, Message, Text
from cloverleaf._types import ChatRequest, Role
from cloverleaf.gateway.cache.keys import _part, exact_key
from cloverleaf.server.errors import BadRequest
from cloverleaf.server.openai_wire import parse_chat_request
from cloverleaf.server.responses.items import items_to_messages, normalise_input

from .conftest import MEDIA

PNG = (MEDIA / "image.png").read_bytes()
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _sent_image(model: str, att: Attachment) -> dict[str, Any]:
    """The image part the engine would send (the path ``cloverleaf chat --dry-run`` takes)."""
    with Client(env={"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant", "AZURE_OPENAI_API_KEY": "az"},
                max_retries=0) as client:
        target = client.engine.resolve(model, base_url="http://127.0.0.1:9")
        req = client.engine._resolve_attachments(target, ChatRequest(target.model, [Message.user([Text("x"), att])]))
        body = client.engine._build_chat(target, req).json()
    assert isinstance(body, dict)
    turn = (body.get("messages") or body.get("input"))[0]
    image: dict[str, Any] = turn["content"][1]
    return image


@pytest.mark.parametrize("detail", ["low", "high", "auto"])
def test_the_sdks_detail_reaches_chat_completions_and_the_responses_api(detail: str) -> None:
    att = Attachment(source=PNG, detail=detail)  # type: ignore[arg-type]
    assert _sent_image("openai/gpt-4o", att)["image_url"]["detail"] == detail
    assert _sent_image("azure/gpt-4o", att)["image_url"]["detail"] == detail
    assert _sent_image("openai-responses/gpt-4o", att)["detail"] == detail


def test_no_detail_is_none_on_chat_completions_and_auto_on_the_responses_api() -> None:
    assert "detail" not in _sent_image("openai/gpt-4o", Attachment(source=PNG))["image_url"]
    assert _sent_image("openai-responses/gpt-4o", Attachment(source=PNG))["detail"] == "auto"


def test_other_providers_ignore_it() -> None:
    assert _sent_image("anthropic/claude-sonnet-4-5", Attachment(source=PNG, detail="high"))["type"] == "image"


def test_a_detail_that_is_not_low_high_or_auto_is_refused() -> None:
    with Client(max_retries=0) as client, pytest.raises(AttachmentError, match="'low', 'high' or 'auto'"):
        client.chat("fake/echo", "x", attachments=[Attachment(source=PNG, detail="ultra")])  # type: ignore[arg-type]


def test_chat_completions_parses_the_detail_and_refuses_a_bad_one() -> None:
    def parsed(image: dict[str, Any]) -> Any:
        req, _ = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"}, {"type": "image_url", "image_url": image}]}]})
        return req.messages[0].parts[1]

    assert parsed({"url": DATA_URL, "detail": "high"}).detail == "high"
    assert parsed({"url": DATA_URL}).detail is None
    with pytest.raises(BadRequest) as err:
        parsed({"url": DATA_URL, "detail": "x" * 5000})
    assert err.value.status == 400 and "messages[0].content[1].image_url.detail" in str(err.value)
    assert len(str(err.value)) < 300


def test_the_responses_api_carries_the_detail_and_refuses_a_bad_one() -> None:
    def parsed(detail: str | None) -> Any:
        image = {"type": "input_image", "image_url": DATA_URL, **({"detail": detail} if detail else {})}
        items = normalise_input([{"role": "user", "content": [{"type": "input_text", "text": "x"}, image]}])
        return items_to_messages(items)[0].parts[1]

    assert parsed("low").detail == "low" and parsed("high").detail == "high"
    assert parsed(None).detail is None and parsed("auto").detail is None   # auto: what none means
    with pytest.raises(BadRequest):
        parsed("medium")


def test_the_cache_key_holds_the_detail_only_when_given() -> None:
    def key(detail: Any) -> str:
        return exact_key("s", "m", ChatRequest("m", [Message(Role.USER, [Attachment(source=PNG, detail=detail)])]))

    assert len({key(None), key("low"), key("high")}) == 3
    assert len(_part(Attachment(source=PNG))) == 5   # the key's shape from before detail existed
