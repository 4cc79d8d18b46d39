"""The Playground (streaming chat from the browser) and the Models page's test call.

Both run through the gateway exactly as an API call does — the same routes, fallback,
limits, budgets and call record — under the signed-in principal's policy: the master key
has none; an admin-scoped key keeps its allowed models, limits, budget and project. The Playground
can also call *as* a virtual key pasted into it (to try what that key may do); the key is
verified like any API key and never shown back. A session signed in with a virtual key may
call only as a key within its own key's limits (:func:`.key_limits.wider_than`): the pasted
key's policy is what the call runs under, so a wider one would lift the session's limits.

Each call gets a fresh trace id (and a trace row), so the answer links to its trace. The
browser reads the answer as NDJSON lines (``fetch`` + a stream reader, no EventSource,
which cannot POST): ``start``, ``text`` pieces, then ``done`` with timings, tokens, cost and
the trace id — or ``error``. An error before the first byte (a refused key, an unknown or
forbidden model, a budget) is a JSON error with its own status instead.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..._context import CallContext
from ..._errors import redact
from ..._types import ChatRequest, Message, StreamEvent, Usage
from ..auth import Principal
from ..errors import BadRequest, Forbidden, to_api_error
from ..keys import model_allowed
from ..openai_wire import parse_chat_request
from ..projects import call_project
from .key_limits import wider_than
from .session import Session
from .web import Web, fmt_usd, script_error

TEST_PROMPT = "Reply with one short sentence: are you there?"
TEST_TIMEOUT_SECONDS = 60.0


class Playground:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.st = web.st

    async def page(self, request: Request, session: Session) -> Response:
        policy = await self.web.sessions.policy(session)
        names = sorted({name for name, _ in self.st.backend.listed_models()}
                       | {e.name for e in self.st.backend.engine.registry.all()})
        if policy is not None and policy.allowed_models:
            names = [n for n in names if model_allowed(policy.allowed_models, n)]
        return self.web.render(request, "playground.html", session, page="playground", models=names,
                               default_model=request.query_params.get("model") or (names[0] if names else "fake/echo"),
                               max_bytes=self.st.options.max_body_bytes)

    async def stream(self, request: Request, session: Session) -> Response:
        st = self.st
        body = await st.read_json(request)
        as_key = body.pop("key", None)
        if as_key is not None and not isinstance(as_key, str):
            raise BadRequest("key: expected a string")
        body["stream"] = True
        body.pop("stream_options", None)
        req, _ = parse_chat_request(body)
        try:
            principal = await self._principal(session, as_key)
            principal.check_model(req.model)
            await st.backend.check_model(req.model)
        except Exception as exc:  # noqa: BLE001 - refused before the first byte: a JSON error
            return _error(exc)
        trace_id = self._new_trace("playground", req.model)
        ctx = CallContext(trace_id=trace_id, project=call_project(principal.policy, None), key=principal.policy,
                          metadata={"source": "dashboard playground"})
        t0 = time.perf_counter()
        events = st.backend.astream(req.model, req, ctx)
        try:
            first = await events.__anext__()
        except StopAsyncIteration:
            first = None
        except Exception as exc:  # noqa: BLE001 - the call failed before any output
            await self._settled()
            return _error(exc, trace_id)
        return StreamingResponse(self._lines(events, first, t0, trace_id), media_type="application/x-ndjson",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def _lines(self, events: AsyncIterator[StreamEvent], first: StreamEvent | None, t0: float,
                     trace_id: str) -> AsyncIterator[bytes]:
        yield _line({"type": "start", "trace_id": trace_id})
        ttft = None
        usage = Usage()
        done: StreamEvent | None = None
        try:
            pending = [first] if first is not None else []
            while True:
                if pending:
                    ev = pending.pop()
                else:
                    try:
                        ev = await events.__anext__()
                    except StopAsyncIteration:
                        break
                if ev.type == "text" and ev.text:
                    if ttft is None:
                        ttft = (time.perf_counter() - t0) * 1000.0
                    yield _line({"type": "text", "text": ev.text})
                elif ev.type == "usage" and ev.usage is not None:
                    usage = ev.usage
                elif ev.type == "done":
                    done = ev
        except Exception as exc:  # noqa: BLE001 - after output has been sent: reported in-band
            err = to_api_error(exc)
            await self._settled()
            yield _line({"type": "error", "message": redact(err.message), "status": err.status,
                         "trace_id": trace_id})
            return
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        resp = done.response if done is not None else None
        if resp is not None and resp.usage is not None:
            usage = resp.usage
        await self._settled()
        yield _line({"type": "done", "trace_id": trace_id, "ttft_ms": ttft,
                     "latency_ms": (time.perf_counter() - t0) * 1000.0,
                     "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                     "cost": resp.cost if resp is not None else None,
                     # shown as every page shows a cost (the script's own six decimals read "$0.000000")
                     "cost_text": fmt_usd(resp.cost if resp is not None else None),
                     "target": resp.metadata.target if resp is not None else None})

    async def test_call(self, model: str, session: Session) -> dict[str, Any]:
        """One small request to ``model``, for the Models page: the answer or the error, and its trace."""
        st = self.st
        trace_id = self._new_trace("test call", model)
        t0 = time.perf_counter()
        try:
            principal = await self._principal(session, None)
            principal.check_model(model)
            await st.backend.check_model(model)
            req = ChatRequest(model=model, messages=[Message("user", TEST_PROMPT)], max_tokens=64)
            ctx = CallContext(trace_id=trace_id, project=call_project(principal.policy, None), key=principal.policy,
                              metadata={"source": "dashboard test call"})
            resp = await asyncio.wait_for(st.backend.achat(model, req, ctx), TEST_TIMEOUT_SECONDS)
            result = {"ok": True, "text": resp.text, "cost": resp.cost, "target": resp.metadata.target,
                      "tokens": resp.usage.input_tokens + resp.usage.output_tokens if resp.usage else None}
        except Exception as exc:  # noqa: BLE001 - the result of the test is the error
            err = to_api_error(exc)
            result = {"ok": False, "error": redact(err.message), "status": err.status}
        result["latency_ms"] = (time.perf_counter() - t0) * 1000.0
        result["trace_id"] = trace_id
        await self._settled()
        return result

    async def _principal(self, session: Session, as_key: str | None) -> Principal:
        policy = await self.web.sessions.policy(session)
        if as_key:
            if self.st.keys is None:
                raise BadRequest("this gateway has no virtual keys")
            verified = await self.st.keys.verify(as_key)
            problem = wider_than(policy, verified.policy) if policy is not None else None
            if problem is not None:
                raise Forbidden(f"cannot call as key {verified.id}: it is not within the limits of your own key "
                                f"{policy.key_id} ({problem[1]}); the Playground calls as a pasted key only when "
                                "that key may do no more than yours", code="key_wider_than_yours")
            return Principal("key", verified.id, verified.policy)
        return Principal("master") if policy is None else Principal("key", policy.key_id, policy)

    def _new_trace(self, source: str, model: str) -> str:
        trace_id = f"tr_{uuid.uuid4().hex}"
        self.st.backend.gateway.traces.create({"source": f"dashboard {source}", "model": model}, id=trace_id)
        return trace_id

    async def _settled(self) -> None:
        """Wait (briefly) until the call record is written, so the trace link shows it at once."""
        await asyncio.to_thread(self.st.backend.store.flush, 5.0)


def _line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n"


def _error(exc: BaseException, trace_id: str | None = None) -> Response:
    return script_error(to_api_error(exc), trace_id)
