import pytest

from cloverleaf._errors import ConfigError
from cloverleaf._models import infer_provider, parse_model_id
from cloverleaf.providers.registry import provider_names

KNOWN = frozenset(provider_names())


@pytest.mark.parametrize("model_id, provider, model", [
    ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
    ("ollama/llama3.1", "ollama", "llama3.1"),
    ("ollama/llama3.1:8b", "ollama", "llama3.1:8b"),
    ("ollama:llama3.1:8b", "ollama", "llama3.1:8b"),
    ("openrouter/openai/gpt-4o", "openrouter", "openai/gpt-4o"),
    ("openrouter/anthropic/claude-3.5-sonnet", "openrouter", "anthropic/claude-3.5-sonnet"),
    ("groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
    ("fake/echo", "fake", "echo"),
    ("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("openai-responses/o3-mini", "openai-responses", "o3-mini"),
    # inference from bare ids
    ("gpt-4o", "openai", "gpt-4o"),
    ("o3-mini", "openai", "o3-mini"),
    ("o3", "openai", "o3"),
    ("o4-mini", "openai", "o4-mini"),
    ("claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"),
    ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
    ("amazon.titan-embed-text-v2:0", "bedrock", "amazon.titan-embed-text-v2:0"),
    ("meta.llama3-1-70b-instruct-v1:0", "bedrock", "meta.llama3-1-70b-instruct-v1:0"),
    ("mistral.mistral-large-2407-v1:0", "bedrock", "mistral.mistral-large-2407-v1:0"),
    ("cohere.embed-english-v3", "bedrock", "cohere.embed-english-v3"),
    ("stability.sd3-5-large-v1:0", "bedrock", "stability.sd3-5-large-v1:0"),
])
def test_parse(model_id, provider, model):
    mid = parse_model_id(model_id, KNOWN)
    assert (mid.provider, mid.model) == (provider, model)


def test_o_prefix_does_not_swallow_other_names():
    assert infer_provider("o1-preview") == "openai"
    assert infer_provider("ollama-thing") is None
    assert infer_provider("o3x") is None


def test_unknown_provider_lists_known_ones():
    with pytest.raises(ConfigError) as err:
        parse_model_id("nosuch/model", KNOWN)
    assert "unknown provider 'nosuch'" in str(err.value) and "openai" in str(err.value)


def test_bare_unknown_model_says_how_to_write_it():
    with pytest.raises(ConfigError) as err:
        parse_model_id("llama3.1", KNOWN)
    assert "provider/llama3.1" in str(err.value)


def test_provider_without_model():
    with pytest.raises(ConfigError, match="no model"):
        parse_model_id("openai/", KNOWN)
