import pytest

from cloverleaf._pricing import ModelPrice, all_prices, lookup
from cloverleaf._types import Usage


def test_table_has_at_least_thirty_models_with_context_windows():
    prices = all_prices()
    chat = [k for k, p in prices.items() if p.output > 0]
    assert len(chat) >= 30
    assert all(p.context_window for p in prices.values())


@pytest.mark.parametrize("provider, model, expected", [
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("openrouter", "anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
    ("ollama", "llama3.1:8b", "llama3.1"),
    ("gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
])
def test_lookup_normalises_snapshots_and_resellers(provider, model, expected):
    price = lookup(provider, model)
    assert price is not None
    vendor = {"bedrock": "anthropic", "openrouter": "anthropic"}.get(provider, provider)
    assert price == all_prices()[f"{vendor}/{expected}"]


def test_unknown_model_has_no_price():
    assert lookup("openai", "gpt-99") is None
    assert lookup("together", "some/unlisted-model") is None


def test_cost_counts_cached_cache_writes_and_reasoning():
    p = ModelPrice(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    # 1000 input of which 600 cache reads and 200 cache writes; 500 output incl. 300 reasoning
    u = Usage(input_tokens=1000, output_tokens=500, cached_tokens=600, cache_write_tokens=200, reasoning_tokens=300)
    expected = (200 * 3.0 + 600 * 0.3 + 200 * 3.75 + 500 * 15.0) / 1e6
    assert p.cost(u) == pytest.approx(expected)


def test_registry_override_per_1k():
    p = ModelPrice.per_1k(0.01, 0.03)
    assert p.cost(Usage(1000, 1000)) == pytest.approx(0.04)
