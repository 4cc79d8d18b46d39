"""The only I/O: send an HttpRequest, return bytes.

- :mod:`.base`: the contract every backend keeps (protocols, ``StreamHandle``,
  ``OpenedStream``, ``Timeouts``, ``redact_url``);
- :mod:`.retry`: ``RetryPolicy`` and ``Retry`` (pure decisions) with the sync and async drivers;
- :mod:`.httpx`, :mod:`.aiohttp`, :mod:`.h1`: the backends, each with one exception map;
- :mod:`.auto`: ``Transport``, which picks a mount or a backend per URL, and
  ``resolve_http_client``, the choice ``cloverleaf doctor`` reports.

Nothing here imports a provider: the fake provider is mounted by the engine.
"""

from .auto import Transport, resolve_http_client
from .base import AsyncStreamHandle, StreamHandle, SyncStreamHandle, Timeouts, redact_url
from .retry import RetryPolicy

__all__ = ["AsyncStreamHandle", "RetryPolicy", "StreamHandle", "SyncStreamHandle", "Timeouts", "Transport", "redact_url", "resolve_http_client"]
