"""A 3xx from an upstream (an http->https move, a moved deployment) is an error that says where
the API went, never followed (the request carries the key) and never retried. It was read as an
answer: "the stream was empty" or "the body is not JSON", retryable, with neither the status nor
the Location named."""

from __future__ import annotations

import asyncio

import pytest

import cloverleaf
from cloverleaf import Client

from .upstream import Reply

MOVED = "https://llm.internal.example/v1/chat/completions"


def _moved(status: int = 301, location: str | None = MOVED) -> Reply:
    headers = {"content-type": "text/html"} | ({"location": location} if location else {})
    return Reply(status=status, headers=headers, body=b"<html><body>Moved</body></html>")


def _call(base_url: str, streamed: bool) -> None:
    with Client(max_retries=2) as c:
        if streamed:
            list(c.stream("openai/gpt-4o", "hi", api_key="k", base_url=base_url))
        else:
            c.chat("openai/gpt-4o", "hi", api_key="k", base_url=base_url)


async def _acall(base_url: str, streamed: bool) -> None:
    async with cloverleaf.AsyncClient(max_retries=2) as c:
        if streamed:
            async for _ in c.stream("openai/gpt-4o", "hi", api_key="k", base_url=base_url):
                pass
        else:
            await c.chat("openai/gpt-4o", "hi", api_key="k", base_url=base_url)


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_a_redirect_names_its_status_and_location_and_is_not_retried(upstream, streamed: bool,
                                                                      run_async: bool) -> None:
    upstream.queue(_moved(301), _moved(301), _moved(301))
    with pytest.raises(cloverleaf.RedirectError) as err:
        if run_async:
            asyncio.run(_acall(upstream.url + "/v1", streamed))
        else:
            _call(upstream.url + "/v1", streamed)
    assert not err.value.retryable and err.value.status == 301
    assert MOVED in str(err.value) and "set base_url to https://llm.internal.example/v1 " in str(err.value)
    assert len(upstream.seen) == 1   # not retried, and not followed anywhere
    assert not isinstance(err.value, cloverleaf.MalformedResponseError)


def test_credentials_in_the_location_are_masked_and_a_relative_one_is_resolved(upstream) -> None:
    upstream.queue(_moved(308, "https://user:hunter2hunter2@llm.example/v2/chat/completions?api_key=s3cr3tvalue"))
    with pytest.raises(cloverleaf.RedirectError) as err:
        _call(upstream.url + "/v1", streamed=True)
    text = f"{err.value} {err.value.args!r}"
    assert "hunter2hunter2" not in text and "s3cr3tvalue" not in text and "llm.example/v2" in text
    upstream.queue(_moved(307, "/v2/chat/completions"))
    with pytest.raises(cloverleaf.RedirectError) as err:
        _call(upstream.url + "/v1", streamed=False)
    assert f"set base_url to {upstream.url}/v2 " in str(err.value)
    upstream.queue(_moved(302, None))
    with pytest.raises(cloverleaf.RedirectError, match="302, a redirect, naming no Location"):
        _call(upstream.url + "/v1", streamed=False)
