"""Who is calling: the master key, a virtual key, or (open mode) a loopback client.

Both SDKs' conventions are accepted: ``Authorization: Bearer <key>`` (OpenAI) and
``x-api-key: <key>`` (Anthropic); when a request carries both, the bearer token is the one
checked (a wrong bearer is a 401 even beside a valid ``x-api-key``). Azure OpenAI's paths
(:mod:`.azure_api`) also take Azure's ``api-key: <key>``, after those two. The three modes and
why (see also :mod:`.options`):

- **master key set** (``CLOVERLEAF_MASTER_KEY``): it is accepted everywhere, including
  ``/admin``; virtual keys are accepted on the model APIs; anything else is a 401.
- **no master key, but virtual keys exist**: only virtual keys; the admin API is off.
- **neither — open mode**: no credential is needed (SDKs insist on sending *some* key; it
  is ignored), but only from loopback peers that name a loopback host (``Host: localhost``
  or ``127.0.0.1``/``[::1]``): a web page the developer visits cannot reach the gateway by
  DNS rebinding (its requests name the attacker's host), and :mod:`.http_io` refuses the
  non-JSON bodies a page could send cross-site. ``serve`` refuses a non-loopback bind unless
  ``[server] allow_unauthenticated = true``, and with that the operator has asked for an
  open gateway: then every peer is served. A fresh ``cloverleaf serve`` is thus usable at
  once on the developer's machine and never an open relay on a network by accident.
  Open mode ends as soon as a virtual key exists anywhere the store is shared: one made
  through another replica (started with the master key) or worker is seen at the key
  cache's next look at the store's change counter (:mod:`.keys`, twice a second), off the
  request path, so a replica never keeps serving keyless calls beside keys that govern its
  peers. It does not open again when those keys are revoked or expire (a restart decides
  anew): failing closed is the safe way to be wrong about an access rule.

The master key is compared in constant time; a virtual key is looked up by its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Literal

from .._context import KeyPolicy
from .errors import Forbidden, NotFound, Unauthorized
from .keys import VirtualKeys, model_allowed
from .options import ServerOptions, is_loopback

log = logging.getLogger("cloverleaf.server")
#: Beyond this many cached principals the cache starts over.
MAX_PRINCIPALS = 10_000
#: what a request without a key is told to send (Azure's paths name their ``api-key`` header too)
SEND_A_KEY = "send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
ADMIN_OFF = ("the admin API is off because CLOVERLEAF_MASTER_KEY is not set; set it (16+ random characters) "
             "in the server's environment and restart to turn it on")


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["master", "key", "open"]
    key_id: str | None = None
    policy: KeyPolicy | None = None

    def check_model(self, model: str) -> None:
        """403 when this key may not use ``model`` (checked before the model's existence,
        so a restricted key cannot probe which models the gateway serves)."""
        if self.policy is not None and not model_allowed(self.policy.allowed_models, model):
            raise Forbidden(f"this API key may not use model {model!r}; allowed: "
                            f"{', '.join(self.policy.allowed_models)}", code="model_not_allowed")


def bearer_token(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


class Authenticator:
    def __init__(self, options: ServerOptions, keys: VirtualKeys | None) -> None:
        self._master = hashlib.sha256(options.master_key.encode()).digest() if options.master_key else None
        self._keys = keys
        self._anyone = options.allow_unauthenticated
        self.open_mode = False
        self._watching = False
        #: a verified key's Principal, built once per verified key (a frozen dataclass costs a
        #: ``__setattr__`` a field, on every request otherwise)
        self._principals: dict[str, Principal] = {}

    @property
    def admin_enabled(self) -> bool:
        return self._master is not None

    async def decide_mode(self) -> None:
        """Open mode only with no master key and no usable virtual key (checked at startup,
        and again whenever another process changes the key table: see the module)."""
        has_keys = self._keys is not None and await self._keys.any_active()
        self.open_mode = self._master is None and not has_keys
        if self.open_mode and self._keys is not None and not self._watching:
            self._watching = True
            self._keys.on_change_elsewhere(self._close_if_keys_exist)

    async def _close_if_keys_exist(self) -> None:
        """A key was made elsewhere (or changed): no more keyless calls once one is usable."""
        if self.open_mode and self._keys is not None and await self._keys.any_active():
            self.open_mode = False
            log.warning("a virtual key now exists in the store: open mode is over, every call needs a key")

    async def authenticate(self, authorization: str | None, x_api_key: str | None, peer: str | None,
                           host: str | None = None, send_a_key: str = SEND_A_KEY) -> Principal:
        token = bearer_token(authorization, x_api_key)
        if self.open_mode:
            if self._anyone:
                return _OPEN
            if not is_loopback(peer):
                raise Unauthorized("this gateway has no API keys configured, so it only serves clients on the same "
                                   "machine; the operator must set CLOVERLEAF_MASTER_KEY and issue virtual keys",
                                   code="open_mode_loopback_only")
            if host is not None and not is_loopback(_host_name(host)):
                raise Unauthorized(f"this gateway has no API keys configured, so it only answers requests addressed "
                                   f"to localhost, not to {host[:100]!r}; use http://127.0.0.1:<port>",
                                   code="open_mode_loopback_only")
            return _OPEN
        if token is None:
            raise Unauthorized(f"missing API key: {send_a_key}", code="missing_api_key")
        digest = hashlib.sha256(token.encode()).digest()   # once: the master key's check and the key lookup
        if self._master is not None and hmac.compare_digest(digest, self._master):
            return _MASTER
        if self._keys is None:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        key = await self._keys.verify(token, digest)
        principal = self._principals.get(key.id)
        if principal is None or principal.policy is not key.policy:   # a key verified anew (changed, or its cache aged)
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()
            principal = self._principals[key.id] = Principal("key", key.id, key.policy)
        return principal

    async def authenticate_admin(self, authorization: str | None, x_api_key: str | None) -> Principal:
        if self._master is None:
            raise NotFound(ADMIN_OFF, code="admin_disabled")
        token = bearer_token(authorization, x_api_key)
        if token is None:
            raise Unauthorized("missing master key: send 'Authorization: Bearer <CLOVERLEAF_MASTER_KEY>'",
                               code="missing_api_key")
        if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._master):
            raise Unauthorized("the admin API needs the master key (virtual keys cannot use it)",
                               code="invalid_api_key")
        return _MASTER


def _host_name(host: str) -> str:
    """The name in a Host header: ``localhost:4000`` → ``localhost``, ``[::1]:4000`` → ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


_OPEN = Principal("open")
_MASTER = Principal("master")
