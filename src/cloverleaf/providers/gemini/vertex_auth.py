"""Google credentials for Gemini on Vertex AI: which file, what it holds, how it becomes a token.

Where the credentials come from, first found wins (as Google's own libraries look, minus the
metadata server):

1. ``credentials_file`` in ``additional_config``/``extra``;
2. the file ``GOOGLE_APPLICATION_CREDENTIALS`` names;
3. gcloud's Application Default Credentials,
   ``$CLOUDSDK_CONFIG/application_default_credentials.json`` (by default under
   ``~/.config/gcloud``; ``%APPDATA%\\gcloud`` on Windows), written by
   ``gcloud auth application-default login``.

The GCE/GKE metadata server is never asked: cloverleaf makes no call its configuration does not
name, and tests never leave loopback.

Two file types are understood. ``service_account``: a JWT (RS256, signed with the file's
private key through ``cryptography``, the optional ``vertex`` extra) is exchanged at the
file's ``token_uri`` (the ``jwt-bearer`` grant, scope ``cloud-platform``). ``authorized_user``
(a gcloud login): its refresh token is exchanged at its ``token_uri``, else Google's. The
exchange itself is :mod:`..bearer`'s (cached, one refresh at a time, through the engine's
transport). A refusal is an :class:`AuthenticationError` carrying Google's own error text;
nothing here ever puts a private key, a refresh token, a client secret or an access token in
a message or a repr.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..._errors import AuthenticationError, ConfigError, MalformedResponseError, error_class_for_status
from ..._http import HttpRequest, HttpResponse
from ..bearer import BearerSource, BearerTokens

INSTALL_HINT = "Vertex AI with a service account needs cryptography: pip install 'cloverleaf[vertex]'"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: A signed assertion is valid this long (Google accepts at most an hour).
ASSERTION_SECONDS = 3600
ADC_FILE = "application_default_credentials.json"
NO_CREDENTIALS = ("no Google credentials found for Vertex AI: set additional_config credentials_file = "
                  "\"/path/to/key.json\" (a service account key or a gcloud login), set "
                  "GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`; "
                  "cloverleaf does not use the GCE metadata server")


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """Where a Vertex provider's credentials come from: what ``cloverleaf doctor`` shows."""

    path: str
    #: ``credentials_file``, ``GOOGLE_APPLICATION_CREDENTIALS`` or ``gcloud ADC``.
    origin: str


def find_credentials(explicit: str | None, env: Mapping[str, str]) -> CredentialSource:
    """The first of the configured file, ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's ADC file.
    A file named by the first two must exist (a typo is an error, not a silent fallback)."""
    for origin, value in (("credentials_file", explicit), ("GOOGLE_APPLICATION_CREDENTIALS",
                                                           env.get("GOOGLE_APPLICATION_CREDENTIALS"))):
        if value:
            path = Path(str(value)).expanduser()
            if not path.is_file():
                raise ConfigError(f"Vertex AI credentials: {origin} names {str(path)!r}, which is not a file")
            return CredentialSource(str(path), origin)
    adc = _adc_path(env)
    if adc is not None and adc.is_file():
        return CredentialSource(str(adc), "gcloud ADC")
    raise ConfigError(NO_CREDENTIALS)


def _adc_path(env: Mapping[str, str]) -> Path | None:
    """gcloud's configuration folder: ``CLOUDSDK_CONFIG``, else its per-platform default. Only the
    given environment is read (a test's ``Settings(env=...)`` never reaches the user's home)."""
    if env.get("CLOUDSDK_CONFIG"):
        return Path(env["CLOUDSDK_CONFIG"]).expanduser() / ADC_FILE
    if os.name == "nt" and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "gcloud" / ADC_FILE
    if env.get("HOME"):
        return Path(env["HOME"]) / ".config" / "gcloud" / ADC_FILE
    return None


