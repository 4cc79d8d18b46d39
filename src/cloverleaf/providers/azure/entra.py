"""Entra ID (Azure AD) access tokens for Azure OpenAI from a service principal's client secret.

A static ``azure_ad_token`` expires after about an hour, so a long-running gateway needs to get
its own: the OAuth 2.0 client-credentials grant, as ``azure-identity``'s
``ClientSecretCredential`` makes it through MSAL::

    POST {authority_host}/{tenant}/oauth2/v2.0/token
    content-type: application/x-www-form-urlencoded

    grant_type=client_credentials&client_id=...&client_secret=...
    &scope=https://cognitiveservices.azure.com/.default

answered with ``{"token_type": "Bearer", "expires_in": 3599, "access_token": "..."}``, or a
refusal ``{"error": "invalid_client", "error_description": "AADSTS7000215: ..."}``.

The exchange itself is :mod:`..bearer`'s, as for Vertex AI: the token is cached per credential,
replaced five minutes before it expires, one refresh at a time for all callers, through the
engine's transport (its retries, timeouts and peer checks). The client secret lives in a field
no repr shows, goes nowhere but the token request's body, and no error quotes it.

The authority host is ``login.microsoftonline.com`` unless ``azure_authority_host`` or
``AZURE_AUTHORITY_HOST`` (the variable ``azure-identity`` reads) names another: a sovereign
cloud (``login.microsoftonline.us``, ``login.chinacloudapi.cn``) or a token proxy. As with
``azure-identity`` a bare host means https; plain http is accepted only for a loopback host
(a local token proxy, the tests' mock), so a secret never crosses a network unencrypted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..._errors import AuthenticationError, ConfigError, MalformedResponseError, error_class_for_status
from ..._http import HttpRequest, HttpResponse

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
#: The scope of Azure OpenAI (Cognitive Services) for an app's own permissions.
SCOPE = "https://cognitiveservices.azure.com/.default"
#: ``additional_config`` name -> the environment variable ``azure-identity`` reads for it.
SETTINGS = {"azure_tenant_id": "AZURE_TENANT_ID", "azure_client_id": "AZURE_CLIENT_ID",
            "azure_client_secret": "AZURE_CLIENT_SECRET"}
AUTHORITY_SETTING, AUTHORITY_ENV = "azure_authority_host", "AZURE_AUTHORITY_HOST"
#: A tenant is a GUID or a domain name (``contoso.onmicrosoft.com``): it goes into the token URL's path.
TENANT = re.compile(r"^[A-Za-z0-9.-]{1,256}$")
#: Lifetime assumed when an answer gives none (Entra's tokens last 60 to 90 minutes).
DEFAULT_LIFETIME = 3600.0


@dataclass(frozen=True, slots=True)
class ClientSecretGrant:
    """One service principal's client-credentials grant (a :class:`~..bearer.TokenGrant`)."""

    provider: str
    authority_host: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def key(self) -> Hashable:
        # a rotated secret is a new credential; the secret itself is not kept in the key
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return ("entra", self.authority_host, self.tenant_id, self.client_id, digest)

    @property
    def token_url(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}/oauth2/v2.0/token"

    def token_request(self, now: float) -> HttpRequest:
        body = urlencode({"grant_type": "client_credentials", "client_id": self.client_id,
                          "client_secret": self.client_secret, "scope": SCOPE}).encode()
        return HttpRequest("POST", self.token_url, {"content-type": "application/x-www-form-urlencoded",
                                                    "accept": "application/json"}, body)

    def read_token(self, resp: HttpResponse) -> tuple[str, float]:
        """The token and its lifetime. A refusal is an :class:`AuthenticationError` with Entra's own
        words (``invalid_client: AADSTS7000215: Invalid client secret provided...``), which name
        the app and the problem but never the secret; a 5xx or 429 is the class of its status."""
        whose = f"app {self.client_id} in tenant {self.tenant_id}"
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status >= 400:
            cls = (error_class_for_status(resp.status) if resp.status >= 500 or resp.status == 429
                   else AuthenticationError)
            code = str(data["error"]) if isinstance(data, dict) and data.get("error") else None
            raise cls(f"Entra ID refused the access token for {whose} at {self.token_url}: "
                      f"{_entra_error(data, resp)}", provider=self.provider, status=resp.status, code=code)
        token = data.get("access_token") if isinstance(data, dict) else None
        lifetime = data.get("expires_in", DEFAULT_LIFETIME) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponseError(f"the Entra ID token endpoint's answer for {whose} has no access_token",
                                         provider=self.provider, status=resp.status)
        try:
            return token, float(lifetime)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise MalformedResponseError(f"the Entra ID token endpoint's answer for {whose} has no valid "
                                         "expires_in", provider=self.provider, status=resp.status) from None


