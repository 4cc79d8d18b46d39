"""OpenAI's Responses API, served for every backend provider.

- :mod:`.items` — Responses items <-> neutral messages and parts (both directions);
- :mod:`.client_tools` — custom (freeform) and namespace tools as function tools, calls mapped back;
- :mod:`.wire` — request bodies -> a neutral request; answers -> the Response object;
- :mod:`.stream` — neutral stream events -> the Responses SSE event sequence;
- :mod:`.state` — stored responses (``store``, ``previous_response_id``), scoped per key;
- :mod:`.api` — the routes.
"""

from __future__ import annotations

from .api import routes

__all__ = ["routes"]