def credential_type(path: str) -> str:
    """The file's ``type`` (for ``cloverleaf doctor``): read, never shown."""
    return str(_read_json(path).get("type") or "unknown")


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account key file. The key object never reaches a repr."""

    path: str
    version: Hashable
    provider: str
    client_email: str
    token_uri: str
    project_id: str | None
    private_key_id: str | None = field(default=None, repr=False)
    signer: Any = field(default=None, repr=False)
    #: The project calls are billed and rate-limited to (``x-goog-user-project``), when the file names one.
    quota_project_id: str | None = None

    @property
    def key(self) -> Hashable:
        return ("service_account", self.path, self.version)

    def token_request(self, now: float) -> HttpRequest:
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self.private_key_id:
            header["kid"] = self.private_key_id
        claims = {"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": int(now),
                  "exp": int(now) + ASSERTION_SECONDS}
        signing_input = f"{_b64(_compact(header))}.{_b64(_compact(claims))}"
        assertion = f"{signing_input}.{_b64(_sign(self.signer, signing_input.encode()))}"
        return _form(self.token_uri, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion})

    def read_token(self, resp: HttpResponse) -> tuple[str, float]:
        return _read_token(resp, self.provider, f"service account {self.client_email} ({self.path})")


@dataclass(frozen=True, slots=True)
class AuthorizedUser:
    """A gcloud login (``authorized_user``): a refresh token and the OAuth client it belongs to."""

    path: str
    version: Hashable
    provider: str
    client_id: str
    token_uri: str
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    #: A gcloud login names no project: ``project`` or ``GOOGLE_CLOUD_PROJECT`` must.
    project_id: str | None = None
    #: ``gcloud auth application-default set-quota-project``'s project: a login without one is
    #: refused with 403 SERVICE_DISABLED by many projects, so it travels as ``x-goog-user-project``.
    quota_project_id: str | None = None

    @property
    def key(self) -> Hashable:
        return ("authorized_user", self.path, self.version)

    def token_request(self, now: float) -> HttpRequest:
        return _form(self.token_uri, {"grant_type": "refresh_token", "client_id": self.client_id,
                                      "client_secret": self.client_secret, "refresh_token": self.refresh_token})

    def read_token(self, resp: HttpResponse) -> tuple[str, float]:
        return _read_token(resp, self.provider, f"gcloud login ({self.path})")


Credential = ServiceAccount | AuthorizedUser


def load_credential(path: str, provider: str, version: Hashable = None) -> Credential:
    """The credential in ``path``; a ConfigError naming the file and what is wrong with it
    (never quoting it)."""
    data = _read_json(path)
    kind = data.get("type")
    if kind == "service_account":
        email, pem = data.get("client_email"), data.get("private_key")
        if not isinstance(email, str) or not email or not isinstance(pem, str) or not pem:
            raise ConfigError(f"Vertex AI credentials {path}: a service_account file needs client_email and "
                              "private_key (download a new key: IAM > Service accounts > Keys)")
        return ServiceAccount(path, version, provider, email, _token_uri(data, path), _text(data.get("project_id")),
                              _text(data.get("private_key_id")), _load_key(pem, path),
                              _text(data.get("quota_project_id")))
    if kind == "authorized_user":
        fields = {name: data.get(name) for name in ("client_id", "client_secret", "refresh_token")}
        missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
        if missing:
            raise ConfigError(f"Vertex AI credentials {path}: an authorized_user file needs {', '.join(missing)} "
                              "(run `gcloud auth application-default login` again)")
        return AuthorizedUser(path, version, provider, str(fields["client_id"]), _token_uri(data, path),
                              str(fields["client_secret"]), str(fields["refresh_token"]),
                              quota_project_id=_text(data.get("quota_project_id")))
    raise ConfigError(f"Vertex AI credentials {path}: type {kind!r} is not supported; use a service_account key "
                      "or an authorized_user file (gcloud auth application-default login)")


class VertexCredentials:
    """One adapter's credential files, each loaded once per version of the file (its mtime and
    size: a rotated key is read again), and their tokens."""

    __slots__ = ("provider", "tokens", "_lock", "_loaded")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.tokens = BearerTokens()
        self._lock = threading.Lock()
        self._loaded: dict[str, Credential] = {}

    def load(self, path: str) -> Credential:
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise ConfigError(f"Vertex AI credentials {path}: cannot read it ({exc.strerror})") from None
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            found = self._loaded.get(path)
        if found is not None and found.version == version:
            return found
        credential = load_credential(path, self.provider, version)
        with self._lock:
            self._loaded[path] = credential
        return credential

    def source(self, path: str) -> BearerSource:
        return self.tokens.source(self.load(path))


# --------------------------------------------------------------------------- helpers


def _read_json(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Vertex AI credentials {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"Vertex AI credentials {path}: not a JSON credentials file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Vertex AI credentials {path}: not a JSON credentials file (no object at the top)")
    return data


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _token_uri(data: dict[str, Any], path: str) -> str:
    uri = data.get("token_uri") or DEFAULT_TOKEN_URI
    if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
        raise ConfigError(f"Vertex AI credentials {path}: token_uri is not an http(s) URL")
    return uri


def _load_key(pem: str, path: str) -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"Vertex AI credentials {path}: private_key is not an unencrypted PEM private key "
                          "(download a new key for the service account)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"Vertex AI credentials {path}: private_key is not an RSA key (RS256 needs one)")
    return key


def _sign(key: Any, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _form(url: str, fields: dict[str, str]) -> HttpRequest:
    return HttpRequest("POST", url, {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
                       urlencode(fields).encode())


def _read_token(resp: HttpResponse, provider: str, whose: str) -> tuple[str, float]:
    """The token and its lifetime; a refusal is an AuthenticationError with Google's own words
    (``invalid_grant: Invalid JWT Signature.``), a 5xx or 429 the class of its status."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status >= 400:
        cls = error_class_for_status(resp.status) if resp.status >= 500 or resp.status == 429 else AuthenticationError
        raise cls(f"Google refused the access token exchange for the {whose}: {_google_error(data, resp)}",
                  provider=provider, status=resp.status, body=resp.text,
                  code=str(data.get("error")) if isinstance(data, dict) and data.get("error") else None)
    token = data.get("access_token") if isinstance(data, dict) else None
    lifetime = data.get("expires_in", ASSERTION_SECONDS) if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or not isinstance(lifetime, int | float | str):
        raise MalformedResponseError(f"the token endpoint's answer for the {whose} has no access_token",
                                     provider=provider, status=resp.status)
    try:
        return token, float(lifetime)
    except ValueError:
        raise MalformedResponseError(f"the token endpoint's answer for the {whose} has no valid expires_in",
                                     provider=provider, status=resp.status) from None


def _google_error(data: Any, resp: HttpResponse) -> str:
    """OAuth's ``{"error", "error_description"}``, or a Google API ``{"error": {"message"}}``."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("status") or f"HTTP {resp.status}")
        if error:
            described = data.get("error_description")
            return f"{error}: {described}" if described else str(error)
    return resp.text.strip()[:300] or f"HTTP {resp.status}"
