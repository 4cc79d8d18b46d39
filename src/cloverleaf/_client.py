"""``Client`` and ``AsyncClient``: the SDK's front door.

A client owns its settings, its connection pool and (when configured) a gateway; nothing
is global. Calls with a plain model id go straight to the :class:`Engine`. When the
settings define routes, limits, budgets, a store, a breaker or ``gateway = true``, calls
go through ``cloverleaf.gateway.Gateway`` (imported only then, so SDK-only users never pay
for it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _attachment_loads as attachment_loads
from ._config import Settings
from ._context import CallContext
from ._engine import Engine
from ._errors import CloverleafError, ConfigError
from ._litellm_names import option_advice
from ._options import CALL_OPTIONS, CallOptions, ChatOptions, build_request, check_options
from ._resolve import Target, embedding_model
from ._streaming import AsyncStream, Stream
from ._tools import arun_tools, run_tool, tool_loop
from ._types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    ToolCall,
    ToolResult,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    # the one lazy hook into the gateway (Client.gateway); types only here, the import is in the property
    from .gateway import BreakerSnapshot, Gateway, TraceAPI


def _at_least_one(name: str, value: Any) -> None:
    """A count or size the caller gives must be a whole number of at least 1: 0 or less means
    nothing, and providers would ignore it or fail each in their own words."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")


def _settings(config: Settings | str | os.PathLike[str] | None, overrides: dict[str, Any]) -> Settings:
    if isinstance(config, Settings):
        return config
    return Settings.load(config, **overrides)


