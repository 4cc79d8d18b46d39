"""Where a Vertex AI call goes: the publisher root of a project and location, and its headers.

Gemini (publisher ``google``) and Claude (publisher ``anthropic``) share the same root,
``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
publishers/{publisher}`` (host ``aiplatform.googleapis.com`` for location ``global``), so both
adapters build it here. A leaf: the Gemini adapter and the Claude-on-Vertex adapter import it,
it imports neither.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ..._errors import ConfigError, InvalidRequestError
from ..base import ProviderConfig

#: A base URL that already names an API version (``.../v1beta1/projects/P/locations/L/publishers/google``).
VERSIONED = re.compile(r"/v1(alpha|beta\d*)?(/|$)")
#: Google Cloud project ids and location names: what may stand in a Vertex AI host, path or header.
PROJECT = re.compile(r"^[a-z][a-z0-9.:-]{3,62}$")
LOCATION = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
DEFAULT_LOCATION = "global"
#: The header that bills a call to a quota project (gcloud logins need it on many projects).
QUOTA_HEADER = "x-goog-user-project"


def model_path(model: str, provider: str) -> str:
    """``model`` as it stands in a request's path (``.../models/{model}:{method}``), for Gemini and
    Claude on Vertex AI alike: the one place a caller's model name goes into a URL's path rather
    than a body. Unchecked, ``gemini-1.5-flash/../gemini-2.5-pro`` reached a model the caller's key
    does not allow (the key's ``gemini-1.5-*`` matched the name; the provider resolved the path),
    priced as the allowed one, and a ``?``/``#`` in it rewrote the query or cut the method off.
    So a dot segment or an empty one is refused (400), and every character a path gives a meaning
    to (``?``, ``#``, ``%``, ``:``, spaces) is percent-encoded; ``/`` (``tunedModels/NAME``) and
    ``@`` (``claude-sonnet-4@20250514``) are kept."""
    if any(part in ("", ".", "..") for part in model.split("/")):
        raise InvalidRequestError(f"{model!r} is not a model id: it has an empty, '.' or '..' path segment; "
                                  "name the model as the provider lists it", provider=provider, model=model)
    return quote(model, safe="/@")


def vertex_root(cfg: ProviderConfig, base: str, publisher: str, *, express_ok: bool = True) -> str:
    """``{host}/{version}/projects/{project}/locations/{location}/publishers/{publisher}``; with an
    API key and no project (``express_ok``), Vertex AI express mode's ``{host}/{version}/publishers/...``."""
    location = str(cfg.extra.get("location") or DEFAULT_LOCATION)
    if not base:
        base = ("https://aiplatform.googleapis.com" if location == "global"
                else f"https://{location}-aiplatform.googleapis.com")
    version = str(cfg.extra.get("api_version", "v1"))
    project = cfg.extra.get("project")
    if not project:
        if not cfg.api_key or not express_ok:
            raise ConfigError("vertex needs a Google Cloud project: set additional_config project = "
                              "\"my-project\" or GOOGLE_CLOUD_PROJECT")
        return f"{base}/{version}/publishers/{publisher}"
    return f"{base}/{version}/projects/{project}/locations/{location}/publishers/{publisher}"


def quota_headers(cfg: ProviderConfig) -> dict[str, str]:
    """``x-goog-user-project`` when the config names a quota project (prepare_config found it)."""
    quota = cfg.extra.get("quota_project")
    return {QUOTA_HEADER: str(quota)} if quota else {}
