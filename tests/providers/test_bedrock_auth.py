"""SigV4 signing, credential resolution and Bedrock API keys."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from cloverleaf._errors import ConfigError
from cloverleaf._http import HttpRequest
from cloverleaf._types import ChatRequest, Message
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.bedrock.auth import CredentialCache, StaticCredentials, sign_request
from cloverleaf.providers.registry import get_spec

from ..loopback import Answer, Handle, LoopbackServer

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
CREDS = StaticCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse"
BODY = b'{"messages":[{"role":"user","content":[{"text":"Hello!"}]}]}'


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def reference_signature(secret: str, headers: dict[str, str], path: str, body: bytes) -> tuple[str, str]:
    """SigV4 written out from the AWS documentation, independent of botocore."""
    amz_date = "20240102T030405Z"
    names = sorted(headers)
    canonical = "\n".join([
        "POST", path, "",
        "".join(f"{n}:{headers[n]}\n" for n in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = "20240102/us-east-1/bedrock/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), "20240102"), "us-east-1"), "bedrock"), "aws4_request")
    return ";".join(names), hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_signature_matches_the_documented_algorithm() -> None:
    req = HttpRequest("POST", URL, {"content-type": "application/json", "accept": "application/json"}, BODY)
    signed = sign_request(req, CREDS, "us-east-1", WHEN)
    assert signed.headers["x-amz-date"] == "20240102T030405Z"
    # AWS signs the already-encoded path encoded once more: %3A -> %253A
    signed_names, signature = reference_signature(
        CREDS.secret_key,
        {"accept": "application/json", "content-type": "application/json",
         "host": "bedrock-runtime.us-east-1.amazonaws.com", "x-amz-date": "20240102T030405Z"},
        "/model/us.amazon.nova-micro-v1%253A0/converse", BODY,
    )
    assert signed.headers["authorization"] == (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/bedrock/aws4_request, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    assert signed.body == BODY and signed.url == URL
    assert "authorization" not in req.headers  # the input is not modified


def test_session_token_is_sent_and_signed() -> None:
    creds = StaticCredentials("ASIAEXAMPLE", "secret", "session-token")
    req = HttpRequest("POST", URL, {"content-type": "application/json"}, BODY)
    signed = sign_request(req, creds, "us-east-1", WHEN)
    assert signed.headers["x-amz-security-token"] == "session-token"
    names, signature = reference_signature(
        "secret",
        {"content-type": "application/json", "host": "bedrock-runtime.us-east-1.amazonaws.com",
         "x-amz-date": "20240102T030405Z", "x-amz-security-token": "session-token"},
        "/model/us.amazon.nova-micro-v1%253A0/converse", BODY,
    )
    assert signed.headers["authorization"].endswith(f"SignedHeaders={names}, Signature={signature}")


def test_same_as_botocore_own_signer_at_the_same_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: WHEN.replace(tzinfo=None))
    aws = AWSRequest(method="POST", url=URL, data=BODY, headers={"content-type": "application/json"})
    SigV4Auth(CREDS, "bedrock", "us-east-1").add_auth(aws)
    ours = sign_request(HttpRequest("POST", URL, {"content-type": "application/json"}, BODY), CREDS, "us-east-1", WHEN)
    assert ours.headers["authorization"] == aws.headers["Authorization"]


def test_signing_is_deterministic_and_time_dependent() -> None:
    req = HttpRequest("POST", URL, {"content-type": "application/json"}, BODY)
    a = sign_request(req, CREDS, "us-east-1", WHEN)
    b = sign_request(req, CREDS, "us-east-1", WHEN)
    c = sign_request(req, CREDS, "us-east-1", WHEN.replace(second=6))
    assert a.headers == b.headers
    assert a.headers["authorization"] != c.headers["authorization"]


def test_secrets_stay_out_of_reprs() -> None:
    assert "wJalr" not in repr(CREDS)
    assert "AKIDEXAMPLE" in repr(CREDS)
    signed = sign_request(HttpRequest("POST", URL, {}, BODY), StaticCredentials("AKID", "sekrit", "tok"),
                          "us-east-1", WHEN)
    redacted = signed.redacted_headers()
    assert redacted["authorization"] == "<redacted>" and redacted["x-amz-security-token"] == "<redacted>"


# --------------------------------------------------------------------------- credential chain


@pytest.fixture
def clean_aws(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """No ambient AWS configuration, no instance-metadata lookups (tests reach 127.0.0.1 only)."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_environment_credentials_are_resolved_once(clean_aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    cache = CredentialCache()
    assert cache.get({}) == StaticCredentials("AKIAENV", "env-secret", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACHANGED")
    assert cache.get({}).access_key == "AKIAENV"  # cached per profile
    assert CredentialCache().get({}).access_key == "AKIACHANGED"


def test_shared_profile(clean_aws) -> None:
    (clean_aws / "credentials").write_text(
        "[dev]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\naws_session_token = tok\n"
    )
    creds = CredentialCache().get({"profile": "dev"})
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKIAPROFILE", "profile-secret", "tok")


def test_unknown_profile_is_a_config_error(clean_aws) -> None:
    with pytest.raises(ConfigError, match="could not load AWS credentials"):
        CredentialCache().get({"profile": "nope"})


def test_a_failing_credential_process_is_named_without_repeating_its_output(clean_aws) -> None:
    """botocore quotes a credential_process's stderr whole, and the ConfigError went as it was to
    every caller of the model (a 503's message) and to logs: a helper that printed a token or the
    secret it could not refresh handed it to anyone holding a virtual key."""
    (clean_aws / "config").write_text(
        "[profile helper]\nregion = us-east-1\ncredential_process = sh -c \"echo 'refresh failed; "
        "SecretAccessKey: helper-SECRET-1 token FwoGZXIvhelperSECRET2' >&2; exit 1\"\n")
    with pytest.raises(ConfigError, match="credential provider custom-process failed") as caught:
        CredentialCache().get({"profile": "helper"})
    assert "SECRET" not in str(caught.value) and "credential_process" in str(caught.value)


def test_no_credentials_says_what_to_set(clean_aws) -> None:
    cache = CredentialCache()
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        cache.get({})


def test_explicit_keys_skip_the_chain(clean_aws) -> None:
    creds = CredentialCache().get({"aws_access_key_id": "AKIAX", "aws_secret_access_key": "s", "aws_session_token": "t"})
    assert creds == StaticCredentials("AKIAX", "s", "t")
    with pytest.raises(ConfigError, match="both"):
        CredentialCache().get({"aws_access_key_id": "AKIAX"})


# --------------------------------------------------------------------------- through the adapter


def _cfg(**extra) -> ProviderConfig:
    return ProviderConfig(name="bedrock", kind="bedrock", base_url="", extra=extra)


def _req() -> ChatRequest:
    return ChatRequest(model="us.amazon.nova-micro-v1:0", messages=[Message.user("Hello!")])


def test_build_chat_is_signed_with_the_pinned_clock() -> None:
    adapter = BedrockAdapter(get_spec("bedrock"))
    adapter.clock = lambda: WHEN
    cfg = _cfg(region="us-east-1", aws_access_key_id=CREDS.access_key, aws_secret_access_key=CREDS.secret_key)
    built = adapter.build_chat(_req(), cfg)
    assert built.url == URL
    unsigned = HttpRequest("POST", URL, {"content-type": "application/json", "accept": "application/json"},
                           built.body)
    assert built.headers == sign_request(unsigned, CREDS, "us-east-1", WHEN).headers
    assert adapter.build_chat(_req(), cfg).headers == built.headers


def test_bearer_token_replaces_sigv4(clean_aws) -> None:
    adapter = BedrockAdapter(get_spec("bedrock"))
    cfg = ProviderConfig(name="bedrock", kind="bedrock", base_url="", api_key="bedrock-api-key",
                         extra={"region": "eu-west-1"})
    built = adapter.build_chat(_req(), cfg)
    assert built.url.startswith("https://bedrock-runtime.eu-west-1.amazonaws.com/")
    assert built.headers["authorization"] == "Bearer bedrock-api-key"
    assert "x-amz-date" not in built.headers
    assert "bedrock-api-key" not in repr(cfg)


def test_prepare_config_reads_region_and_key_from_the_environment() -> None:
    adapter = BedrockAdapter(get_spec("bedrock"))
    env = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_BEARER_TOKEN_BEDROCK": "abk"}
    cfg = adapter.prepare_config(_cfg(), env)
    assert cfg.extra["region"] == "ap-south-1" and cfg.api_key == "abk"
    assert adapter.prepare_config(_cfg(), {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "x"}).extra["region"] == "us-west-2"
    assert adapter.prepare_config(_cfg(region="eu-central-1"), env).extra["region"] == "eu-central-1"


def test_missing_region_is_a_config_error_naming_the_variable(clean_aws) -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        BedrockAdapter(get_spec("bedrock")).prepare_config(_cfg(), {"AWS_CONFIG_FILE": str(clean_aws / "config")})


def test_region_comes_from_the_profiles_config_file_after_the_environment(clean_aws) -> None:
    """A profile set up with ``aws configure`` keeps its region in ~/.aws/config, where boto3
    finds it after the environment: cloverleaf asked such a user to set AWS_REGION."""
    config = clean_aws / "config"
    config.write_text("[default]\nregion = ap-northeast-1\n[profile dev]\nregion = eu-west-3\n"
                      "[profile bare]\noutput = json\n")
    adapter = BedrockAdapter(get_spec("bedrock"))
    env = {"AWS_CONFIG_FILE": str(config)}
    assert adapter.prepare_config(_cfg(), env).extra["region"] == "ap-northeast-1"
    assert adapter.prepare_config(_cfg(), {**env, "AWS_PROFILE": "dev"}).extra["region"] == "eu-west-3"
    assert adapter.prepare_config(_cfg(profile="dev"), {**env, "AWS_PROFILE": "bare"}).extra["region"] == "eu-west-3"
    assert adapter.prepare_config(_cfg(), {**env, "AWS_PROFILE": "dev", "AWS_DEFAULT_REGION": "us-west-1"}
                                  ).extra["region"] == "us-west-1"    # the environment comes first
    with pytest.raises(ConfigError, match="AWS_REGION"):
        adapter.prepare_config(_cfg(), {**env, "AWS_PROFILE": "bare"})


def test_an_expired_sso_login_is_a_config_error_saying_what_to_run(clean_aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSO credentials are fetched on a request, long after start-up: an expired or missing SSO
    login raised botocore's own exception, which the server answered with a 500."""
    monkeypatch.setenv("HOME", str(clean_aws))   # no SSO token cache under ~/.aws/sso/cache
    (clean_aws / "config").write_text(
        "[profile corp]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n"
        "region = us-east-1\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
        "sso_region = us-east-1\n")
    with pytest.raises(ConfigError, match=r"could not refresh AWS credentials: .*aws sso login --profile corp"):
        CredentialCache().get({"profile": "corp"})


def test_a_role_sts_refuses_to_assume_is_a_config_error_not_an_internal_error(
        clean_aws, monkeypatch: pytest.MonkeyPatch, loopback: Callable[[Handle], LoopbackServer]) -> None:
    """An assume-role profile's keys are fetched from STS on a request; STS refusing the role
    (AccessDenied) raised botocore's ClientError, which is no BotoCoreError, and every call of
    that profile was a 500 "internal error". STS here is a real HTTP server on 127.0.0.1."""
    refusal = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
               b"<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error>"
               b"<RequestId>r1</RequestId></ErrorResponse>")
    sts = loopback(lambda request: Answer(403, refusal, {"content-type": "text/xml"}))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    (clean_aws / "config").write_text(
        "[profile dev]\nregion = us-east-1\n[profile bedrock]\nregion = us-east-1\n"
        "role_arn = arn:aws:iam::123456789012:role/Bedrock\nsource_profile = dev\n")
    (clean_aws / "credentials").write_text("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = devsecret\n")
    with pytest.raises(ConfigError, match=r"could not refresh AWS credentials: .*AccessDenied.*check the "
                                          r"profile's role") as caught:
        CredentialCache().get({"profile": "bedrock"})
    assert "devsecret" not in str(caught.value)


def test_build_without_region_reads_the_environment(clean_aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "k")
    built = BedrockAdapter(get_spec("bedrock")).build_chat(_req(), _cfg())
    assert built.url.startswith("https://bedrock-runtime.us-east-2.amazonaws.com/")
    assert built.headers["authorization"] == "Bearer k"


def test_region_must_look_like_a_region() -> None:
    with pytest.raises(ConfigError, match="not an AWS region"):
        BedrockAdapter(get_spec("bedrock")).build_chat(_req(), _cfg(region="evil.com/x", aws_access_key_id="a",
                                                                    aws_secret_access_key="b"))


def test_base_url_overrides_the_endpoint() -> None:
    cfg = ProviderConfig(name="bedrock", kind="bedrock", base_url="http://127.0.0.1:9999/", api_key="k",
                         extra={"region": "us-east-1"})
    built = BedrockAdapter(get_spec("bedrock")).build_chat(_req(), cfg)
    assert built.url == "http://127.0.0.1:9999/model/us.amazon.nova-micro-v1%3A0/converse"


def test_missing_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(ImportError, match=r"pip install 'cloverleaf\[bedrock\]'"):
        sign_request(HttpRequest("POST", URL, {}, BODY), CREDS, "us-east-1", WHEN)
    with pytest.raises(ImportError, match=r"cloverleaf\[bedrock\]"):
        CredentialCache().get({})


def test_importing_the_adapter_does_not_import_botocore() -> None:
    import subprocess
    import sys

    code = "import sys, cloverleaf.providers.bedrock.adapter; print('botocore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
