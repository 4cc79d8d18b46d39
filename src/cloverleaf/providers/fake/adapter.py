"""The fake provider: an in-process OpenAI-compatible upstream, so everything runs offline.

``fake/...`` models are served by :class:`FakeAdapter` (the real OpenAI adapter, every
capability on) talking to :class:`FakeUpstream`, an httpx transport that answers
``POST /v1/chat/completions`` (JSON or SSE), ``/v1/embeddings``, ``/v1/images/generations``
and ``GET /v1/models`` exactly as OpenAI would. The client's transport routes every request
for host ``fake.cloverleaf.invalid`` to the client's own ``FakeUpstream`` (no global state),
so the adapter, transport, retries, stream decoding, gateway and server all run for real.

Answers are deterministic (see :mod:`cloverleaf.providers.fake_wire`): ``echo`` repeats the
last user message, other names give a sentence derived from the input, tools are called
with schema-valid arguments, structured output validates against its schema.

Faults, from a test: ``upstream.script.fail(429).reply(text="ok")`` (see
:class:`~cloverleaf.providers.fake.script.FakeScript`). Faults without code, from the
model name — tokens joined by ``+``, anything that is not a directive is just the name::

    echo                repeat the last user message text
    fail-<status>       answer with that HTTP error, OpenAI-shaped (429/503/529 add retry-after: 0)
    fail-<status>x<n>   fail only the first n calls for this model name on this client
    hang[x<n>]          never answer: httpx.ReadTimeout once the read timeout passes
    reset-after-<n>     send n chunks (stream events), then break the connection
    garbage[x<n>]       200 with malformed JSON (a stream's data line is cut mid-object)
    truncate[x<n>]      200 that stops early: no finish chunk and no [DONE]; JSON cut in half
    slow-<n>ms|s        wait before answering (longer than the read timeout: ReadTimeout)
    drip-<n>ms|s        wait between stream chunks

e.g. ``fake/fail-500``, ``fake/fail-429x2`` (succeeds on the third try), ``fake/hang``,
``fake/reset-after-3``, ``fake/echo+slow-200ms``, ``fake/garbage``. A scripted item, when
one is queued, takes precedence over the model name's fault.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from ..._capabilities import ALL, Capabilities
from ..base import ProviderConfig
from ..openai.adapter import OpenAIAdapter
from ..openai.messages import Dialect
from .content import SchemaError
from .script import FakeScript, Fault, ScriptedReply, parse_model
from .wire import (
    chat_answer,
    completion_chunks,
    completion_json,
    embeddings_json,
    error_response,
    garbage_body,
    images_json,
    models_json,
)

HOST = "fake.cloverleaf.invalid"
BASE_URL = f"http://{HOST}/v1"

__all__ = ["BASE_URL", "HOST", "FakeAdapter", "FakeRequest", "FakeScript", "FakeUpstream"]


class FakeAdapter(OpenAIAdapter):
    """The OpenAI adapter with every capability: the fake accepts anything OpenAI-shaped."""

    kind: ClassVar[str] = "fake"
    default_capabilities: ClassVar[Capabilities] = ALL

    def dialect(self, cfg: ProviderConfig | None = None) -> Dialect:
        # PDFs by URL and images of any format too: the fake never fetches or decodes anything
        base = Dialect(pdf_url=True, embedding_token_ids=True, any_image=True)
        return base.with_extra(cfg.extra) if cfg is not None and cfg.extra else base


@dataclass(slots=True)
class FakeRequest:
    """One request the upstream received, for tests to inspect: ``upstream.requests`` holds the
    latest ``FakeUpstream.RECORD_LIMIT`` (a bounded record), ``upstream.served`` counts all."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"FakeRequest({self.method} {self.path}, {len(self.body)} bytes)"


class RequestLog(deque[FakeRequest]):
    """The latest requests, a bounded ring that compares with a list as the list of its items
    would (``upstream.requests == []``: nothing was sent)."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return super().__eq__(other)

    __hash__ = None


@dataclass(slots=True)
class _Plan:
    """How to answer one request: status, headers, body chunks, and any misbehaviour."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    hang: bool = False
    reset_after: int | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0


