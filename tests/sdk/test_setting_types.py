"""Text and true/false settings in the configuration the SDK loads: a number or a table where text
belongs, and anything but ``true``/``false`` where a boolean does, is refused when the file is
loaded, with an error naming the key. ``identifier = 5`` or ``base_url = 5`` loaded, passed
``cloverleaf doctor`` and then made every call to the model a 500; ``is_public = "false"`` listed
the model in ``/v1/models`` (the string is true) while privacy read it as not false."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf._errors import ConfigError

LAB = '[providers.mylab]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
ENTRY = '[[models]]\nname = "a"\nprovider = "mylab"\nidentifier = "m"\n'


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "cloverleaf.toml"
    path.write_text(text)
    return Settings.load(path, env={})


@pytest.mark.parametrize(("text", "message"), [
    ('[[models]]\nname = "a"\nprovider = "openai"\nidentifier = 5\n',
     "[[models]] entry 'a' identifier must be text in quotes"),
    ('[[models]]\nname = "a"\nprovider = "openai"\nidentifier = "gpt-4o"\nbase_url = 5\n',
     "[[models]] entry 'a' base_url must be text in quotes"),
    ('[[models]]\nname = 5\nprovider = "openai"\nidentifier = "gpt-4o"\n', "[[models]] entry 5 name must be text"),
    (LAB + '[[models]]\nname = "a"\nprovider = ["mylab"]\nidentifier = "m"\n',
     "[[models]] entry 'a' provider must be text in quotes (\"...\"), not an array"),
    (LAB + ENTRY + "api_key_env = 5\n", "[[models]] entry 'a' api_key_env must be text"),
    (LAB + ENTRY + 'additional_config = "stream_usage"\n',
     "[[models]] entry 'a' additional_config must be a table ({ key = value }), not a string"),
    (LAB + 'headers = "x"\n' + ENTRY, '[providers.mylab] headers must be a table of text values ({ X-Team = "ml" }), '
                                      "not a string"),
    (LAB + "headers = {x = 5}\n" + ENTRY, "[providers.mylab] headers 'x' must be text in quotes (\"...\"), not a number"),
    (LAB + "api_key_env = 5\n" + ENTRY, "[providers.mylab] api_key_env must be text"),
    ('[providers.mylab]\nkind = "openai"\nbase_url = 5\n' + ENTRY, "[providers.mylab] base_url must be text"),
    (LAB + 'extra = "stream_usage"\n', "[providers.mylab] extra must be a table ({ key = value }), not a string"),
    ("[defaults]\nmodel = 5\n", "[defaults] model must be text in quotes"),
    ("[defaults]\nembedding_model = { name = \"x\" }\n", "[defaults] embedding_model must be text in quotes (\"...\"), "
                                                          "not a table"),
    ("[defaults]\nbackend = true\n", "[defaults] backend must be text in quotes (\"...\"), not a boolean"),
    ("[attachments]\nallow_hosts = [5]\n", "[attachments] allow_hosts[0] must be text in quotes"),
    ('[attachments]\nallow_hosts = "cdn.internal"\n', "[attachments] allow_hosts must be an array of text values"),
    ("[attachments]\nallow_networks = [10]\n", "[attachments] allow_networks[0] must be text in quotes"),  # was an AttributeError
])
def test_a_text_setting_of_another_type_is_refused_at_load_naming_the_key(tmp_path: Path, text: str,
                                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _load(tmp_path, text)


def test_a_literal_key_of_the_wrong_type_is_not_repeated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, LAB + ENTRY + "api_key = 8675309123\n")
    assert "api_key must be text" in str(refused.value) and "8675309123" not in str(refused.value)


def test_text_settings_load_as_written(tmp_path: Path) -> None:
    s = _load(tmp_path, '[defaults]\nmodel = "a"\n' + LAB + 'api_key_env = "LAB_KEY"\nheaders = { X-Team = "ml" }\n'
                        + ENTRY + 'base_url = "http://127.0.0.1:9/v2"\n[attachments]\nallow_hosts = ["cdn.internal"]\n')
    assert s.default_model == "a" and s.providers["mylab"].headers == {"X-Team": "ml"}
    assert s.model_entry("a").base_url == "http://127.0.0.1:9/v2"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ['"false"', '"true"', "0", '"no"'])
def test_is_public_takes_only_true_or_false(tmp_path: Path, value: str) -> None:
    """README: a boolean setting takes only true or false ("false" in quotes is an error naming
    the key, not a true value)."""
    with pytest.raises(ConfigError, match=re.escape("[[models]] entry 'a' is_public must be true or false, got ")):
        _load(tmp_path, LAB + ENTRY + f"is_public = {value}\n")
    assert _load(tmp_path, LAB + ENTRY + "is_public = false\n").model_entry("a").is_public is False  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "message"), [
    (LAB + "extra = { stream_usage = \"false\" }\n", "[providers.mylab] extra stream_usage must be true or false"),
    ('[[models]]\nname = "r"\nprovider = "openai-responses"\nidentifier = "gpt-5"\n'
     'additional_config = { store = "false" }\n', "[[models]] entry 'r' additional_config store must be true or false"),
    ('[[models]]\nname = "g"\nprovider = "gemini"\nidentifier = "gemini-2.5-pro"\nadditional_config = { vertex = 1 }\n',
     "[[models]] entry 'g' additional_config vertex must be true or false, got 1"),
    ('[[models]]\nname = "o"\nprovider = "ollama"\nidentifier = "llama3.1"\nadditional_config = { low_vram = "no" }\n',
     "[[models]] entry 'o' additional_config low_vram must be true or false"),
])
def test_a_providers_true_or_false_key_takes_only_a_boolean(tmp_path: Path, text: str, message: str) -> None:
    """``store = "false"`` in a Responses entry is true to Python: the calls were stored at OpenAI."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        _load(tmp_path, text)


def test_entries_given_in_code_are_checked_as_the_files_are() -> None:
    with pytest.raises(ConfigError, match=re.escape("[[models]] entry 'a' is_public must be true or false")):
        Settings.load(env={}, models=[ModelEntry(name="a", identifier="m", provider="openai",
                                                 is_public="false")])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape("[providers.mylab] base_url must be text")):
        Settings.load(env={}, providers={"mylab": ProviderSettings("mylab", kind="openai",
                                                                   base_url=5)})  # type: ignore[arg-type]
