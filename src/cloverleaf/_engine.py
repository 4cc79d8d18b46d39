"""One call to one target: resolve, check, build, send, parse, price.

The engine is the SDK's working core and the gateway's unit of work. It resolves a model
id to a :class:`Target` once (cached, so the hot path never re-reads configuration or
rebuilds a client), checks the capability matrix before any I/O, hands the adapter's
request to the transport, maps errors, and finishes the response (structured output,
cost, latency). Sync and async paths differ only in the line that waits for the network;
everything before and after is shared.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import fields, replace
from typing import Any, TypeVar

from . import _attachment_checks as attachment_checks
from . import _attachment_loads as attachment_loads
from . import _context_edits as context_edits
from . import _documents as documents
from . import _split_images as split_images
from ._bearer import aauthorized, authorized
from ._capabilities import Capability
from ._config import Settings
from ._errors import (
    REDACTED,
    CloverleafError,
    ProviderError,
    UnsupportedCapability,
)
from ._estimate import ATTACHMENT_ESTIMATE, answer_tokens, text_units
from ._generation import raise_if_failed
from ._http import HttpRequest, HttpResponse, is_success, kept_headers, request_id
from ._resolve import CallSettings, ModelRegistry, Resolver, Target
from ._secret_urls import masked_url
from ._stream_run import StreamRun, read_tail, read_tail_sync
from ._structured import parse_output
from ._types import (
    Attachment,
    ChatRequest,
    ChatResponse,
    Document,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    Message,
    StreamEvent,
    Text,
    ToolResult,
    Usage,
)
from ._upstream_errors import scrubbed, upstream_error
from .providers.registry import require
from .transport.auto import Transport
from .transport.base import Timeouts

#: What embedding and image calls parse into (their responses share metadata, usage and cost).
_Many = TypeVar("_Many", EmbeddingResponse, ImageResponse)

def _attachments(req: ChatRequest) -> list[tuple[Any, Any, Attachment]]:
    """Every attachment of ``req`` as (what holds it, its key there, it): in messages, inside
    tool results and inside documents (see ``documents.put``)."""
    found: list[tuple[Any, Any, Attachment]] = []
    for msg in req.messages:
        for i, part in enumerate(msg.parts):
            if isinstance(part, Attachment):
                found.append((msg.parts, i, part))
            else:
                found.extend(documents.nested_attachments(part))
    return found


def _own_messages(req: ChatRequest) -> ChatRequest:
    """A copy of ``req`` whose messages, part lists, tool results and documents are its own, so
    resolving its attachments in place leaves the caller's messages as they were (a Message kept
    for the next call still holds the attachment as given, not megabytes of bytes)."""
    out = ChatRequest(*_chat_fields(req))
    out.messages = [Message(m.role, parts=[_own_part(p) for p in m.parts], name=m.name, extra=m.extra)
                    for m in req.messages]
    return out


def _own_part(part: Any) -> Any:
    if isinstance(part, ToolResult | Document) and isinstance(part.content, list):
        return replace(part, content=list(part.content))
    if isinstance(part, Document):
        return replace(part)
    return part


class Engine:
    def __init__(self, settings: Settings, transport: Transport | None = None) -> None:
        self.settings = settings
        timeouts = Timeouts(connect=settings.connect_timeout, first_byte=settings.first_byte_timeout,
                            idle=settings.idle_timeout, total=settings.timeout)
        self.transport = transport or Transport(timeouts=timeouts, max_retries=settings.max_retries,
                                                http_client=settings.http_client)
        self.use_transport(self.transport)
        self.registry = ModelRegistry(settings.models)
        self.resolver = Resolver(settings, self.registry)
        self._targets: dict[tuple[Any, ...], Target] = {}
        self._attachment_policy: Any = None
        self._privacy: Any = None
        #: Validate structured output into ``ChatResponse.parsed`` (a StructuredOutputError when
        #: it does not parse). The server turns this off: its clients validate for themselves,
        #: as they would against the provider, and must get the text even when it is cut off.
        self.validate_structured = True

    def use_transport(self, transport: Transport) -> None:
        """Send through ``transport``, with the fake provider's in-process upstream mounted on
        its host (built on first use), as an httpx mount: the transport knows no provider."""
        from .providers.fake import FAKE_ORIGIN, new_upstream

        transport.mount(FAKE_ORIGIN, new_upstream)
        self.transport = transport

    @property
    def fake(self) -> Any:
        """The in-process fake upstream behind ``fake/...`` models: script replies and faults."""
        from .providers.fake import FAKE_ORIGIN

        return self.transport.mounted(FAKE_ORIGIN)

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, model_id: str, *, api_key: str | None = None, base_url: str | None = None,
                max_retries: int | None = None, timeout: float | None = None) -> Target:
        key = (model_id, api_key, base_url, max_retries, timeout, self.registry.version)
        target = self._targets.get(key)
        if target is None:
            target = self.resolver.resolve(model_id, CallSettings(api_key, base_url, max_retries, timeout))
            if len(self._targets) > 4096:
                self._targets.clear()
            self._targets[key] = target
        return target

    # -- checks ----------------------------------------------------------------------------
    def check(self, target: Target, req: ChatRequest, *, untyped_attachments: bool = True) -> None:
        """Raise UnsupportedCapability before any I/O when the request needs what the
        provider cannot do, then any configuration fault of the target (no key, base URL or
        region): capability first, so the user hears what no key can fix. Never reroutes.

        ``untyped_attachments=False`` skips attachments whose type is known only once loaded
        (the check before loading them; the full check runs again after)."""
        _require_operation(target, "chat")
        caps = target.adapter.capabilities
        needed: list[Capability] = [Capability.TEXT]
        if req.stream:
            needed.append(Capability.STREAMING)
        if req.tools:
            needed.append(Capability.STREAM_TOOLS if req.stream else Capability.TOOLS)
        if req.response_format is not None and req.response_format.type != "text":
            needed.append(Capability.STREAM_STRUCTURED if req.stream else Capability.STRUCTURED)
        if req.reasoning is not None:
            needed.append(Capability.REASONING)
        found = attachment_checks.needs(req, untyped_attachments=untyped_attachments)
        needed.extend(found.capabilities)
        require(target.provider, caps, dict.fromkeys(needed))
        attachment_checks.check_placement(target.provider, caps, found)
        target.ready()

    def _resolve_attachments(self, target: Target, req: ChatRequest) -> ChatRequest:
        """``req`` with its attachments loaded and checked, in a copy (``req`` itself when it
        has none: nothing is copied on the plain-text path)."""
        if not _attachments(req):  # loaded bytes too: size caps and type checks apply to all
            return req
        self.check(target, req, untyped_attachments=False)  # capabilities and configuration before any download
        from .attachments.request import resolve_all

        req = _own_messages(req)
        found = _attachments(req)
        given = [f[2] for f in found]
        copies = resolve_all(attachment_loads.loaded(given), self.attachment_policy)
        attachment_loads.keep(given, copies)
        for (holder, key, _), resolved in zip(found, copies):
            documents.put(holder, key, resolved)
        return req

    async def _aresolve_attachments(self, target: Target, req: ChatRequest) -> ChatRequest:
        """All of the request's attachments at once, under the per-request caps (count, bytes,
        time; see ``attachments.request``); cancelling the call cancels the downloads."""
        if not _attachments(req):
            return req
        self.check(target, req, untyped_attachments=False)  # capabilities and configuration before any download
        from .attachments.request import aresolve_all

        req = _own_messages(req)
        found = _attachments(req)
        given = [f[2] for f in found]
        copies = await aresolve_all(attachment_loads.loaded(given), self.attachment_policy)
        attachment_loads.keep(given, copies)
        for (holder, key, _), att in zip(found, copies):
            documents.put(holder, key, att)
        return req

    @property
    def attachment_policy(self) -> Any:
        if self._attachment_policy is None:
            from .attachments import AttachmentPolicy

            self._attachment_policy = AttachmentPolicy(**self.settings.attachments)
        return self._attachment_policy

    @attachment_policy.setter
    def attachment_policy(self, policy: Any) -> None:
        self._attachment_policy = policy

    @property
    def privacy(self) -> Any:
        """The :class:`~cloverleaf._privacy.PrivacyGuard`: ``[privacy]`` and target locality."""
        if self._privacy is None:
            from ._privacy import PrivacyConfig, PrivacyGuard

            self._privacy = PrivacyGuard(PrivacyConfig.parse(self.settings.privacy), self.registry)
        return self._privacy

    # -- chat -------------------------------------------------------------------------------
    def _build_chat(self, target: Target, req: ChatRequest) -> HttpRequest:
        if req.model != target.model:
            req = replace(req, model=target.model)
        self.check(target, req)
        if not target.adapter.native_documents:
            req = documents.without_documents(req)
        else:
            req = documents.system_documents_as_text(req)
        req = context_edits.for_target(req, target.adapter, target.model, target.cfg)
        try:
            http_req = target.adapter.build_chat(req, target.cfg)
        except ValueError as exc:  # a request the provider's format cannot express: the caller's to fix
            raise target.adapter.invalid(str(exc), target.model) from exc
        return _peer_checked(target, http_req)  # type: ignore[no-any-return]

    def chat(self, target: Target, req: ChatRequest) -> ChatResponse:
        req = self._for_target(target, req, stream=False)
        req = self._resolve_attachments(target, req)
        for last in (False, True):   # once more when the adapter learned from the refusal (resend_after)
            http_req = authorized(self._build_chat(target, req), target, self.transport)
            t0 = time.perf_counter()
            resp = self.transport.send(http_req, max_retries=target.cfg.max_retries,
                                       hint=target.adapter.connect_hint(target.cfg))
            if last or not _resend(target, req, resp):
                break
        return self._finish_chat(target, req, resp, t0)

    async def achat(self, target: Target, req: ChatRequest) -> ChatResponse:
        req = self._for_target(target, req, stream=False)
        req = await self._aresolve_attachments(target, req)
        for last in (False, True):
            if (http_req := self._build_chat(target, req)) and target.adapter.bearer_source(target.cfg):
                http_req = await aauthorized(http_req, target, self.transport)   # Vertex: no coroutine otherwise
            t0 = time.perf_counter()
            resp = await self.transport.asend(http_req, max_retries=target.cfg.max_retries,
                                              hint=target.adapter.connect_hint(target.cfg))
            if last or not _resend(target, req, resp):
                break
        return self._finish_chat(target, req, resp, t0)

    @staticmethod
    def _for_target(target: Target, req: ChatRequest, *, stream: bool) -> ChatRequest:
        if req.model == target.model and req.stream == stream:
            return req
        # a shallow copy with two fields changed; dataclasses.replace() costs ~5x more per call
        out = ChatRequest(*_chat_fields(req))
        out.model = target.model
        out.stream = stream
        return out

    def _finish_chat(self, target: Target, req: ChatRequest, resp: HttpResponse, t0: float) -> ChatResponse:
        if not is_success(resp.status):
            raise upstream_error(target, resp)
        try:
            return self._parsed_chat(target, req, resp, t0)
        except ProviderError as exc:   # an error inside a 200 (``{"error": ...}``) echoes a key as an error response does
            scrubbed(target, exc)
            raise

    def _parsed_chat(self, target: Target, req: ChatRequest, resp: HttpResponse, t0: float) -> ChatResponse:
        try:
            out = target.adapter.parse_chat(resp, req)
        except CloverleafError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise target.adapter.malformed(f"{type(exc).__name__}: {exc}", resp, target.model) from exc
        md = out.metadata
        md.latency_ms = (time.perf_counter() - t0) * 1000.0
        md.request_id = md.request_id or request_id(resp.headers)
        md.headers = kept_headers(resp.headers)
        return self._finalize(target, req, out)

    def _finalize(self, target: Target, req: ChatRequest, out: ChatResponse) -> ChatResponse:
        out.metadata.target = target.name
        if not out.usage.reported:  # estimated, never a 0 for what was used (still unreported: unpriced)
            out.usage.input_tokens = out.usage.input_tokens or self.estimate_tokens(req)
            out.usage.output_tokens = out.usage.output_tokens or answer_tokens(out)
        out.cost = self.cost(target, out.usage)
        raise_if_failed(out, target.adapter.name, target.model)   # its response keeps usage and cost
        self.parse_structured(req, out)
        return out

    def parse_structured(self, req: ChatRequest, out: ChatResponse) -> None:
        """Validate ``out``'s structured output into ``out.parsed`` (a StructuredOutputError
        when it does not parse), unless validation is off or the model called tools instead of
        answering. The one rule for a provider's answer and for a cached one, so a cache hit
        is validated exactly as the call that stored it was."""
        fmt = req.response_format
        if self.validate_structured and fmt is not None and fmt.type != "text" and out.finish_reason != "tool_calls":
            out.parsed = parse_output(out, fmt)

    # -- streaming --------------------------------------------------------------------------
    def stream(self, target: Target, req: ChatRequest) -> Iterator[StreamEvent]:
        """Events as they arrive; the last is ``done`` carrying the assembled ``response``.

        Reading stops at the provider's terminal event (the decoder's ``done``: OpenAI's
        ``[DONE]``, Anthropic's ``message_stop``, Responses' ``response.completed``, Bedrock's
        ``messageStop`` with its ``metadata``, Ollama's ``done: true``, Gemini's chunk carrying
        ``finishReason`` with the final usage, its last), as the official SDKs stop: an upstream
        that then drops the connection before the body's end, or keeps it open, has still given
        the whole answer and its usage. The transport closes a connection left before its body
        ended instead of pooling it. A Gemini ``finishReason`` without usage (a proxy that sends
        it early) ends nothing: that stream is read to the end.

        Both this and :meth:`astream` first give the rest of the body (usually only the chunked
        encoding's closing chunk, often a packet behind the terminal event) up to
        ``TAIL_GRACE_SECONDS`` to arrive, so the connection goes back to the pool rather than
        every stream opening a new one (a TLS handshake to a real provider). Here the transport
        bounds the reads (``StreamHandle.bounded``); where it cannot (a mount answering
        in-process), the stream stops at once."""
        req = self._for_target(target, req, stream=True)
        req = self._resolve_attachments(target, req)
        for last in (False, True):   # once more when the adapter learned from the refusal (resend_after)
            http_req = authorized(self._build_chat(target, req), target, self.transport)
            run = StreamRun(self, target, req)
            with self.transport.stream(http_req, max_retries=target.cfg.max_retries,
                                       hint=target.adapter.connect_hint(target.cfg)) as handle:
                if not is_success(handle.status):
                    refusal = HttpResponse(handle.status, handle.headers, b"".join(handle.chunks()), http_req.url)
                    if last or not _resend(target, req, refusal):
                        raise upstream_error(target, refusal)
                    continue
                run.opened(handle.headers)
                chunks = handle.chunks()
                try:
                    for chunk in chunks:
                        yield from run.feed(chunk)
                        if run.done is not None:   # complete: leaving closes this connection unless its body ended too
                            read_tail_sync(handle.bounded, chunks)
                            break
                except CloverleafError as exc:
                    run.broke(exc)
                    raise
            break
        yield from run.closed()

    async def astream(self, target: Target, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        req = self._for_target(target, req, stream=True)
        req = await self._aresolve_attachments(target, req)
        for last in (False, True):
            if (http_req := self._build_chat(target, req)) and target.adapter.bearer_source(target.cfg):
                http_req = await aauthorized(http_req, target, self.transport)   # Vertex: no coroutine otherwise
            run = StreamRun(self, target, req)
            async with self.transport.astream(http_req, max_retries=target.cfg.max_retries,
                                              hint=target.adapter.connect_hint(target.cfg)) as handle:
                if not is_success(handle.status):
                    body = b"".join([c async for c in handle.chunks()])
                    refusal = HttpResponse(handle.status, handle.headers, body, http_req.url)
                    if last or not _resend(target, req, refusal):
                        raise upstream_error(target, refusal)
                    continue
                run.opened(handle.headers)
                chunks = handle.chunks()
                try:
                    async for chunk in chunks:
                        for ev in run.feed(chunk):
                            yield ev
                        if run.done is not None:   # complete, whatever the connection does next
                            await read_tail(chunks)
                            break
                except CloverleafError as exc:
                    run.broke(exc)
                    raise
            break
        for ev in run.closed():
            yield ev

    # -- embeddings and images --------------------------------------------------------------
    def embed(self, target: Target, req: EmbeddingRequest) -> EmbeddingResponse:
        req = self._prep_embed(target, req)
        local = getattr(target.adapter, "embed_local", None)
        t0 = time.perf_counter()
        if local is not None:
            computed: EmbeddingResponse = local(req, target.cfg)
            return self._finish_embed(target, computed, t0)
        built = authorized(_peer_checked(target, target.adapter.build_embed(req, target.cfg)), target, self.transport)
        hint = target.adapter.connect_hint(target.cfg)
        resps = [self.transport.send(r, max_retries=target.cfg.max_retries, hint=hint) for r in _as_list(built)]
        return self._parse_many(target, req, built, resps, target.adapter.parse_embed, t0)

    async def aembed(self, target: Target, req: EmbeddingRequest) -> EmbeddingResponse:

        req = self._prep_embed(target, req)
        local = getattr(target.adapter, "embed_local", None)
        t0 = time.perf_counter()
        if local is not None:
            computed: EmbeddingResponse = await asyncio.to_thread(local, req, target.cfg)
            return self._finish_embed(target, computed, t0)
        built = await aauthorized(_peer_checked(target, target.adapter.build_embed(req, target.cfg)), target,
                                  self.transport)
        hint = target.adapter.connect_hint(target.cfg)
        resps = await asyncio.gather(*(self.transport.asend(r, max_retries=target.cfg.max_retries, hint=hint)
                                       for r in _as_list(built)))
        return self._parse_many(target, req, built, list(resps), target.adapter.parse_embed, t0)

    def image(self, target: Target, req: ImageRequest) -> ImageResponse:
        req = self._prep_image(target, req)
        built = authorized(_peer_checked(target, target.adapter.build_image(req, target.cfg)), target, self.transport)
        t0 = time.perf_counter()
        hint = target.adapter.connect_hint(target.cfg)
        outcomes = split_images.send_pieces(
            lambda r: self.transport.send(r, max_retries=target.cfg.max_retries, hint=hint), _as_list(built))
        return self._images(target, req, built, outcomes, t0)

    async def aimage(self, target: Target, req: ImageRequest) -> ImageResponse:

        req = self._prep_image(target, req)
        built = await aauthorized(_peer_checked(target, target.adapter.build_image(req, target.cfg)), target,
                                  self.transport)
        t0 = time.perf_counter()
        hint = target.adapter.connect_hint(target.cfg)
        outcomes = await split_images.asend_pieces(
            lambda r: self.transport.asend(r, max_retries=target.cfg.max_retries, hint=hint), _as_list(built))
        return self._images(target, req, built, outcomes, t0)

    def _images(self, target: Target, req: ImageRequest, built: HttpRequest | list[HttpRequest],
                outcomes: list[split_images.Outcome], t0: float) -> ImageResponse:
        """The answer of an image call; of a split one, what its requests that succeeded made,
        marked ``incomplete`` when others failed (:mod:`._split_images`)."""
        if not isinstance(built, list):
            resps = [o for o in outcomes if isinstance(o, HttpResponse)]
            return self._parse_many(target, req, built, resps, target.adapter.parse_image, t0)
        made, failure, failed = split_images.answered(target, outcomes)
        out = self._parse_many(target, req, made, made, target.adapter.parse_image, t0)
        if failure is not None:
            out.incomplete = split_images.incomplete_note(req.n, len(out.images), len(built), len(outcomes), failed,
                                                          failure)
        return out

    def _prep_embed(self, target: Target, req: EmbeddingRequest) -> EmbeddingRequest:
        require(target.provider, target.adapter.capabilities, [Capability.EMBEDDINGS])
        _require_operation(target, "embeddings")
        if req.token_ids is not None:
            if not target.adapter.takes_token_ids(target.cfg):
                raise target.adapter.invalid(
                    f"provider {target.provider!r} does not take token-id embedding input (only OpenAI and Azure "
                    "do, or a row with embedding_token_ids = true); send the text instead", target.model)
            if not req.token_ids:
                raise target.adapter.invalid("embed needs at least one input")
        elif not req.inputs:
            raise target.adapter.invalid("embed needs at least one input text")
        else:
            empty = next((i for i, text in enumerate(req.inputs) if not text), None)
            if empty is not None:   # every provider refuses it; say so before a round trip (as the server does)
                raise target.adapter.invalid(f"embed input {empty} is an empty string; send text to embed")
        target.ready()  # then what configuration lacks (a key, a base_url, a region)
        return replace(req, model=target.model) if req.model != target.model else req

    def _prep_image(self, target: Target, req: ImageRequest) -> ImageRequest:
        require(target.provider, target.adapter.capabilities, [Capability.IMAGE_GENERATION])
        _require_operation(target, "images")
        target.ready()
        if not req.prompt.strip():
            raise target.adapter.invalid("image generation needs a non-empty prompt")
        return replace(req, model=target.model) if req.model != target.model else req

    def _parse_many(self, target: Target, req: Any, built: Any, resps: list[HttpResponse],
                    parse: Callable[[Any, Any], _Many], t0: float) -> _Many:
        for r in resps:
            if not is_success(r.status):
                raise upstream_error(target, r)
        try:
            out = parse(resps if isinstance(built, list) else resps[0], req)
        except CloverleafError as exc:
            scrubbed(target, exc)
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise scrubbed(target, target.adapter.malformed(f"{type(exc).__name__}: {exc}", resps[-1],
                                                            target.model)) from exc
        out.metadata.request_id = out.metadata.request_id or request_id(resps[-1].headers)
        out.metadata.headers = kept_headers(resps[-1].headers)
        out = self._finish_embed(target, out, t0)
        return target.priced_image(req, out) if isinstance(out, ImageResponse) else out

    def _finish_embed(self, target: Target, out: _Many, t0: float) -> _Many:
        out.metadata.latency_ms = (time.perf_counter() - t0) * 1000.0
        out.metadata.target = target.name
        if target.price is not None:
            out.cost = target.price.cost(out.usage)
        return out

    # -- accounting -------------------------------------------------------------------------
    def cost(self, target: Target, usage: Usage) -> float | None:
        """What the upstream reported it charged, else the price table's figure, else None."""
        if usage.cost is not None:
            return usage.cost
        return target.price.cost(usage, target.spec.standard_rate_tiers) if target.price is not None else None

    @staticmethod
    def estimate_tokens(req: ChatRequest, media: list[Attachment] | None = None) -> int:
        """Input tokens estimated before the call, for rate limits and ``count_tokens``: text by
        :func:`~cloverleaf._estimate.text_units` (ASCII at four characters a token, other text
        at a token a UTF-8 byte, which no tokenizer exceeds), an attachment at a flat
        ``ATTACHMENT_ESTIMATE`` — or, given ``media``, at nothing here: the attachments are
        appended to it for the caller to bound per target (the gateway's image and PDF rules)."""
        units = 0
        extra = 0
        for msg in req.messages:
            for part in msg.parts:
                if isinstance(part, Text):
                    text = part.text
                    units += len(text) if text.isascii() else text_units(text)
                elif isinstance(part, Attachment):
                    if media is None:
                        extra += ATTACHMENT_ESTIMATE
                    else:
                        media.append(part)
                elif isinstance(part, Document):
                    for p in documents.plain_parts(part):
                        if isinstance(p, Text):
                            units += text_units(p.text)
                        elif isinstance(p, Attachment):
                            if media is None:
                                extra += ATTACHMENT_ESTIMATE
                            else:
                                media.append(p)
                elif isinstance(part, ToolResult):
                    units += text_units(part.text)
                else:
                    units += text_units(str(getattr(part, "text", "") or getattr(part, "arguments", "")))
            extra += 4
        for tool in req.tools or ():
            units += text_units(tool.name) + text_units(tool.description or "") + text_units(str(tool.parameters))
        return units // 4 + extra + 1

    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()


_chat_fields = operator.attrgetter(*(f.name for f in fields(ChatRequest) if f.init))

_OPERATION_WORDS = {"chat": "chat", "embeddings": "embeddings", "images": "image generation"}


def _resend(target: Target, req: ChatRequest, resp: HttpResponse) -> bool:
    """Whether ``resp``, an upstream's refusal of ``req``, taught the adapter what to leave out
    of the request built anew (:meth:`~.providers.base.Adapter.resend_after`)."""
    return not is_success(resp.status) and target.adapter.resend_after(resp, req, target.cfg)


def _require_operation(target: Target, operation: str) -> None:
    """A base_url given as a full endpoint URL serves that one operation; refuse the others
    instead of appending their path to it."""
    pinned = target.cfg.operation
    if pinned is None or pinned == operation:
        return
    path = target.adapter.operation_paths.get(pinned, "")
    base_url = masked_url(target.cfg.base_url, REDACTED)   # an error's text reaches the caller and the logs
    raise UnsupportedCapability(
        target.name, _OPERATION_WORDS.get(operation, operation),
        hint=(f"its base_url {base_url}{path} is a {_OPERATION_WORDS.get(pinned, pinned)} endpoint; "
              f"use the server's root ({base_url}) as base_url to reach every operation, or add a "
              f"registry entry whose base_url is the {_OPERATION_WORDS.get(operation, operation)} endpoint"))


def _peer_checked(target: Target, built: Any) -> Any:
    """A target's connection check (local-only), head cap (near a deadline) and trace headers
    (a traced call) go with every request built for it to the transport."""
    if target.peer_check is not None or target.head_timeout is not None or target.trace_headers is not None:
        for http_req in _as_list(built):
            if target.peer_check is not None:
                http_req.peer_check = target.peer_check
            if target.head_timeout is not None:
                http_req.head_timeout = target.head_timeout
            if target.trace_headers is not None:
                http_req.headers.update(target.trace_headers)
    return built


def _as_list(built: HttpRequest | list[HttpRequest]) -> list[HttpRequest]:
    return built if isinstance(built, list) else [built]
