"""``get_provider(name, model=...)``: a provider bound to one model, for users who think
in providers rather than model ids. A thin view over a Client — same responses, same
errors — so switching styles never changes behaviour.

A Provider owns the clients it makes (a sync one at once, an async one on first async call)
and closes their connection pools in :meth:`Provider.close` / :meth:`Provider.aclose`, or at the
end of a ``with`` / ``async with`` block; a ``client=`` passed in stays the caller's to close.
Every method has its twin (``chat``/``achat``, ..., ``close``/``aclose``), as the sync/async
rule in :mod:`cloverleaf._sync_async` says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._client import AsyncClient, Client
from ._options import CallOptions, ChatOptions, EmbedOptions, ImageOptions
from ._streaming import AsyncStream, Stream
from ._types import ChatResponse, EmbeddingResponse, ImageResponse
from .providers.registry import get_spec

if TYPE_CHECKING:
    from typing_extensions import Unpack

_O = TypeVar("_O", ChatOptions, EmbedOptions, ImageOptions)


class Provider:
    def __init__(self, name: str, *, model: str | None = None, api_key: str | None = None,
                 base_url: str | None = None, client: Client | None = None, **settings: Any) -> None:
        self.spec = get_spec(name) if client is None or name in _names() else None
        self.name = name
        self.model = model
        self._call: CallOptions = {}
        if api_key is not None:
            self._call["api_key"] = api_key
        if base_url is not None:
            self._call["base_url"] = base_url
        self._owns_client = client is None
        self._client = client or Client(**settings)
        self._aclient: AsyncClient | None = None

    def _with_call(self, options: _O) -> _O:
        """The call's options over this provider's own (api_key, base_url)."""
        merged = dict(self._call)
        merged.update(options)
        return cast(_O, merged)

    def _id(self, model: str | None) -> str:
        chosen = model or self.model
        if not chosen:
            raise TypeError(f"no model: pass model= to get_provider({self.name!r}, model=...) or to the call")
        return f"{self.name}/{chosen}"

    @property
    def capabilities(self) -> Any:
        from .providers.registry import capabilities_of

        return capabilities_of(get_spec(self.name))

    def chat(self, messages: Any, *, model: str | None = None, **options: Unpack[ChatOptions]) -> ChatResponse:
        return self._client.chat(self._id(model), messages, **self._with_call(options))

    def stream(self, messages: Any, *, model: str | None = None, **options: Unpack[ChatOptions]) -> Stream:
        return self._client.stream(self._id(model), messages, **self._with_call(options))

    def embed(self, inputs: str | list[str], *, model: str | None = None, **options: Unpack[EmbedOptions]) -> EmbeddingResponse:
        return self._client.embed(self._id(model), inputs, **self._with_call(options))

    def generate_image(self, prompt: str, *, model: str | None = None, **options: Unpack[ImageOptions]) -> ImageResponse:
        return self._client.generate_image(self._id(model), prompt, **self._with_call(options))

    def _async(self) -> AsyncClient:
        if self._aclient is None:
            self._aclient = AsyncClient(self._client.settings)
        return self._aclient

    async def achat(self, messages: Any, *, model: str | None = None, **options: Unpack[ChatOptions]) -> ChatResponse:
        return await self._async().chat(self._id(model), messages, **self._with_call(options))

    def astream(self, messages: Any, *, model: str | None = None, **options: Unpack[ChatOptions]) -> AsyncStream:
        return self._async().stream(self._id(model), messages, **self._with_call(options))

    async def aembed(self, inputs: str | list[str], *, model: str | None = None, **options: Unpack[EmbedOptions]) -> EmbeddingResponse:
        return await self._async().embed(self._id(model), inputs, **self._with_call(options))

    async def agenerate_image(self, prompt: str, *, model: str | None = None, **options: Unpack[ImageOptions]) -> ImageResponse:
        return await self._async().generate_image(self._id(model), prompt, **self._with_call(options))

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pools this provider opened (its async client's, too, when no
        event loop is running to close it properly: their sockets are let go)."""
        if self._owns_client:
            self._client.close()
        if self._aclient is not None:
            self._aclient.engine.transport.close()
            self._aclient = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Provider({self.name!r}, model={self.model!r})"


def _names() -> list[str]:
    from .providers.registry import provider_names

    return provider_names()
