from pathlib import Path

import pytest

from cloverleaf._client import Client
from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import ConfigError

TOML = """
[defaults]
model = "groq/llama-3.1-8b-instant"
max_retries = 5

[providers.mylab]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "MYLAB_KEY"

[providers.ollama]
base_url = "http://gpu-box:11434"

[[models]]
name = "smart"
identifier = "gpt-4o"
provider = "openai"
input_cost_per_1k = 0.01
output_cost_per_1k = 0.03

[[models]]
name = "my-azure"
identifier = "gpt-4o-prod"
provider = "azure"
base_url = "https://res.openai.azure.com/openai/deployments/gpt-4o-prod"
additional_config = { api_version = "2024-10-21" }
"""


@pytest.fixture
def toml_file(tmp_path):
    p = tmp_path / "cloverleaf.toml"
    p.write_text(TOML)
    return p


def test_layering_defaults_toml_env_args(toml_file):
    s = Settings.load(toml_file, env={})
    assert s.default_model == "groq/llama-3.1-8b-instant" and s.max_retries == 5
    s = Settings.load(toml_file, env={"CLOVERLEAF_MODEL": "openai/gpt-4o", "CLOVERLEAF_MAX_RETRIES": "1"})
    assert s.default_model == "openai/gpt-4o" and s.max_retries == 1
    s = Settings.load(toml_file, env={"CLOVERLEAF_MODEL": "openai/gpt-4o"}, default_model="fake/echo")
    assert s.default_model == "fake/echo"