def client_credentials(extra: Mapping[str, Any], env: Mapping[str, str], *,
                       from_env: bool) -> dict[str, str] | None:
    """The service principal ``additional_config`` names (``from_env=False``) or the environment
    does (``from_env=True``), as the ``extra`` entries to add, or None when none is given.

    In ``additional_config`` a partial set is an error naming what is missing. In the environment
    all three variables must be set: a pod with workload identity has ``AZURE_TENANT_ID`` and
    ``AZURE_CLIENT_ID`` but no secret, and that is not a client-secret credential."""
    values: dict[str, Any]
    if from_env:
        values = {name: env.get(var) or "" for name, var in SETTINGS.items()}
        if not all(values.values()):
            return None
        host = extra.get(AUTHORITY_SETTING) or env.get(AUTHORITY_ENV)
    else:
        values = {name: extra.get(name) for name in SETTINGS}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not (isinstance(value, str) and value.strip())]
        if missing:
            raise ConfigError(f"azure: a service principal needs azure_tenant_id, azure_client_id and "
                              f"azure_client_secret in additional_config; {', '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} missing or not text")
        host = extra.get(AUTHORITY_SETTING) or env.get(AUTHORITY_ENV)
    tenant = str(values["azure_tenant_id"]).strip()
    if not TENANT.match(tenant):
        raise ConfigError(f"azure: the tenant id {tenant[:80]!r} is not a tenant GUID or domain name "
                          "(letters, digits, '.' and '-')")
    return {"azure_tenant_id": tenant, "azure_client_id": str(values["azure_client_id"]).strip(),
            "azure_client_secret": str(values["azure_client_secret"]),
            AUTHORITY_SETTING: authority_host(host)}


def authority_host(value: Any) -> str:
    """``https://HOST`` for a bare host, as ``azure-identity`` normalises it; http only on loopback."""
    if value is None or value == "":
        return DEFAULT_AUTHORITY_HOST
    if not isinstance(value, str):
        raise ConfigError(f"azure: azure_authority_host must be a host name in quotes, not {value!r}")
    text = value.strip().rstrip("/")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"azure: {value!r} is not an authority host; use a host name such as "
                          "login.microsoftonline.us or an https:// URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(f"azure: the authority host {value!r} must use https (a client secret is sent to it); "
                          "plain http is accepted only for a loopback host")
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def grant_from(extra: Mapping[str, Any], provider: str) -> ClientSecretGrant | None:
    """The grant a prepared config carries (see ``AzureOpenAIAdapter.prepare_config``), if any."""
    secret = extra.get("azure_client_secret")
    if not secret:
        return None
    return ClientSecretGrant(provider, str(extra.get(AUTHORITY_SETTING) or DEFAULT_AUTHORITY_HOST),
                             str(extra["azure_tenant_id"]), str(extra["azure_client_id"]), str(secret))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _entra_error(data: Any, resp: HttpResponse) -> str:
    """OAuth's ``{"error", "error_description"}`` (Entra's description starts with its AADSTS code)."""
    if isinstance(data, dict) and data.get("error"):
        error, described = data["error"], data.get("error_description")
        return f"{error}: {str(described).splitlines()[0]}" if described else str(error)
    return f"HTTP {resp.status}"
