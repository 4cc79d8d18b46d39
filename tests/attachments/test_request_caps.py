"""Per-request attachment caps (issue 12 item 3): how many, how many bytes in all, how long
in all; downloads concurrent; ``allow_hosts`` entries with a port enforce it."""

from __future__ import annotations

import asyncio
import base64
import threading

import pytest

from cloverleaf._errors import AttachmentError, ConfigError
from cloverleaf.attachments import AttachmentPolicy, aresolve_all, resolve_all

from .conftest import MapResolver, MediaServer, loopback_policy, media, wait_for

PNG = media("image.png")
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_defaults_are_documented_values() -> None:
    policy = AttachmentPolicy()
    assert (policy.max_per_request, policy.max_request_bytes, policy.request_timeout) == (32, 32 * 1024 * 1024, 30.0)


async def test_too_many_attachments_are_refused_before_any_download(server: MediaServer) -> None:
    policy = loopback_policy(max_per_request=2)
    with pytest.raises(AttachmentError) as info:
        await aresolve_all([server.url("/media/image.png")] * 3, policy)
    assert info.value.rule == "too-many" and "max_per_request" in str(info.value)
    assert server.seen == []
    assert len(await aresolve_all([DATA_URL, DATA_URL], policy)) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_total_bytes_are_capped_across_sources(server: MediaServer, mode: str) -> None:
    policy = loopback_policy(max_request_bytes=int(len(PNG) * 2.5))
    sources = [DATA_URL, server.url("/media/image.png"), server.url("/media/image.png")]
    with pytest.raises(AttachmentError) as info:
        if mode == "sync":
            resolve_all(sources, policy)
        else:
            await aresolve_all(sources, policy)
    assert info.value.rule == "request-too-large"
    ok = loopback_policy(max_request_bytes=len(PNG) * 3)
    assert [a.media_type for a in await aresolve_all(sources, ok)] == ["image/png"] * 3


async def test_a_download_is_cut_off_when_the_request_total_runs_out(server: MediaServer) -> None:
    """An endless body stops at the request's byte budget, below the per-attachment cap."""
    policy = loopback_policy(max_bytes=50 * 1024 * 1024, max_request_bytes=1024 * 1024)
    with pytest.raises(AttachmentError) as info:
        await aresolve_all([server.url("/endless")], policy)
    assert info.value.rule == "request-too-large"


async def test_downloads_run_concurrently(server: MediaServer) -> None:
    """``/together`` answers only when three requests wait at once: sequential downloads
    would each time out at the barrier."""
    server.barrier = threading.Barrier(3)
    got = await aresolve_all([server.url(f"/together?n={i}") for i in range(3)], loopback_policy())
    assert [a.media_type for a in got] == ["image/png"] * 3


async def test_the_request_deadline_covers_all_downloads(server: MediaServer) -> None:
    """Two drip-fed downloads, each within its own (long) deadline, exceed the request's."""
    policy = loopback_policy(read_timeout=30.0, request_timeout=1.0)
    with pytest.raises(AttachmentError) as info:
        await aresolve_all([server.url("/drip?n=1"), server.url("/drip?n=2")], policy)
    assert info.value.rule == "request-timeout" and "request_timeout" in str(info.value)


async def test_the_first_refusal_cancels_the_other_downloads(server: MediaServer) -> None:
    policy = loopback_policy(read_timeout=30.0)
    with pytest.raises(AttachmentError) as info:
        await aresolve_all([server.url("/drip?n=3"), server.url("/status/404")], policy)
    assert info.value.rule == "http-status"  # not a timeout: the drip was not waited for


async def test_cancelling_the_caller_cancels_the_downloads(server: MediaServer) -> None:
    policy = loopback_policy(read_timeout=30.0)
    task = asyncio.ensure_future(aresolve_all([server.url("/drip?n=4")], policy))
    assert await asyncio.to_thread(wait_for, lambda: any("/drip?n=4" in p for p in server.paths()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t for t in asyncio.all_tasks() if "aresolve" in repr(t.get_coro())] == []


# --------------------------------------------------------------------------- allow_hosts with a port


def test_an_allow_hosts_entry_with_a_port_allows_that_port_only(server: MediaServer) -> None:
    resolver = MapResolver({"cdn.test": ["127.0.0.1"]})
    policy = AttachmentPolicy(allow_hosts=(f"cdn.test:{server.port}",), resolver=resolver, connect_timeout=2.0)
    got = resolve_all([f"http://cdn.test:{server.port}/media/image.png"], policy)
    assert got[0].media_type == "image/png"
    other = server.port + 1 if server.port < 65535 else server.port - 1
    with pytest.raises(AttachmentError) as info:
        resolve_all([f"http://cdn.test:{other}/media/image.png"], policy)
    assert info.value.rule == "private-address"
    anyport = AttachmentPolicy(allow_hosts=("cdn.test",), resolver=resolver)
    assert anyport.host_allowed("cdn.test", other) and anyport.host_allowed("CDN.test.", 80)


@pytest.mark.parametrize("entry, host, port", [
    ("cdn.test", "cdn.test", None), ("cdn.test:8443", "cdn.test", 8443), ("[::1]:8080", "::1", 8080),
    ("::1", "::1", None), ("CDN.Test.:80", "cdn.test", 80),
])
def test_allow_hosts_entries_parse(entry: str, host: str, port: int | None) -> None:
    policy = AttachmentPolicy(allow_hosts=(entry,))
    assert policy.host_allowed(host, port if port is not None else 1234)
    if port is not None:
        assert not policy.host_allowed(host, port + 1)


@pytest.mark.parametrize("entry", ["cdn.test:0", "cdn.test:99999", "cdn.test:http", "[::1]x", ":80"])
def test_bad_allow_hosts_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError):
        AttachmentPolicy(allow_hosts=(entry,))


@pytest.mark.parametrize("name", ["max_per_request", "max_request_bytes", "request_timeout"])
def test_request_caps_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigError):
        AttachmentPolicy(**{name: 0})
