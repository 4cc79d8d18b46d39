"""A LiteLLM user's habits (model prefixes, environment variables, call keywords, config.yaml)
either work the same or fail with an error naming what to write: never a silent reroute."""

from __future__ import annotations

import json

import pytest

import cloverleaf
from cloverleaf._errors import ConfigError
from cloverleaf._models import parse_model_id
from cloverleaf.providers.registry import PROVIDER_ALIASES, provider_names

from .upstream import Reply

KNOWN = frozenset(provider_names()) | frozenset(PROVIDER_ALIASES)


@pytest.mark.parametrize("litellm_id, write", [
    ("vertex_ai/gemini-1.5-pro", "'vertex/gemini-1.5-pro'"),
    ("ollama_chat/llama3", "'ollama/llama3'"),
    ("together_ai/meta-llama/Llama-3-8b-chat-hf", "'together/meta-llama/Llama-3-8b-chat-hf'"),
    ("fireworks_ai/accounts/fireworks/models/llama-v3-70b-instruct",
     "'fireworks/accounts/fireworks/models/llama-v3-70b-instruct'"),
    ("text-completion-openai/gpt-3.5-turbo-instruct", "legacy Completions API"),
    ("huggingface/meta-llama/Llama-3-8B", "[providers.huggingface]"),
    ("bedrock/converse/anthropic.claude-3-sonnet-20240229-v1:0", "'bedrock/anthropic.claude-3-sonnet-20240229-v1:0'"),
    ("bedrock/invoke/anthropic.claude-3-sonnet-20240229-v1:0", "'bedrock/anthropic.claude-3-sonnet-20240229-v1:0'"),
])
def test_a_litellm_model_prefix_is_refused_naming_what_to_write(litellm_id: str, write: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_model_id(litellm_id, KNOWN)
    assert "LiteLLM" in str(err.value) and write in str(err.value)


def test_litellm_prefixes_cloverleaf_shares_parse_as_they_did() -> None:
    for model_id, provider, model in (("anthropic/claude-3-5-sonnet-20240620", "anthropic", "claude-3-5-sonnet-20240620"),
                                      ("gemini/gemini-1.5-pro", "gemini", "gemini-1.5-pro"),
                                      ("azure/my-deployment", "azure", "my-deployment"),
                                      ("bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock",
                                       "us.anthropic.claude-3-5-sonnet-20241022-v2:0")):
        mid = parse_model_id(model_id, KNOWN)
        assert (mid.provider, mid.model) == (provider, model)


def test_a_configured_provider_named_like_a_litellm_prefix_is_the_configured_one() -> None:
    mid = parse_model_id("together_ai/x", KNOWN | {"together_ai"})
    assert (mid.provider, mid.model) == ("together_ai", "x")


def test_ollama_api_base_is_not_ignored_for_localhost(upstream) -> None:
    """LiteLLM's OLLAMA_API_BASE names the user's Ollama; cloverleaf reads OLLAMA_BASE_URL, and
    without this check the call went to localhost:11434, another server."""
    client = cloverleaf.Client(env={"OLLAMA_API_BASE": upstream.url})
    with pytest.raises(ConfigError) as err:
        client.chat("ollama/llama3", "hi")
    message = str(err.value)
    assert "OLLAMA_API_BASE" in message and "OLLAMA_BASE_URL" in message and "localhost:11434" in message
    assert upstream.seen == []

    body = {"model": "llama3", "message": {"role": "assistant", "content": "hello"}, "done": True,
            "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}
    upstream.replies.append(Reply(body=json.dumps(body).encode()))
    both = cloverleaf.Client(env={"OLLAMA_API_BASE": upstream.url, "OLLAMA_BASE_URL": upstream.url})
    assert both.chat("ollama/llama3", "hi").content == "hello"   # ours set: LiteLLM's is beside the point


def test_openai_api_base_refuses_rather_than_send_the_key_to_openai() -> None:
    client = cloverleaf.Client(env={"OPENAI_API_BASE": "http://user:pw-secret@10.1.2.3:8000/v1",
                                    "OPENAI_API_KEY": "sk-for-the-proxy"})
    target = client._target("openai/gpt-4o-mini", {})
    assert target.problem is not None
    message = str(target.problem)
    assert "OPENAI_BASE_URL" in message and "api.openai.com" in message
    assert "pw-secret" not in message and "sk-for-the-proxy" not in message
    assert client._target("openai/gpt-4o-mini", {"base_url": "http://10.1.2.3:8000/v1"}).problem is None


@pytest.mark.parametrize("env, expect", [
    ({"AWS_REGION_NAME": "eu-central-1", "AWS_REGION": "us-east-1"}, "cloverleaf would use AWS_REGION"),
    ({"AWS_REGION_NAME": "eu-central-1"}, "neither AWS_REGION nor AWS_DEFAULT_REGION is set"),
])
def test_aws_region_name_never_lets_bedrock_go_to_another_region(env: dict[str, str], expect: str) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    target = cloverleaf.Client(env={**creds, **env})._target("bedrock/anthropic.claude-3-haiku-20240307-v1:0", {})
    assert target.problem is not None and "AWS_REGION_NAME" in str(target.problem) and expect in str(target.problem)
    same = cloverleaf.Client(env={**creds, "AWS_REGION_NAME": "eu-central-1", "AWS_REGION": "eu-central-1"})
    assert same._target("bedrock/anthropic.claude-3-haiku-20240307-v1:0", {}).problem is None


def test_vertexai_location_never_lets_vertex_go_to_the_global_endpoint() -> None:
    env = {"VERTEXAI_LOCATION": "europe-west4", "GOOGLE_CLOUD_PROJECT": "p", "VERTEXAI_CREDENTIALS": '{"private_key": "x"}'}
    target = cloverleaf.Client(env=env)._target("vertex/gemini-1.5-pro", {})
    assert target.problem is not None
    assert "GOOGLE_CLOUD_LOCATION" in str(target.problem) and "private_key" not in str(target.problem)


@pytest.mark.parametrize("env, model", [
    ({"OLLAMA_API_BASE": "http://localhost:11434"}, "ollama/llama3"),
    ({"OLLAMA_API_BASE": "http://LOCALHOST:11434/"}, "ollama/llama3"),
    ({"OPENAI_API_BASE": "https://api.openai.com/v1", "OPENAI_API_KEY": "sk-x"}, "openai/gpt-4o-mini"),
    ({"ANTHROPIC_API_BASE": "https://api.anthropic.com/", "ANTHROPIC_API_KEY": "k"}, "anthropic/claude-sonnet-4-5"),
    ({"VERTEXAI_LOCATION": "global"}, "vertex/gemini-1.5-pro"),
])
def test_a_litellm_variable_naming_where_the_call_goes_anyway_refuses_nothing(env: dict[str, str], model: str) -> None:
    """LiteLLM's docs have ``OLLAMA_API_BASE=http://localhost:11434`` and
    ``OPENAI_API_BASE=https://api.openai.com/v1``: set to the very default the call goes to,
    the variable would send it nowhere else, yet every call on the provider was refused."""
    target = cloverleaf.Client(env=env)._target(model, {"api_key": "k"} if model.startswith("vertex/") else {})
    assert target.problem is None, target.problem


def test_the_vertex_location_litellm_s_variable_is_compared_with_is_the_adapter_s() -> None:
    from cloverleaf._litellm_names import ENV_NAMES
    from cloverleaf.providers.gemini.vertex_urls import DEFAULT_LOCATION

    assert next(n.default for n in ENV_NAMES if n.litellm == "VERTEXAI_LOCATION") == DEFAULT_LOCATION


def test_a_litellm_variable_beside_ours_set_is_not_named_in_an_unrelated_error() -> None:
    """With GOOGLE_CLOUD_PROJECT set, the missing credentials' error said "VERTEXAI_PROJECT is
    set ...: cloverleaf reads GOOGLE_CLOUD_PROJECT", sending the user to set what was set."""
    env = {"VERTEXAI_PROJECT": "p", "GOOGLE_CLOUD_PROJECT": "p", "HOME": "/nonexistent", "CLOUDSDK_CONFIG": "/nonexistent"}
    message = str(cloverleaf.Client(env=env)._target("vertex/gemini-1.5-pro", {}).problem)
    assert "no Google credentials" in message and "VERTEXAI_PROJECT" not in message


def test_a_missing_key_names_the_variable_cloverleaf_reads_beside_litellm_s() -> None:
    target = cloverleaf.Client(env={"TOGETHERAI_API_KEY": "k"})._target("together/meta-llama/x", {})
    assert "TOGETHER_API_KEY" in str(target.problem) and "TOGETHERAI_API_KEY is set" in str(target.problem)
    azure = cloverleaf.Client(env={"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_API_KEY": "k"})
    problem = str(azure._target("azure/prod-chat", {}).problem)
    assert "AZURE_API_KEY is set" in problem and "AZURE_OPENAI_API_KEY" in problem


@pytest.mark.parametrize("option, write", [("api_base", "base_url="), ("num_retries", "max_retries="),
                                           ("stream", "cloverleaf.stream("), ("max_completion_tokens", "max_tokens=")])
def test_a_litellm_keyword_is_refused_naming_ours(option: str, write: str) -> None:
    with pytest.raises(TypeError) as err:
        cloverleaf.Client(backend="fake").chat("fake/echo", "hi", **{option: 1})   # type: ignore[call-overload]
    assert write in str(err.value) and f"instead of {option}=" in str(err.value)


def test_a_litellm_proxy_config_is_named_as_such(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n")
    with pytest.raises(ConfigError) as err:
        cloverleaf.Settings.load(config, env={})
    assert "LiteLLM proxy config" in str(err.value) and "[[models]]" in str(err.value)
    assert "invalid TOML" not in str(err.value)