class FakeUpstream(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An OpenAI-compatible server inside the process; works as a sync and an async transport."""

    #: how many of the latest requests ``requests`` keeps (a long-running ``cloverleaf serve``
    #: over the fake must not grow with every request it serves)
    RECORD_LIMIT = 256
    #: how many model names ``fail-<status>x<n>`` counts calls for (oldest forgotten first)
    COUNTED_MODELS = 1024

    def __init__(self, record_limit: int = RECORD_LIMIT) -> None:
        self.script = FakeScript()
        #: the latest requests, oldest first (at most ``record_limit``); ``served`` counts them all
        self.requests: RequestLog = RequestLog(maxlen=record_limit)
        self.served = 0
        self._lock = threading.Lock()
        self._calls_by_model: OrderedDict[str, int] = OrderedDict()
        self._closed = threading.Event()

    # -- httpx transports ------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        plan = self.plan(request.method, request.url.path, dict(request.headers), request.read())
        timeout = _read_timeout(request)
        if plan.hang:
            self._closed.wait(timeout)
            raise _timed_out(request, timeout)
        _sleep_sync(plan.latency, timeout, request)
        return httpx.Response(plan.status, headers=plan.headers, stream=_SyncBody(plan, timeout, request),
                              request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        plan = self.plan(request.method, request.url.path, dict(request.headers), await request.aread())
        timeout = _read_timeout(request)
        if plan.hang:
            if timeout is None:
                await asyncio.Event().wait()  # forever, until the caller cancels
            await asyncio.sleep(timeout or 0)
            raise _timed_out(request, timeout)
        await _sleep_async(plan.latency, timeout, request)
        return httpx.Response(plan.status, headers=plan.headers, stream=_AsyncBody(plan, timeout, request),
                              request=request)

    def close(self) -> None:
        self._closed.set()  # wakes any sync request hanging without a timeout

    async def aclose(self) -> None:
        self._closed.set()

    # -- deciding the answer -----------------------------------------------------------------
    def plan(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Plan:
        with self._lock:
            self.requests.append(FakeRequest(method.upper(), path, {k.lower(): v for k, v in headers.items()}, body))
            self.served += 1
            number = self.served
        base = {"x-request-id": f"req_fake_{number}"}
        try:
            data = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            return self._error(400, base, "request body is not JSON")
        if not isinstance(data, dict):
            return self._error(400, base, "request body must be a JSON object")
        model = str(data.get("model") or "")
        directives = parse_model(model)
        item = self.script.next_item()
        fault = item if isinstance(item, Fault) else self._directive_fault(model, directives)
        try:
            plan = self._answer(method.upper(), _route(path), data, directives.echo,
                                item if isinstance(item, ScriptedReply) else None, fault, base)
        except (SchemaError, TypeError, ValueError, ArithmeticError) as exc:
            # e.g. an invalid JSON Schema, or a bound no float holds (OverflowError): a 400, as real APIs say
            return self._error(400, base, f"invalid request: {exc}")
        plan.latency = max(self.script.latency_seconds, directives.latency)
        plan.chunk_delay = max(self.script.chunk_delay_seconds, directives.chunk_delay)
        return plan

    def _directive_fault(self, model: str, directives: Any) -> Fault | None:
        if directives.fault is None:
            return None
        if directives.times is None:
            fault: Fault = directives.fault
            return fault
        with self._lock:
            count = self._calls_by_model[model] = self._calls_by_model.pop(model, 0) + 1
            if len(self._calls_by_model) > self.COUNTED_MODELS:
                self._calls_by_model.popitem(last=False)
        return directives.fault if count <= directives.times else None

    def _answer(self, method: str, route: str, data: dict[str, Any], echo: bool, scripted: ScriptedReply | None,
                fault: Fault | None, base: dict[str, str]) -> _Plan:
        if fault is not None and fault.kind == "fail":
            body, headers = error_response(fault.status, fault.body, fault.headers)
            return _Plan(fault.status, {**base, **headers}, [body])
        if fault is not None and fault.kind == "hang":
            return _Plan(0, base, hang=True)
        stream = bool(data.get("stream"))
        if method == "GET" and route == "models":
            chunks = [json.dumps(models_json()).encode()]
        elif method != "POST" or route not in ("chat/completions", "embeddings", "images/generations"):
            return self._error(404, base, f"no such endpoint: {method} /v1/{route}")
        elif route == "chat/completions":
            if not isinstance(data.get("messages"), list) or not data.get("model"):
                return self._error(400, base, "'model' and a list of 'messages' are required")
            answer = chat_answer(data, echo=echo, scripted=scripted)
            truncated = fault is not None and fault.kind == "truncate"
            chunks = (completion_chunks(data, answer, finish=not truncated) if stream
                      else [json.dumps(completion_json(data, answer)).encode()])
        else:
            stream = False
            if route == "embeddings" and data.get("input") in (None, "", []):
                return self._error(400, base, "'input' is required")
            chunks = [json.dumps(embeddings_json(data) if route == "embeddings" else images_json(data)).encode()]
        kind = fault.kind if fault is not None else None
        if kind == "garbage":
            chunks = garbage_body(stream)
        elif kind == "truncate" and not stream:
            chunks = [chunks[0][: len(chunks[0]) // 2]]
        ctype = "text/event-stream; charset=utf-8" if stream else "application/json"
        plan = _Plan(200, {**base, "content-type": ctype}, chunks)
        if kind == "reset":
            if not stream:  # break a plain body part-way through, too
                plan.chunks = [b"".join(chunks)[i:i + 64] for i in range(0, len(b"".join(chunks)), 64)]
            plan.reset_after = min(fault.after_chunks, max(0, len(plan.chunks) - 1))  # type: ignore[union-attr]
        return plan

    def _error(self, status: int, base: dict[str, str], message: str) -> _Plan:
        kind = "invalid_request_error" if status < 500 else "server_error"
        payload = {"error": {"message": f"{message} (fake upstream)", "type": kind, "param": None, "code": None}}
        body, headers = error_response(status, json.dumps(payload).encode())
        return _Plan(status, {**base, **headers}, [body])


# --------------------------------------------------------------------------- I/O helpers


def _route(path: str) -> str:
    path = path.strip("/")
    return path[3:] if path.startswith("v1/") else path


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return float(value) if value is not None else None


def _timed_out(request: httpx.Request, timeout: float | None) -> Exception:
    if timeout is None:
        return httpx.ReadError("fake upstream closed while the request was hanging", request=request)
    return httpx.ReadTimeout(f"fake upstream did not answer within {timeout}s", request=request)


def _sleep_sync(seconds: float, timeout: float | None, request: httpx.Request) -> None:
    if seconds <= 0:
        return
    if timeout is not None and seconds >= timeout:
        time.sleep(timeout)
        raise _timed_out(request, timeout)
    time.sleep(seconds)


async def _sleep_async(seconds: float, timeout: float | None, request: httpx.Request) -> None:
    if seconds <= 0:
        return
    if timeout is not None and seconds >= timeout:
        await asyncio.sleep(timeout)
        raise _timed_out(request, timeout)
    await asyncio.sleep(seconds)


def _reset(request: httpx.Request) -> Exception:
    return httpx.RemoteProtocolError("peer closed connection without sending complete message body "
                                     "(fake upstream reset)", request=request)


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, plan: _Plan, timeout: float | None, request: httpx.Request) -> None:
        self._plan, self._timeout, self._request = plan, timeout, request

    def __iter__(self) -> Iterator[bytes]:
        plan = self._plan
        for i, chunk in enumerate(plan.chunks):
            if i == plan.reset_after:
                raise _reset(self._request)
            if i:
                _sleep_sync(plan.chunk_delay, self._timeout, self._request)
            yield chunk


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, plan: _Plan, timeout: float | None, request: httpx.Request) -> None:
        self._plan, self._timeout, self._request = plan, timeout, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        plan = self._plan
        for i, chunk in enumerate(plan.chunks):
            if i == plan.reset_after:
                raise _reset(self._request)
            if i:
                await _sleep_async(plan.chunk_delay, self._timeout, self._request)
            yield chunk
