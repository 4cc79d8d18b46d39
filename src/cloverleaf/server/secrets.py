"""Secrets the server keeps: provider keys encrypted at rest, virtual keys as hashes.

Provider API keys given to the admin API are stored encrypted with Fernet (AES-128-CBC +
HMAC-SHA256, from ``cryptography``), under a key derived with HKDF-SHA256 from
``CLOVERLEAF_ENCRYPTION_KEY`` when set, otherwise from ``CLOVERLEAF_MASTER_KEY``. Prefer a
separate encryption key: rotating the master key then never makes stored provider keys
unreadable. A stored key is only ever decrypted into the in-memory model registry; no API
returns it.

Virtual keys (``sk-clv-...``) are 256 random bits, shown once and stored as SHA-256. A
plain fast hash is the right tool here, not bcrypt/argon2: slow hashes exist to protect
*low-entropy* passwords from guessing, and nobody can enumerate 2^256 secrets, while a
slow hash would add milliseconds to every authenticated request.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from .._errors import ConfigError

VIRTUAL_KEY_PREFIX = "sk-clv-"
_HKDF_INFO = b"cloverleaf/model-entry-api-key/v1"


def new_virtual_key() -> str:
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


class SecretBox:
    """Encrypts and decrypts short secrets (provider API keys) for storage.

    The cipher is built on first use: ``cryptography`` costs several MiB of resident memory
    in every worker, and a server whose provider keys all come from its config never needs it.
    """

    def __init__(self, key_material: str) -> None:
        if not key_material:
            raise ConfigError("no key to encrypt provider keys with: set CLOVERLEAF_ENCRYPTION_KEY "
                              "(or CLOVERLEAF_MASTER_KEY)")
        self._material: str | None = key_material
        self._cipher: Any = None

    def _fernet(self) -> Any:
        if self._cipher is not None:
            return self._cipher
        try:
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        except ImportError:  # pragma: no cover - the extra is missing
            raise ImportError("storing provider keys needs cryptography: pip install 'cloverleaf[server]'") from None
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            (self._material or "").encode("utf-8"))
        self._cipher, self._material = Fernet(base64.urlsafe_b64encode(derived)), None   # keep only the cipher
        return self._cipher

    def encrypt(self, plaintext: str) -> str:
        return str(self._fernet().encrypt(plaintext.encode("utf-8")).decode("ascii"))

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return str(self._fernet().decrypt(token.encode("ascii")).decode("utf-8"))
        except (InvalidToken, ValueError):
            raise ConfigError("a stored provider key cannot be decrypted: the encryption key changed "
                              "(CLOVERLEAF_ENCRYPTION_KEY / CLOVERLEAF_MASTER_KEY); set the key back or "
                              "re-enter the provider key through the admin API") from None

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"
