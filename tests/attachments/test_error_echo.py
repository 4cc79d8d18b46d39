"""A client's attachment field is quoted short in errors, never echoed whole.

A data: URL whose media-type field carries the payload (a client that forgot the comma after
``base64``) made a 600 KB 400 message, and 2,000 characters of base64 landed in the trace
store's ``calls.error_message``; an Anthropic ``source.media_type`` or a Chat Completions
``input_audio.format`` did the same. Errors now quote at most 60 characters and the length.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cloverleaf import Attachment, AttachmentError, Client, Message
from cloverleaf.server.anthropic_wire import parse_messages_request
from cloverleaf.server.openai_wire import parse_chat_request

from .conftest import MEDIA

PAYLOAD = base64.b64encode((MEDIA / "image.png").read_bytes() * 200).decode()


def _refused(att: Any) -> AttachmentError:
    with Client(max_retries=0) as client, pytest.raises(AttachmentError) as err:
        client.chat("fake/echo", [Message.user(["x", att])])
    assert client.fake.requests == []
    return err.value


def _short(err: AttachmentError) -> None:
    assert len(str(err)) < 500 and PAYLOAD[:100] not in str(err)
    assert err.detail is None or len(err.detail) < 200


def test_a_data_url_whose_media_type_holds_the_payload() -> None:
    err = _refused(Attachment(source=f"data:image/{PAYLOAD};base64,iVBORw0KGgo="))
    _short(err)
    assert f"({len('image/' + PAYLOAD)} characters)" in str(err)


def test_an_anthropic_media_type_and_a_chat_completions_audio_format() -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/" + PAYLOAD, "data": "iVBORw0KGgo="}}]}]})
    _short(_refused(req.messages[0].parts[0]))
    chat, _ = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"format": PAYLOAD, "data": "UklGRg=="}}]}]})
    _short(_refused(chat.messages[0].parts[0]))


def test_a_type_and_a_fetch_mode_are_quoted_short() -> None:
    _short(_refused(Attachment(source=(MEDIA / "image.png").read_bytes(), type=PAYLOAD)))  # type: ignore[arg-type]
    _short(_refused(Attachment(source=(MEDIA / "image.png").read_bytes(), fetch=PAYLOAD)))  # type: ignore[arg-type]
