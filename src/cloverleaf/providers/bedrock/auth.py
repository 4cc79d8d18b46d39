"""AWS credentials and SigV4 signing for Bedrock, through botocore (the optional ``bedrock`` extra).

Signing is a pure function of (request, credentials, region, time): :func:`sign_request`
returns a new :class:`~cloverleaf._http.HttpRequest` carrying ``x-amz-date``, the session token
and the ``authorization`` header, computed by botocore's own ``SigV4Auth`` so the canonical
request (double-encoded path, sorted headers, payload hash) is exactly what AWS expects.

Credentials come from botocore's standard chain (environment, shared config/credentials files
and ``profile``, SSO, container and EC2 instance roles), resolved once per profile by a
:class:`CredentialCache` and frozen at signing time, so botocore can refresh temporary
credentials behind our back. Explicit keys in ``ProviderConfig.extra`` skip the chain.

botocore is imported lazily: ``import cloverleaf`` never pays for it, and a missing botocore
raises an ImportError that says what to install. Secrets never reach a repr.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from ..._errors import ConfigError
from ..._http import HttpRequest

INSTALL_HINT = "AWS Bedrock support needs botocore: pip install 'cloverleaf[bedrock]'"
#: The SigV4 service name for every Bedrock runtime operation.
SERVICE = "bedrock"


class AwsCredentials(Protocol):
    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """Fixed keys (from ``extra`` or a test). Only the key id appears in a repr."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def _require_botocore() -> None:
    try:
        import botocore  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


@lru_cache(maxsize=1)
def _signer_class() -> type:
    """botocore's SigV4Auth with the clock passed in, so signing is reproducible."""
    _require_botocore()
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth

    class ClockedSigV4Auth(SigV4Auth):  # type: ignore[misc]
        def __init__(self, credentials: Any, service: str, region: str, when: datetime) -> None:
            super().__init__(credentials, service, region)
            self._when = when

        def add_auth(self, request: Any) -> None:
            # SigV4Auth.add_auth with its clock read replaced by ``self._when``.
            request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
            self._modify_request_before_signing(request)
            canonical = self.canonical_request(request)
            string_to_sign = self.string_to_sign(request, canonical)
            self._inject_signature_to_request(request, self.signature(string_to_sign, request))

    return ClockedSigV4Auth


def sign_request(
    req: HttpRequest,
    credentials: AwsCredentials,
    region: str,
    when: datetime | None = None,
    *,
    service: str = SERVICE,
) -> HttpRequest:
    """A copy of ``req`` signed with SigV4 at time ``when`` (default: now, UTC).

    Every header already on ``req`` is signed (the transport must send them unchanged); the
    ``host`` header is derived from the URL, as the HTTP client will send it.
    """
    _require_botocore()
    from botocore.awsrequest import AWSRequest

    if when is None:
        when = datetime.now(UTC)
    elif when.tzinfo is not None:
        when = when.astimezone(UTC)
    aws = AWSRequest(method=req.method, url=req.url, data=req.body or b"", headers=dict(req.headers))
    _signer_class()(credentials, service, region, when).add_auth(aws)
    headers = {name.lower(): value for name, value in aws.headers.items()}
    return HttpRequest(req.method, req.url, headers, req.body, stream=req.stream, timeout=req.timeout)


class CredentialCache:
    """Resolves botocore's credential chain once per profile and hands out frozen keys.

    Held by one adapter instance (no module-level state). botocore's refreshable credentials
    renew themselves, so a cached entry stays valid; a failed lookup is not cached, so setting
    credentials later works without a restart. Keys read from the shared credentials file are
    not refreshable: a long-running server kept signing with them after a rotation tool
    (``aws-vault``, ``saml2aws``, a mounted secret) wrote new ones, every call refused as expired
    until a restart; :meth:`forget` (on AWS's expired-token answer) makes the next call read the
    chain again.
    """

    __slots__ = ("_lock", "_by_profile")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_profile: dict[str | None, Any] = {}

    def forget(self) -> None:
        """Drop every resolved source: AWS said the keys are expired or unknown, so the next
        request resolves the chain again (the files as they are now)."""
        with self._lock:
            self._by_profile.clear()

    def get(self, extra: dict[str, Any]) -> AwsCredentials:
        key_id = extra.get("aws_access_key_id")
        secret = extra.get("aws_secret_access_key")
        if key_id or secret:
            if not (key_id and secret):
                raise ConfigError("bedrock: set both aws_access_key_id and aws_secret_access_key (or neither)")
            return StaticCredentials(str(key_id), str(secret), extra.get("aws_session_token"))
        profile = extra.get("profile")
        with self._lock:
            source = self._by_profile.get(profile)
            if source is None:
                source = _resolve_chain(profile)
                self._by_profile[profile] = source
        frozen = _frozen(source, profile)
        return StaticCredentials(frozen.access_key, frozen.secret_key, frozen.token)