class _Base:
    def __init__(self, config: Settings | str | os.PathLike[str] | None = None, **overrides: Any) -> None:
        self.settings = _settings(config, overrides)
        self.engine = Engine(self.settings)
        self._gateway: Gateway | None = None
        #: Held while the gateway is built: the first calls of a web app's threads come at once,
        #: and each built its own (its own limits, budgets and breakers; threads close() missed).
        self._gateway_lock = threading.Lock()
        self._closed = False
        if self.settings.privacy:
            _ = self.engine.privacy  # a mistake in [privacy] is reported now, not on the first call
        if self.settings.uses_gateway:   # likewise the gateway's tables (parsed only: nothing is opened)
            from .gateway import check_settings

            check_settings(self.settings)

    # -- shared, I/O-free preparation --------------------------------------------------------
    def _model(self, model: str | None) -> str:
        model = model or self.settings.default_model
        if not model:
            raise ConfigError("no model given: pass model='provider/model' (e.g. 'openai/gpt-4o-mini') or set "
                              "CLOVERLEAF_MODEL; 'fake/echo' works offline")
        return model

    def _prepare(self, model: str | None, messages: Any,
                 options: Mapping[str, Any]) -> tuple[str, ChatRequest, dict[str, Any]]:
        if self._closed:
            raise _closed_error()
        check_options(options)
        model = self._model(model)
        call = {k: options[k] for k in CALL_OPTIONS if k in options}
        req = build_request(model, messages, options)
        return model, req, call

    def _target(self, model: str, call: dict[str, Any]) -> Target:
        return self.engine.resolve(model, api_key=call.get("api_key"), base_url=call.get("base_url"),
                                   max_retries=call.get("max_retries"), timeout=call.get("timeout"))

    def _context(self, call: dict[str, Any]) -> CallContext | None:
        if not any(k in call for k in ("trace_id", "project", "metadata", "cache", "privacy", "data_class", "timeout",
                                       "max_retries")):
            return None
        cache = call.get("cache")
        if cache not in (None, True, False, "refresh"):
            raise ConfigError(f"cache={cache!r}: use cache=False (no cache for this call) or cache=\"refresh\" "
                              "(ask the provider and store the new answer)")
        return CallContext(trace_id=call.get("trace_id"), project=call.get("project"),
                           metadata=dict(call.get("metadata") or {}), cache=cache, privacy=call.get("privacy"),
                           data_class=call.get("data_class"), timeout=call.get("timeout"),
                           max_retries=call.get("max_retries"))

    # -- privacy on direct calls (the gateway applies it to routes itself) -------------------
    def _privacy(self, call: dict[str, Any]) -> Any:
        """The policy for a direct call, or None when nothing restricts it (the common case:
        no per-call work beyond two dict lookups)."""
        guard = self.engine.privacy
        privacy, data_class = call.get("privacy"), call.get("data_class")
        if privacy is None and data_class is None and guard.config.default == "any":
            return None
        decision = guard.config.decide(privacy=privacy, data_class=data_class)
        return decision if decision.local_only else None

    def _checked_target(self, model: str, call: dict[str, Any]) -> Target:
        decision = self._privacy(call)
        target = self._private_target(model, call, decision)
        if decision is not None:
            self.engine.privacy.require(decision, [target])
            pinned: Target = self.engine.privacy.pinned(target)   # and each connection is checked (DNS rebinding)
            return pinned
        return target

    async def _achecked_target(self, model: str, call: dict[str, Any]) -> Target:
        decision = self._privacy(call)
        target = self._private_target(model, call, decision)
        if decision is not None:
            await self.engine.privacy.arequire(decision, [target])
            pinned: Target = self.engine.privacy.pinned(target)   # and each connection is checked (DNS rebinding)
            return pinned
        return target

    def _private_target(self, model: str, call: dict[str, Any], decision: Any) -> Target:
        try:
            return self._target(model, call)
        except ConfigError:
            if decision is not None:   # a cloud model without a key: the refusal is the better answer
                self.engine.privacy.refuse_unresolvable(decision, model, self.settings)
            raise

    def _use_gateway(self, call: dict[str, Any]) -> bool:
        if not self.settings.uses_gateway and (self._gateway is None or not self._gateway.has_registrations):
            return False   # (merely reading .breakers or .traces made a gateway, and must not route calls)
        if any(call.get(k) is not None for k in ("api_key", "base_url")):
            raise ConfigError("per-call api_key/base_url address one provider directly and cannot be combined with "
                              "the gateway's routes and limits; configure the target in cloverleaf.toml instead")
        return True

    def _embed_request(self, model: str | None, inputs: Any, dimensions: int | None, input_type: str | None,
                       call: Mapping[str, Any]) -> tuple[str, EmbeddingRequest, dict[str, Any]]:
        if self._closed:
            raise _closed_error()
        _check_call(call)
        model = model or self.settings.embedding_model
        if not model:
            raise ConfigError("no embedding model given: pass model= or set CLOVERLEAF_EMBEDDING_MODEL "
                              "('simple' works offline)")
        model = embedding_model(model, self.engine.resolver.known, self.engine.registry)
        _at_least_one("dimensions", dimensions)
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("embed inputs must be strings")
        return model, EmbeddingRequest(model=model, inputs=texts, dimensions=dimensions, input_type=input_type), dict(call)

    def _image_request(self, model: str | None, prompt: str, n: int, size: str | None, quality: str | None,
                       response_format: str | None, call: Mapping[str, Any]) -> tuple[str, ImageRequest, dict[str, Any]]:
        if self._closed:
            raise _closed_error()
        _check_call(call)
        model = model or self.settings.image_model
        if not model:
            raise ConfigError("no image model given: pass model= (e.g. 'openai/gpt-image-1') or set "
                              "CLOVERLEAF_IMAGE_MODEL")
        if response_format not in (None, "b64_json", "url"):
            raise ConfigError("response_format for images must be 'b64_json' or 'url'")
        _at_least_one("n", n)
        return model, ImageRequest(model=model, prompt=prompt, n=n, size=size, quality=quality,
                                   response_format=response_format), dict(call)  # type: ignore[arg-type]

    @property
    def gateway(self) -> Gateway:
        """The gateway (routes, fallback, breakers, limits, budgets, traces), created on first use,
        once, whichever threads ask at the same time."""
        gateway = self._gateway
        if gateway is None:
            with self._gateway_lock:
                gateway = self._gateway
                if gateway is None:
                    from .gateway import Gateway

                    gateway = self._gateway = Gateway(self.settings, self.engine)
        return gateway

    @property
    def breakers(self) -> Mapping[str, BreakerSnapshot]:
        return self.gateway.breakers

    @property
    def traces(self) -> TraceAPI:
        return self.gateway.traces

    @property
    def fake(self) -> Any:
        """The in-process fake upstream behind ``fake/...`` models: script replies and faults."""
        return self.engine.fake


