"""cloverleaf.server: the OpenAI- and Anthropic-compatible HTTP API in front of the gateway.

Existing OpenAI and Anthropic SDK clients point their ``base_url`` here and change nothing
else. The modules split along one idea each:

- ``openai_wire`` / ``anthropic_wire``: pure translations between each API's JSON and the
  neutral :mod:`cloverleaf._types` (request parsing with precise 400s, response and stream
  rendering). No I/O, unit-tested against the official schemas and SDK types.
- ``openai_api`` / ``anthropic_api`` / ``admin_api``: the routes.
- ``auth``, ``errors``, ``metrics``, ``openapi``, ``http_io``: the cross-cutting pieces.
- ``app``: the Starlette app factory; ``cli_serve``: ``cloverleaf serve``.

Requires the ``[server]`` extra (Starlette, uvicorn, cryptography); importing
``cloverleaf`` never imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