def test_config_env_var_points_at_file(toml_file):
    s = Settings.load(env={"CLOVERLEAF_CONFIG": str(toml_file)})
    assert s.source_path == toml_file and s.model_entry("smart").identifier == "gpt-4o"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="CLOVERLEAF_CONFIG"):
        Settings.load(env={"CLOVERLEAF_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize("text, message", [
    ("[defaults\nmodel=1", "invalid TOML"),
    ("[nonsense]\na = 1", "unknown table"),
    ("[defaults]\nmodle = 'x'", "unknown key"),
    ("[providers.x]\nkind='openai'\napi_key='sk-123'", "api_key_env"),
    ("[[models]]\nname='a'\nprovider='openai'", "identifier"),
    # a typo passed loading, doctor and serve, and failed every call (as a 404 model_not_found on the server)
    ("[providers.mylab]\nkind='opneai'\nbase_url='http://127.0.0.1:9/v1'",
     r"\[providers.mylab\] kind = 'opneai' is not a provider kind; kinds: openai, openai_responses, anthropic"),
    ("[providers.mylab]\nkind=3", r"kind = 3 is not a provider kind"),
])
def test_bad_config_says_what_is_wrong(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Settings.load(p, env={})


def test_an_unknown_provider_kind_is_refused_by_every_path_that_defines_providers(tmp_path, capsys):
    from cloverleaf._config import ProviderSettings
    from cloverleaf.cli import main

    with pytest.raises(ConfigError, match="kind = 'opneai' is not a provider kind"):
        Settings.load(env={}, providers={"mylab": ProviderSettings("mylab", kind="opneai")})
    assert Settings.load(env={}, providers={"lab": ProviderSettings("lab", kind="openai_compatible")}).providers
    config = tmp_path / "c.toml"
    config.write_text("[providers.mylab]\nkind = 'opneai'\n[store]\nurl = 'sqlite:///cl.db'\n")
    assert main(["--config", str(config), "doctor"]) == 1      # it said "settings ok" and exited 0
    assert "kind = 'opneai' is not a provider kind" in capsys.readouterr().out


def test_an_empty_config_path_says_so(capsys):
    from cloverleaf.cli import main

    with pytest.raises(ConfigError, match="the config file path is empty"):
        Settings.load("", env={})
    assert main(["--config", "", "chat", "-m", "fake/echo", "hi"]) == 1
    assert "'.'" not in capsys.readouterr().err


def test_resolution_of_registry_entries_custom_providers_and_keys(toml_file):
    env = {"OPENAI_API_KEY": "sk-openai", "MYLAB_KEY": "lab-key", "AZURE_OPENAI_API_KEY": "az",
           "OLLAMA_BASE_URL": "http://env-box:11434"}
    engine = Engine(Settings.load(toml_file, env=env))
    smart = engine.resolve("smart")
    assert (smart.provider, smart.model, smart.cfg.api_key) == ("openai", "gpt-4o", "sk-openai")
    assert smart.price.input == pytest.approx(10.0) and smart.price.output == pytest.approx(30.0)
    lab = engine.resolve("mylab/qwen")
    assert lab.cfg.base_url == "http://127.0.0.1:9/v1" and lab.cfg.api_key == "lab-key" and lab.spec.kind == "openai"
    az = engine.resolve("my-azure")
    assert az.cfg.extra["api_version"] == "2024-10-21" and az.model == "gpt-4o-prod"
    # environment beats the TOML file
    assert engine.resolve("ollama/llama3.1").cfg.base_url == "http://env-box:11434"
    # call arguments beat everything
    t = engine.resolve("openai/gpt-4o-mini", api_key="sk-call", base_url="http://127.0.0.1:1/v1")
    assert t.cfg.api_key == "sk-call" and t.cfg.base_url == "http://127.0.0.1:1/v1"
    assert "sk-call" not in repr(t.cfg)


def test_a_provider_settings_key_is_used_for_a_built_in_provider_too():
    """``ProviderSettings(api_key=...)`` on a built-in row was ignored, and the call asked for
    DEEPSEEK_API_KEY; a registry entry's own key and a call's still come first."""
    from cloverleaf._config import ModelEntry, ProviderSettings

    engine = Engine(Settings(env={}, providers={"deepseek": ProviderSettings("deepseek", api_key="sk-ds")}))
    assert engine.resolve("deepseek/deepseek-chat").cfg.api_key == "sk-ds"
    assert engine.resolve("deepseek/deepseek-chat", api_key="sk-call").cfg.api_key == "sk-call"
    engine.registry.add(ModelEntry(name="ds", identifier="deepseek-chat", provider="deepseek", api_key="sk-entry"))
    assert engine.resolve("ds").cfg.api_key == "sk-entry"


def test_missing_key_names_the_variable():
    """Kept on the target and raised after the capability check (Target.ready), before any I/O."""
    engine = Engine(Settings.load(env={}))
    with pytest.raises(ConfigError, match="GEMINI_API_KEY .*GOOGLE_API_KEY"):
        engine.resolve("gemini/gemini-2.5-flash").ready()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        engine.resolve("gpt-4o").ready()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"), Client(Settings.load(env={})) as client:
        client.chat("gpt-4o", "hi")


def test_keyless_local_providers_resolve():
    engine = Engine(Settings.load(env={}))
    assert engine.resolve("ollama/llama3.1").cfg.base_url == "http://localhost:11434"
    assert engine.resolve("vllm/qwen").cfg.api_key is None


def test_azure_without_registry_entry_says_to_add_one():
    engine = Engine(Settings.load(env={"AZURE_OPENAI_API_KEY": "x"}))
    with pytest.raises(ConfigError, match=r"needs a registry entry.*\[\[models\]\]"):
        engine.resolve("azure/gpt-4o").ready()


def test_backend_fake_sends_every_call_to_the_fake():
    engine = Engine(Settings.load(env={"CLOVERLEAF_BACKEND": "fake"}))
    t = engine.resolve("anthropic/claude-sonnet-4-5")
    assert t.provider == "fake" and t.model == "claude-sonnet-4-5"


def test_backend_fake_dials_no_url_an_entry_or_a_call_names(tmp_path: Path) -> None:
    """``CLOVERLEAF_BACKEND=fake`` promises an offline run: a ``fake`` entry with its own ``base_url``, or a
    call's ``base_url=``, used to send the request to that address."""
    from cloverleaf.providers.fake.adapter import BASE_URL

    config = tmp_path / "cloverleaf.toml"
    config.write_text('[[models]]\nname = "mine"\nprovider = "fake"\nidentifier = "echo"\n'
                      'base_url = "http://127.0.0.1:9/v1"\n')
    settings = Settings.load(env={"CLOVERLEAF_BACKEND": "fake", "CLOVERLEAF_CONFIG": str(config)})
    engine = Engine(settings)
    assert engine.resolve("mine").cfg.base_url == BASE_URL
    with Client(env={"CLOVERLEAF_BACKEND": "fake", "CLOVERLEAF_CONFIG": str(config)}) as client:
        assert client.chat("mine", "still offline").content == "still offline"
        assert client.chat("openai/gpt-4o-mini", "x", base_url="http://127.0.0.1:9/v1").provider == "fake"


@pytest.mark.parametrize("value", ["FAKE", "offline", "fake ", "openai"])
def test_a_backend_other_than_fake_is_refused_not_ignored(tmp_path: Path, value: str) -> None:
    """README: ``CLOVERLEAF_BACKEND=fake`` sends every call to the fake provider. Any other value
    was kept (``cloverleaf doctor`` even said "every call goes to the fake provider") and ignored
    by every call, which then went to the real provider with the real key."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    with pytest.raises(ConfigError, match=r"CLOVERLEAF_BACKEND must be \"fake\".*leave it unset"):
        Client(env={**env, "CLOVERLEAF_BACKEND": value})
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[defaults]\nbackend = "{value}"\n')
    with pytest.raises(ConfigError, match=r"\[defaults\] backend must be \"fake\""):
        Settings.load(config, env=env)
    with pytest.raises(ConfigError, match=r"backend setting must be \"fake\""):
        Client(env=env, backend=value)
    assert Settings.load(env={**env, "CLOVERLEAF_BACKEND": ""}).backend is None   # empty: unset, as scripts/run uses it


def test_targets_are_cached_not_rebuilt():
    engine = Engine(Settings.load(env={}))
    assert engine.resolve("fake/echo") is engine.resolve("fake/echo")


def test_gateway_table_mistakes_are_reported_when_the_client_is_built(tmp_path: Path) -> None:
    """Unknown keys anywhere in the gateway's tables are a ConfigError naming the allowed keys
    when the configuration is loaded into a Client, not at its first call."""
    import cloverleaf

    cases = {
        "[routes.smart]\ntargets = [\"fake/echo\"]\nretires = 2\n": "retries",
        "[limits.openai]\nrpn = 5\n": "rpm",
        "[cache]\nmode = \"exact\"\ntll = 5\n": "ttl",
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice = \"x\"\n": "service_name",
        "[store]\nurll = \"sqlite:///x.db\"\n": "url",
    }
    for text, allowed in cases.items():
        path = tmp_path / "cloverleaf.toml"
        path.write_text(text)
        with pytest.raises(cloverleaf.ConfigError, match=allowed):
            cloverleaf.Client(str(path))
