"""Gemini on Vertex AI: where the credentials, project and location come from, the URL they
make, and that no secret reaches a repr, a dry run or ``cloverleaf doctor``. No token is fetched
here: building a request is pure, and the dry run and the doctor contact no one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf._errors import ConfigError
from cloverleaf._matrix import rows
from cloverleaf._pricing import all_prices, lookup
from cloverleaf._resolve import CallSettings, ModelRegistry, Resolver
from cloverleaf._types import ChatRequest, Message
from cloverleaf.cli import main
from cloverleaf.providers.gemini.vertex_auth import VertexCredentials, find_credentials, load_credential
from cloverleaf.providers.registry import check_config_keys

from .vertex_mock import new_key, pem, write_authorized_user, write_service_account

TOKEN_URI = "http://127.0.0.1:9/token"   # never dialled here


@pytest.fixture(scope="module")
def key() -> Any:
    return new_key()


@pytest.fixture()
def sa_file(tmp_path: Path, key: Any) -> Path:
    return write_service_account(tmp_path / "sa.json", key, TOKEN_URI)


def _target(env: dict[str, str], **extra: Any) -> Any:
    providers = {"vertex": ProviderSettings("vertex", extra=extra)} if extra else {}
    s = Settings(env=env, providers=providers)
    return Resolver(s, ModelRegistry()).resolve("vertex/gemini-2.5-flash", CallSettings())


def _url(target: Any, stream: bool = False) -> str:
    target.ready()
    req = ChatRequest(model=target.model, messages=[Message.user("hi")], stream=stream)
    return str(target.adapter.build_chat(req, target.cfg).url)


# --------------------------------------------------------------------------- where from


def test_credentials_explicit_file_then_environment_then_gcloud_adc(tmp_path: Path, key: Any) -> None:
    explicit = write_service_account(tmp_path / "explicit.json", key, TOKEN_URI)
    named = write_service_account(tmp_path / "named.json", key, TOKEN_URI)
    gcloud = tmp_path / "gcloud"
    gcloud.mkdir()
    adc = write_authorized_user(gcloud / "application_default_credentials.json")
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(named), "CLOUDSDK_CONFIG": str(gcloud)}
    assert find_credentials(str(explicit), env).path == str(explicit)
    assert find_credentials(None, env) == find_credentials(None, env) and find_credentials(None, env).origin == \
        "GOOGLE_APPLICATION_CREDENTIALS"
    assert find_credentials(None, {"CLOUDSDK_CONFIG": str(gcloud)}).path == str(adc)
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "gcloud").symlink_to(gcloud)
    found = find_credentials(None, {"HOME": str(home)})
    assert found.origin == "gcloud ADC" and found.path.endswith(".config/gcloud/application_default_credentials.json")
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS.*gcloud auth application-default login"):
        find_credentials(None, {"HOME": str(tmp_path / "nobody")})
    with pytest.raises(ConfigError, match="credentials_file names .*missing.json.*not a file"):
        find_credentials(str(tmp_path / "missing.json"), env)   # a typo is an error, not a fallback


def test_no_credentials_is_a_config_error_raised_at_the_call_that_says_what_to_do() -> None:
    target = _target({})
    with pytest.raises(ConfigError, match="credentials_file.*GOOGLE_APPLICATION_CREDENTIALS.*metadata server"):
        target.ready()


def test_project_and_location_from_config_then_environment_then_the_key_file(sa_file: Path) -> None:
    base = "https://{0}aiplatform.googleapis.com/v1/projects/{1}/locations/{2}/publishers/google/models/gemini-2.5-flash"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)}
    # the key file's project_id, location global (host without a region)
    assert _url(_target(env)) == base.format("", "proj-123", "global") + ":generateContent"
    env_too = {**env, "GOOGLE_CLOUD_PROJECT": "env-proj", "GOOGLE_CLOUD_LOCATION": "europe-west4"}
    assert _url(_target(env_too), stream=True) == \
        base.format("europe-west4-", "env-proj", "europe-west4") + ":streamGenerateContent?alt=sse"
    assert _url(_target(env_too, project="cfg-proj", location="us-east5")) == \
        base.format("us-east5-", "cfg-proj", "us-east5") + ":generateContent"


def test_litellm_s_vertex_variables_naming_where_the_call_goes_anyway_refuse_nothing(sa_file: Path) -> None:
    """LiteLLM's docs set VERTEXAI_PROJECT beside the service account: naming the key file's own
    project (where the call goes anyway) it refused every call; naming another it still does,
    since cloverleaf does not read it and the call would go to the key file's project."""
    same = _target({"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file), "VERTEXAI_PROJECT": "proj-123",
                    "VERTEXAI_CREDENTIALS": str(sa_file)})
    assert same.problem is None, same.problem
    assert "/projects/proj-123/" in _url(same)
    other = _target({"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file), "VERTEXAI_PROJECT": "other-proj"})
    assert other.problem is not None and "VERTEXAI_PROJECT" in str(other.problem)


def test_a_login_names_no_project_so_one_must_be_set(tmp_path: Path) -> None:
    login = write_authorized_user(tmp_path / "adc.json")
    with pytest.raises(ConfigError, match="needs a Google Cloud project.*GOOGLE_CLOUD_PROJECT"):
        _target({"GOOGLE_APPLICATION_CREDENTIALS": str(login)}).ready()
    target = _target({"GOOGLE_APPLICATION_CREDENTIALS": str(login), "GOOGLE_CLOUD_PROJECT": "p-42x"})
    assert "/projects/p-42x/locations/global/" in _url(target)


def test_an_explicit_base_url_wins_and_bad_names_are_refused(sa_file: Path) -> None:
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)}
    s = Settings(env=env, providers={"vertex": ProviderSettings("vertex", base_url="http://127.0.0.1:9/proxy")})
    target = Resolver(s, ModelRegistry()).resolve("vertex/gemini-2.5-flash", CallSettings())
    assert _url(target) == ("http://127.0.0.1:9/proxy/v1/projects/proj-123/locations/global/publishers/google/"
                            "models/gemini-2.5-flash:generateContent")
    with pytest.raises(ConfigError, match="not a Google Cloud location"):
        _target(env, location="us-central1/../x").ready()
    with pytest.raises(ConfigError, match="not a Google Cloud project id"):
        _target(env, project="a/b").ready()