def _frozen(source: Any, profile: str | None) -> Any:
    """The current keys of a resolved source. Temporary credentials (SSO, assumed roles, a
    ``credential_process``) are fetched or refreshed here, on a request, long after start-up: an
    expired SSO login raised botocore's own exception, which the server answered with a 500. It is
    a ConfigError saying what to run; the source stays cached, so the next request after
    ``aws sso login`` works without a restart. So is AWS's refusal of the fetch itself (a
    ClientError, not a BotoCoreError: STS refusing a profile's ``role_arn``, ``AccessDenied``),
    which was a 500 "internal error" on every call of such a profile."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return source.get_frozen_credentials()
    except (BotoCoreError, ClientError) as exc:
        login = f"aws sso login --profile {profile}" if profile else "aws sso login"
        raise ConfigError(f"bedrock: could not refresh AWS credentials: {_reason(exc)} (an SSO profile: run `{login}`; "
                          "otherwise check the profile's role or credential_process)") from None


def _reason(exc: Exception) -> str:
    """What a failed credential lookup says, for an error that reaches API callers and logs.
    botocore's own text, except what a credential *provider* answered: a ``credential_process``'s
    stderr (or a container endpoint's body) is quoted whole by botocore, and a credential helper
    may print anything there — a session token, the secret it could not refresh, the operator's
    identity — which every caller of the model then read in its 503."""
    kwargs = getattr(exc, "kwargs", None) or {}
    if "provider" in kwargs and "error_msg" in kwargs:   # CredentialRetrievalError, TokenRetrievalError
        return (f"the credential provider {kwargs['provider']} failed (its output is not repeated here, as it "
                "may hold secrets: run the profile's credential_process, or `aws configure export-credentials "
                "--profile NAME`, by hand to see it)")
    return str(exc)


def config_file_region(env: Mapping[str, str], profile: str | None) -> str | None:
    """The ``region`` of the AWS profile in the shared config file (``AWS_CONFIG_FILE``, default
    ``~/.aws/config``), as boto3 finds it after the environment: a profile set up by ``aws
    configure`` or ``aws configure sso`` keeps its region there, and without this lookup such a
    user was told to set AWS_REGION. The profile is ``profile``, else ``AWS_PROFILE`` /
    ``AWS_DEFAULT_PROFILE``, else ``default``. None without botocore or an unreadable file."""
    try:
        from botocore.configloader import load_config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return None
    name = profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    path = os.path.expanduser(env.get("AWS_CONFIG_FILE") or "~/.aws/config")
    try:
        profiles = load_config(path).get("profiles") or {}
    except (BotoCoreError, OSError, ValueError):
        return None
    region = (profiles.get(name) or {}).get("region")
    return region if isinstance(region, str) and region.strip() else None


def _resolve_chain(profile: str | None) -> Any:
    _require_botocore()
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        credentials = botocore.session.Session(profile=profile).get_credentials()
    except BotoCoreError as exc:  # ProfileNotFound, bad config file, SSO token expired...
        raise ConfigError(f"bedrock: could not load AWS credentials: {_reason(exc)}") from None
    if credentials is None:
        raise ConfigError(
            "bedrock: no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE (or extra.profile), run on an IAM role, or use a Bedrock API key "
            "via AWS_BEARER_TOKEN_BEDROCK"
        )
    return credentials