class Client(_Base):
    """Synchronous client. Thread-safe; reuse one per process."""

    def chat(self, model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> ChatResponse:
        model, req, call = self._prepare(model, messages, options)
        if call.get("run_tools") and req.tools:
            return self._chat_with_tools(model, req, call)
        return self._send(model, req, call)

    def _send(self, model: str, req: ChatRequest, call: dict[str, Any]) -> ChatResponse:
        if self._use_gateway(call):
            return self.gateway.chat(model, req, self._context(call))
        return self.engine.chat(self._checked_target(model, call), req)

    def _chat_with_tools(self, model: str, req: ChatRequest, call: dict[str, Any]) -> ChatResponse:
        with _ToolTurns(req, call) as turns:
            while (calls := turns.answered(self._send(model, turns.request, call))) is not None:
                turns.ran([run_tool(c, turns.tools) for c in calls])
            return turns.answer

    def stream(self, model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> Stream:
        model, req, call = self._prepare(model, messages, options)
        _no_tool_loop(call)
        if self._use_gateway(call):
            return Stream(self.gateway.stream(model, req, self._context(call)), req.response_format)
        return Stream(self._direct_stream(model, req, call), req.response_format)

    def _direct_stream(self, model: str, req: ChatRequest, call: dict[str, Any]) -> Iterator[Any]:
        # resolved here, not inside the generator, so a config error raises at the call site
        return self.engine.stream(self._checked_target(model, call), req)

    def embed(self, model: str | None, inputs: str | list[str], *, dimensions: int | None = None,
              input_type: str | None = None, **options: Unpack[CallOptions]) -> EmbeddingResponse:
        model, req, call = self._embed_request(model, inputs, dimensions, input_type, options)
        if self._use_gateway(call):
            return self.gateway.embed(model, req, self._context(call))
        return self.engine.embed(self._checked_target(model, call), req)

    def generate_image(self, model: str | None, prompt: str, *, n: int = 1, size: str | None = None,
                       quality: str | None = None, response_format: str | None = None,
                       **options: Unpack[CallOptions]) -> ImageResponse:
        model, req, call = self._image_request(model, prompt, n, size, quality, response_format, options)
        if self._use_gateway(call):
            return self.gateway.image(model, req, self._context(call))
        return self.engine.image(self._checked_target(model, call), req)

    def close(self) -> None:
        self._closed = True
        with self._gateway_lock:   # a gateway being built now is closed too, not left running
            gateway = self._gateway
        if gateway is not None:
            gateway.close()
        self.engine.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """Asynchronous client: the same options, awaitable calls. Reuse one per event loop."""

    async def chat(self, model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> ChatResponse:
        model, req, call = self._prepare(model, messages, options)
        if call.get("run_tools") and req.tools:
            return await self._achat_with_tools(model, req, call)
        return await self._asend(model, req, call)

    async def _asend(self, model: str, req: ChatRequest, call: dict[str, Any]) -> ChatResponse:
        if self._use_gateway(call):
            return await self.gateway.achat(model, req, self._context(call))
        return await self.engine.achat(await self._achecked_target(model, call), req)

    async def _achat_with_tools(self, model: str, req: ChatRequest, call: dict[str, Any]) -> ChatResponse:
        with _ToolTurns(req, call) as turns:
            while (calls := turns.answered(await self._asend(model, turns.request, call))) is not None:
                turns.ran(await arun_tools(calls, turns.tools))
            return turns.answer

    def stream(self, model: str | None, messages: Any, **options: Unpack[ChatOptions]) -> AsyncStream:
        model, req, call = self._prepare(model, messages, options)
        _no_tool_loop(call)
        if self._use_gateway(call):
            return AsyncStream(self.gateway.astream(model, req, self._context(call)), req.response_format)
        return AsyncStream(self._adirect_stream(model, req, call), req.response_format)

    def _adirect_stream(self, model: str, req: ChatRequest, call: dict[str, Any]) -> AsyncIterator[Any]:
        decision = self._privacy(call)
        target = self._private_target(model, call, decision)
        if decision is not None:
            return self._aguarded_stream(target, req, decision)
        return self.engine.astream(target, req)

    async def _aguarded_stream(self, target: Target, req: ChatRequest, decision: Any) -> AsyncIterator[Any]:
        await self.engine.privacy.arequire(decision, [target])  # before the stream opens a connection
        async for event in self.engine.astream(self.engine.privacy.pinned(target), req):
            yield event

    async def embed(self, model: str | None, inputs: str | list[str], *, dimensions: int | None = None,
                    input_type: str | None = None, **options: Unpack[CallOptions]) -> EmbeddingResponse:
        model, req, call = self._embed_request(model, inputs, dimensions, input_type, options)
        if self._use_gateway(call):
            return await self.gateway.aembed(model, req, self._context(call))
        return await self.engine.aembed(await self._achecked_target(model, call), req)

    async def generate_image(self, model: str | None, prompt: str, *, n: int = 1, size: str | None = None,
                             quality: str | None = None, response_format: str | None = None,
                             **options: Unpack[CallOptions]) -> ImageResponse:
        model, req, call = self._image_request(model, prompt, n, size, quality, response_format, options)
        if self._use_gateway(call):
            return await self.gateway.aimage(model, req, self._context(call))
        return await self.engine.aimage(await self._achecked_target(model, call), req)

    async def aclose(self) -> None:
        self._closed = True
        with self._gateway_lock:
            gateway = self._gateway
        if gateway is not None:
            await gateway.aclose()
        await self.engine.aclose()

    def _close_after_its_loop(self) -> None:
        """Close a client whose event loop has closed (the module-level functions' client of a
        finished ``asyncio.run()``), where :meth:`aclose` cannot run: its gateway's threads
        (cleanup, store writer, bridge loop, telemetry export) stop and its store is flushed and
        closed, and its transport's sockets are closed directly. Letting go of the transport
        alone left every finished run's gateway threads running for good."""
        self._closed = True
        with self._gateway_lock:
            gateway = self._gateway
        if gateway is not None:
            gateway.close()
        self.engine.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _ToolTurns:
    """A chat with ``run_tools``, but for its I/O: the sync and async clients each only send the
    turns and run the tools (with and without ``await``), driving this one object over the pure
    :func:`tool_loop`. Used as a ``with`` block: every turn re-sends the conversation, and its
    attachments load once for all of them."""

    __slots__ = ("_req", "_loop", "_loads", "tools", "request", "answer")

    def __init__(self, req: ChatRequest, call: Mapping[str, Any]) -> None:
        self._req = req
        self._loop = tool_loop(req.messages, int(call.get("max_tool_turns", 8)))
        self.tools = {t.name: t for t in req.tools or ()}
        #: the next turn to send
        self.request = _with_messages(req, next(self._loop))
        self._loads: Any = None

    def __enter__(self) -> _ToolTurns:
        self._loads = attachment_loads.begin()
        return self

    def __exit__(self, *exc: object) -> None:
        attachment_loads.end(self._loads)

    def answered(self, response: ChatResponse) -> list[ToolCall] | None:
        """The tool calls ``response`` asks to run; None when it is the answer (:attr:`answer`)."""
        try:
            calls: list[ToolCall] = self._loop.send(response)  # type: ignore[assignment]
        except StopIteration as stop:
            self.answer: ChatResponse = stop.value
            return None
        return calls

    def ran(self, results: list[ToolResult]) -> None:
        """The tools' results: the next turn is the conversation with them."""
        self.request = _with_messages(self._req, self._loop.send(results))


def _check_call(call: Mapping[str, Any]) -> None:
    unknown = set(call) - CALL_OPTIONS
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}{option_advice(unknown)}; known: {sorted(CALL_OPTIONS)}")


def _with_messages(req: ChatRequest, messages: Any) -> ChatRequest:
    from dataclasses import replace

    return replace(req, messages=list(messages))


def _no_tool_loop(call: Mapping[str, Any]) -> None:
    """``run_tools`` drives several model turns, which one stream is not: say so, rather than
    stream the first turn's tool calls and run nothing."""
    if call.get("run_tools"):
        raise ConfigError("run_tools=True runs your tools between the turns of chat(); a stream is one turn, whose "
                          "tool calls you run yourself (the 'tool_call' events): use chat(..., run_tools=True), or "
                          "stream without run_tools")


def _closed_error() -> CloverleafError:
    """A call on a closed client: it would answer, but its record, limits and spend have no
    writer any more (and its gateway thread would start again)."""
    return CloverleafError("this client is closed: make a new Client (or use it in a `with` block and call "
                           "it inside the block)")