def test_an_api_key_still_works_as_express_mode_without_credentials() -> None:
    s = Settings(env={})
    target = Resolver(s, ModelRegistry()).resolve("vertex/gemini-2.5-flash", CallSettings(api_key="AQ.express-key"))
    req = target.adapter.build_chat(ChatRequest(model=target.model, messages=[Message.user("hi")]), target.cfg)
    assert req.url == "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert req.headers["x-goog-api-key"] == "AQ.express-key" and "authorization" not in req.headers
    assert target.adapter.bearer_source(target.cfg) is None


def test_the_config_keys_are_checked_at_load() -> None:
    check_config_keys("vertex", "gemini", {"credentials_file": "k.json", "project": "p", "location": "l"}, "here")
    with pytest.raises(ConfigError, match="unknown key.*'credential_file'.*credentials_file"):
        check_config_keys("vertex", "gemini", {"credential_file": "k.json"}, "here")


def test_a_models_entry_takes_its_own_credentials_and_location(sa_file: Path) -> None:
    entry = ModelEntry(name="flash-eu", identifier="gemini-2.5-flash", provider="vertex", additional_config={
        "credentials_file": str(sa_file), "location": "europe-west1"})
    s = Settings(env={}, models=[entry])
    check_config_keys("vertex", "gemini", entry.additional_config, "here")
    target = Resolver(s, ModelRegistry([entry])).resolve("flash-eu", CallSettings())
    assert "//europe-west1-aiplatform.googleapis.com/v1/projects/proj-123/locations/europe-west1/" in _url(target)
    assert target.adapter.bearer_source(target.cfg) is not None


