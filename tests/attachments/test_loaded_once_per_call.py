"""A URL attachment is downloaded once per call, however many requests the call sends.

A route that falls back sent the conversation again to the next target, and ``run_tools=True``
sends it once per tool turn; each send downloaded every URL attachment again (slower, and the
second download need not return the same bytes). Each attachment now loads once per call;
a new call downloads again, and the caller's own objects are never written to.
"""

from __future__ import annotations

from typing import Any

import pytest

import cloverleaf
from cloverleaf import AsyncClient, Attachment, Client

from .conftest import MEDIA, MediaServer


def weather(city: str) -> str:
    """Current weather for a city."""
    return "sunny"


def _settings(**extra: Any) -> dict[str, Any]:
    return {"attachments": {"allow_networks": ("127.0.0.1/32",)}, "max_retries": 0, **extra}


def _image_requests(server: MediaServer) -> int:
    return sum(1 for p in server.paths() if p.startswith("/media/image.png"))


def test_a_route_that_falls_back_downloads_once(server: MediaServer) -> None:
    att = Attachment(source=server.url("/media/image.png"))
    with Client(**_settings(routes={"smart": {"targets": ["fake/fail-500", "fake/echo"]}})) as client:
        r = client.chat("smart", "describe", attachments=[att])
        assert r.metadata.target == "fake/echo" and len(r.metadata.attempts) == 2
        assert _image_requests(server) == 1
        sent = [req.json["messages"][-1]["content"] for req in client.fake.requests]
        assert len(sent) == 2 and sent[0] == sent[1]   # both targets got the same bytes
        client.chat("smart", "describe", attachments=[att])   # a new call downloads again
        assert _image_requests(server) == 2
    assert att.data is None


def test_a_streamed_route_that_falls_back_downloads_once(server: MediaServer) -> None:
    att = Attachment(source=server.url("/media/image.png"))
    with Client(**_settings(routes={"smart": {"targets": ["fake/fail-500", "fake/echo"]}})) as client:
        with client.stream("smart", "describe", attachments=[att]) as s:
            assert s.until_done().text == "describe"
        assert len(client.fake.requests) == 2 and _image_requests(server) == 1


def test_every_tool_turn_resends_the_conversation_without_downloading_again(server: MediaServer) -> None:
    att = Attachment(source=server.url("/media/image.png"))
    with Client(**_settings()) as client:
        r = client.chat("fake/x", "weather where this photo was taken?", attachments=[att], tools=[weather],
                        run_tools=True, max_tool_turns=3)
        assert r.finish_reason == "stop" and len(client.fake.requests) == 2
        assert _image_requests(server) == 1
    assert att.data is None


async def test_the_async_tool_loop_through_the_gateway_downloads_once(server: MediaServer) -> None:
    att = Attachment(source=server.url("/media/image.png"))
    async with AsyncClient(**_settings(routes={"smart": {"targets": ["fake/fail-500", "fake/x"]}})) as client:
        r = await client.chat("smart", "weather where this photo was taken?", attachments=[att], tools=[weather],
                              run_tools=True, max_tool_turns=3)
        assert r.finish_reason == "stop"
        # turn 1 fell back (2 sends), turn 2 was answered by the route's first target again or fell back
        assert len(client.fake.requests) >= 3 and _image_requests(server) == 1


def test_a_later_turn_still_counts_what_was_loaded_earlier_against_the_request_caps(server: MediaServer) -> None:
    """A later send re-checks the loaded bytes under the policy without downloading them: the
    request's byte total counts them, so a tool result that adds a second image goes past it."""
    png = (MEDIA / "image.png").read_bytes()
    att = Attachment(source=server.url("/media/image.png"))

    def screenshot(city: str) -> list[Any]:
        """A screenshot of the city's weather page."""
        return ["the page:", Attachment(source=png)]

    policy = {"allow_networks": ("127.0.0.1/32",), "max_request_bytes": len(png) * 3 // 2}
    with Client(**_settings(attachments=policy)) as client:
        with pytest.raises(cloverleaf.AttachmentError, match="max_request_bytes"):
            client.chat("fake/x", "weather where this photo was taken?", attachments=[att], tools=[screenshot],
                        run_tools=True, max_tool_turns=3)
        assert len(client.fake.requests) == 1 and _image_requests(server) == 1


async def test_a_stream_left_unfinished_leaves_no_scope_behind_in_its_task(server: MediaServer) -> None:
    """A stream is an async generator, whose steps run in its consumer's context: its scope,
    once set there, stayed set in the caller's task after the caller stopped reading early, and
    every later call of that task reused the first download (stale bytes, memory that only grew)."""
    import gc

    from cloverleaf import _attachment_loads

    att = Attachment(source=server.url("/media/image.png"))
    async with AsyncClient(**_settings(routes={"smart": {"targets": ["fake/echo"]}})) as client:
        stream = client.stream("smart", "describe", attachments=[att])
        async for _ in stream:
            break                      # the caller stops reading early
        del stream
        gc.collect()
        assert _attachment_loads._current.get() is None
        await client.chat("smart", "describe", attachments=[att])
        await client.chat("smart", "describe", attachments=[att])
    assert _image_requests(server) == 3