def test_a_custom_gemini_row_on_a_vertex_host_uses_credentials_too(sa_file: Path) -> None:
    row = ProviderSettings("gcp", kind="gemini", base_url="https://us-east5-aiplatform.googleapis.com",
                           extra={"credentials_file": str(sa_file), "location": "us-east5"})
    target = Resolver(Settings(env={}, providers={"gcp": row}), ModelRegistry()).resolve(
        "gcp/gemini-2.5-flash", CallSettings())
    assert _url(target) == ("https://us-east5-aiplatform.googleapis.com/v1/projects/proj-123/locations/us-east5/"
                            "publishers/google/models/gemini-2.5-flash:generateContent")
    assert target.adapter.bearer_source(target.cfg) is not None


# --------------------------------------------------------------------------- secrets


def test_no_secret_in_a_credentials_or_config_repr(sa_file: Path, key: Any, tmp_path: Path) -> None:
    private = pem(key).splitlines()[3]
    account = load_credential(str(sa_file), "vertex")
    login = load_credential(str(write_authorized_user(tmp_path / "adc.json")), "vertex")
    for shown in (repr(account), repr(login), repr(_target({"GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)}).cfg)):
        for secret in (private, "1//0refresh-secret", "d-FL95Q19q7MQmFp"):
            assert secret not in shown
    assert "runner@proj-123.iam.gserviceaccount.com" in repr(account)


def test_missing_cryptography_is_a_config_error_naming_the_extra(sa_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives", None)   # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'cloverleaf\[vertex\]'"):
        VertexCredentials("vertex").load(str(sa_file))


def test_dry_run_shows_the_bearer_redacted_and_fetches_nothing(sa_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_file))
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    monkeypatch.delenv("CLOVERLEAF_BACKEND", raising=False)
    assert main(["chat", "-m", "vertex/gemini-2.5-flash", "--dry-run", "--no-stream", "hi"]) == 0
    out = capsys.readouterr().out
    head = out.split("\n\n", 1)[0].splitlines()
    assert head[0] == ("POST https://us-central1-aiplatform.googleapis.com/v1/projects/proj-123/locations/"
                       "us-central1/publishers/google/models/gemini-2.5-flash:generateContent")
    assert "authorization: <redacted>" in head and "BEGIN" not in out
    # the token URI (port 9, discard) was never dialled: a dial would have failed the command


def test_doctor_names_the_file_and_its_type_never_its_contents(sa_file: Path, key: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("CLOVERLEAF_MASTER_KEY", "CLOVERLEAF_STATE_URL", "CLOVERLEAF_STORE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    login = write_authorized_user(tmp_path / "adc.json")
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.vertex]\nextra = {{ credentials_file = "{sa_file}" }}\n'
                      f'[providers.gcp]\nkind = "gemini"\nextra = {{ vertex = true }}\n'
                      f'[providers.gone]\nkind = "gemini"\nextra = {{ credentials_file = "{tmp_path / "nope.json"}" }}\n')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(login))
    code = main(["doctor", "--config", str(config)])
    out = capsys.readouterr().out
    assert f"vertex           service_account at {sa_file} (from credentials_file)" in out
    assert f"gcp              authorized_user at {login} (from GOOGLE_APPLICATION_CREDENTIALS)" in out
    assert "gone" in out and "nope.json" in out and code == 1       # a configured file that is not there
    for secret in (pem(key).splitlines()[3], "1//0refresh-secret", "d-FL95Q19q7MQmFp"):
        assert secret not in out
    assert json.loads(sa_file.read_text())["private_key_id"] not in out


# --------------------------------------------------------------------------- listing and price


def test_vertex_is_listed_priced_as_gemini_and_embeds() -> None:
    flags = dict(rows())["vertex"]
    assert flags[0] and flags[6]     # text, and embeddings through Vertex AI's :predict
    assert lookup("vertex", "gemini-2.5-flash") == all_prices()["gemini/gemini-2.5-flash"]
