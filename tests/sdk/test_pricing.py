import json
from typing import Any

import pytest

from cloverleaf import Client
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import ConfigError
from cloverleaf._pricing import ModelPrice, all_prices, lookup
from cloverleaf._types import ChatRequest, Message, Usage

from .upstream import Reply, Upstream


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
    # OpenAI's Responses API bills as its Chat Completions (Codex through the gateway was all unknown cost)
    ("openai-responses", "gpt-4o-2024-08-06", "gpt-4o"),
])
def test_lookup_normalises_snapshots_and_resellers(provider, model, expected):
    price = lookup(provider, model)
    assert price is not None
    vendor = {"bedrock": "anthropic", "openrouter": "anthropic", "openai-responses": "openai"}.get(provider, provider)
    assert price == all_prices()[f"{vendor}/{expected}"]


@pytest.mark.parametrize("profile, model", [
    ("us.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("eu.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ("apac.amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0"),
    ("global.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("us-gov.meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
    ("us.meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-8b-instruct-v1:0"),
    ("jp.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
])
def test_a_bedrock_cross_region_profile_bills_as_its_model(profile, model):
    """A cross-region inference profile id is priced as the model it routes to, for every vendor
    (not only Anthropic's, which the reseller alias covered): else a budget refused it as unpriced."""
    price = lookup("bedrock", profile)
    assert price is not None
    assert price == lookup("bedrock", model)


@pytest.mark.parametrize("arn, model", [
    ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
     "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0",
     "amazon.nova-lite-v1:0"),
    ("arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/meta.llama3-1-70b-instruct-v1:0",
     "meta.llama3-1-70b-instruct-v1:0"),
])
def test_a_bedrock_model_arn_bills_as_the_model_it_names(arn, model):
    """The ARN of a foundation model or of a system inference profile (how IAM-scoped setups
    name models) names its model: it went unpriced, and budgets refused it with budget_unpriced."""
    price = lookup("bedrock", model)
    assert price is not None and lookup("bedrock", arn) == price


@pytest.mark.parametrize("arn", [
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6",
])
def test_a_bedrock_arn_that_names_no_model_is_unpriced(arn):
    assert lookup("bedrock", arn) is None   # unknown, never a made-up 0: its entry gives the rates


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


def test_one_hour_cache_writes_bill_at_the_one_hour_rate():
    p = lookup("anthropic", "claude-sonnet-4-5")
    assert (p.cache_write, p.cache_write_1h) == (3.75, 6.0)
    # 1000 writes, 400 of them to the one-hour cache
    u = Usage(input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=400)
    assert p.cost(u) == pytest.approx((600 * 3.75 + 400 * 6.0) / 1e6)
    assert p.dearest_input == 6.0   # what a budget's bound assumes of an input token


def test_unreported_usage_has_no_cost_unless_nothing_bills():
    unknown = Usage(reported=False)
    assert ModelPrice(input=3.0, output=15.0).cost(unknown) is None
    assert ModelPrice(0.0, 0.0).cost(unknown) == 0.0      # a free local model is free however much it did
    assert (Usage(1, 1) + unknown).reported is False       # a sum with an unknown part is unknown


def test_usage_nobody_reported_is_estimated_for_whole_and_streamed_answers(upstream: Upstream) -> None:
    """README: with no usage from the upstream the counts are estimates (about four characters a
    token); they were left at 0 and 0, as if the call had used nothing. Still unreported: no cost."""
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 400}, "finish_reason": "stop"}]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    upstream.queue(Reply(body=json.dumps(answer).encode()),
                   Reply(headers={"content-type": "text/event-stream"},
                         chunks=[chunk({"content": "x" * 100}) for _ in range(4)] + [chunk({}, "stop"), b"data: [DONE]\n\n"]))
    prompt = "hello there " * 10
    with Client(Settings.load(env={"OPENAI_API_KEY": "k"}), max_retries=0) as client:
        whole = client.chat("openai/gpt-4o-mini", prompt, base_url=f"{upstream.url}/v1")
        streamed = client.stream("openai/gpt-4o-mini", prompt, base_url=f"{upstream.url}/v1").until_done()
    expected_input = Engine.estimate_tokens(ChatRequest("gpt-4o-mini", [Message.user(prompt)]))
    assert expected_input > 0
    for resp in (whole, streamed):
        assert resp.content == "x" * 400 and resp.usage.reported is False and resp.cost is None
        assert (resp.usage.input_tokens, resp.usage.output_tokens) == (expected_input, 101)  # 400 chars, ~4 a token


def _resolve(entry: ModelEntry) -> Any:
    engine = Engine(Settings(models=[entry], env={"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}))
    try:
        return engine.resolve(entry.name)
    finally:
        engine.close()


def test_an_entrys_price_keeps_the_tables_cache_rates_in_proportion():
    same = _resolve(ModelEntry("sonnet", "claude-sonnet-4-5", "anthropic",
                               input_cost_per_1k=0.003, output_cost_per_1k=0.015)).price
    assert (same.cached_input, same.cache_write, same.cache_write_1h) == (0.3, 3.75, 6.0)
    half = _resolve(ModelEntry("sonnet", "claude-sonnet-4-5", "anthropic",
                               input_cost_per_1k=0.0015, output_cost_per_1k=0.015)).price
    assert (half.cached_input, half.cache_write, half.cache_write_1h) == pytest.approx((0.15, 1.875, 3.0))
    given = _resolve(ModelEntry("sonnet", "claude-sonnet-4-5", "anthropic", input_cost_per_1k=0.003,
                                output_cost_per_1k=0.015, cached_input_cost_per_1k=0.0001,
                                cache_write_cost_per_1k=0.004)).price
    assert (given.cached_input, given.cache_write) == pytest.approx((0.1, 4.0))
    u = Usage(input_tokens=200_000, cached_tokens=100_000, cache_write_tokens=100_000)
    assert same.cost(u) == lookup("anthropic", "claude-sonnet-4-5").cost(u) == pytest.approx(0.405)
    unlisted = _resolve(ModelEntry("mine", "gpt-99", "openai", input_cost_per_1k=0.001, output_cost_per_1k=0.002)).price
    assert (unlisted.cached_input, unlisted.cache_write) == (None, None)   # billed at the input rate


def test_an_entry_or_a_provider_table_sets_the_one_hour_cache_write_rate(tmp_path):
    """One-hour cache writes bill dearer than five-minute ones; a negotiated price must be able to
    say so per model, as it says the other cache rates (``cache_write_1h_cost_per_1k``)."""
    config = tmp_path / "cloverleaf.toml"
    config.write_text('''
[providers.anthropic]
input_cost_per_1k = 0.003
output_cost_per_1k = 0.015
cache_write_1h_cost_per_1k = 0.007

[[models]]
name = "sonnet"
provider = "anthropic"
identifier = "claude-sonnet-4-5"
input_cost_per_1k = 0.003
output_cost_per_1k = 0.015
cache_write_cost_per_1k = 0.004
cache_write_1h_cost_per_1k = 0.009
''')
    engine = Engine(Settings.load(config, env={"ANTHROPIC_API_KEY": "k"}))
    try:
        price = engine.resolve("sonnet").price
        assert engine.resolve("anthropic/claude-haiku-4-5").price.cache_write_1h == pytest.approx(7.0)
    finally:
        engine.close()
    assert (price.cache_write, price.cache_write_1h) == pytest.approx((4.0, 9.0))
    u = Usage(input_tokens=150_000, cache_write_tokens=100_000, cache_write_1h_tokens=50_000)
    # 50k fresh at 3.0, 50k five-minute writes at 4.0, 50k one-hour writes at 9.0 (per million)
    assert price.cost(u) == pytest.approx(0.15 + 0.2 + 0.45)
    # past 200k (the 1M-context beta) each rate is the table's long-context multiple of the entry's
    u = Usage(input_tokens=300_000, cache_write_tokens=200_000, cache_write_1h_tokens=100_000)
    assert price.cost(u) == pytest.approx(0.6 + 0.8 + 1.8)
    unlisted = _resolve(ModelEntry("mine", "claude-private", "anthropic", input_cost_per_1k=0.001,
                                   output_cost_per_1k=0.002, cache_write_1h_cost_per_1k=0.0025)).price
    assert (unlisted.cache_write, unlisted.cache_write_1h) == (None, pytest.approx(2.5))
    config.write_text(config.read_text().replace("cache_write_1h_cost_per_1k = 0.009", 'cache_write_1h_cost_per_1k = "0.009"'))
    with pytest.raises(ConfigError, match="cache_write_1h_cost_per_1k"):
        Settings.load(config, env={})


def test_an_entrys_context_window_is_kept_without_a_price():
    target = _resolve(ModelEntry("mine", "gpt-99", "openai", context_window=8000))
    assert target.price is None and target.context_window == 8000


@pytest.mark.parametrize("provider, model, expected", [
    ("xai", "grok-4-0709", "xai/grok-4"),                                       # -MMDD
    ("mistral", "mistral-embed-2312", "mistral/mistral-embed"),                 # -YYMM
    ("gemini", "gemini-2.5-flash-preview-09-2025", "gemini/gemini-2.5-flash"),   # -MM-YYYY
    ("gemini", "gemini-2.5-flash-lite-preview-09-2025", "gemini/gemini-2.5-flash-lite"),
    ("anthropic", "claude-sonnet-4-0", "anthropic/claude-sonnet-4"),            # Anthropic's aliases
    ("anthropic", "claude-opus-4-0", "anthropic/claude-opus-4"),
])
def test_more_snapshot_forms_and_vendor_aliases(provider, model, expected):
    assert lookup(provider, model) == all_prices()[expected]


def test_four_digit_suffixes_only_where_the_vendor_uses_them():
    assert lookup("openai", "gpt-3.5-turbo-1106") is None     # billed unlike gpt-3.5-turbo
    assert lookup("mistral", "mistral-large-2411") is None    # no mistral-large row to strip to


def test_gemini_2_5_cached_input_is_a_tenth_of_input():
    for model in ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"):
        p = lookup("gemini", model)
        assert p.cached_input == pytest.approx(p.input / 10)


@pytest.mark.parametrize("provider, model, same_as", [
    # Claude Code's default and recent models: its own price table bills Opus 4.6 to 4.8 as Opus 4.5
    # and Sonnet 4.6 and 5 as Sonnet 4.5; unpriced, a key with a budget refused every Claude Code call
    ("anthropic", "claude-opus-4-8", "anthropic/claude-opus-4-5"),
    ("anthropic", "claude-opus-4-6", "anthropic/claude-opus-4-5"),
    ("anthropic", "claude-sonnet-4-6", "anthropic/claude-sonnet-4-5"),
    ("bedrock", "us.anthropic.claude-opus-4-8", "anthropic/claude-opus-4-5"),
    # Codex's models, billed as GPT-5 by OpenAI
    ("openai-responses", "gpt-5-codex", "openai/gpt-5"),
    ("openai", "gpt-5.1-codex", "openai/gpt-5"),
])
def test_coding_agents_default_models_are_priced(provider, model, same_as):
    price, reference = lookup(provider, model), all_prices()[same_as]
    assert price is not None
    assert (price.input, price.output, price.cached_input) == (reference.input, reference.output, reference.cached_input)


def test_a_dated_snapshot_with_its_own_price_is_not_billed_as_the_alias() -> None:
    """gpt-4o-2024-05-13 lists at $5/$15, twice gpt-4o's $2.50/$10: stripping its date would
    have billed it at half price."""
    price = lookup("openai", "gpt-4o-2024-05-13")
    assert price is not None and price.cost(Usage(1_000_000, 1_000_000)) == 20.0
    assert lookup("openai", "gpt-4o-2024-08-06") == lookup("openai", "gpt-4o")


@pytest.mark.parametrize(("model", "fresh", "cached", "out"), [
    ("openai/gpt-oss-120b", 0.15, 0.075, 0.60),
    ("openai/gpt-oss-20b", 0.075, 0.0375, 0.30),
])
def test_groq_gpt_oss_bills_at_groqs_list_price(model: str, fresh: float, cached: float, out: float) -> None:
    price = lookup("groq", model)
    assert price is not None
    got = price.cost(Usage(2_000_000, 1_000_000, cached_tokens=1_000_000))
    assert got == pytest.approx(fresh + cached + out)


def test_a_long_prompt_bills_every_token_at_the_long_context_rates() -> None:
    """Gemini 2.5 Pro above 200k prompt tokens: $2.50/$15. Claude Sonnet 4.5 (1M-context beta)
    once input, cache reads and writes included, passes 200k: $6/$22.50, cache rates doubled too."""
    pro = lookup("gemini", "gemini-2.5-pro")
    assert pro is not None
    assert pro.cost(Usage(200_000, 1_000)) == pytest.approx((200_000 * 1.25 + 1_000 * 10) / 1e6)
    assert pro.cost(Usage(300_000, 1_000)) == pytest.approx((300_000 * 2.50 + 1_000 * 15) / 1e6)
    sonnet = lookup("anthropic", "claude-sonnet-4-5-20250929")
    assert sonnet is not None
    cached = Usage(250_000, 1_000, cached_tokens=150_000, cache_write_tokens=60_000)   # 40k fresh
    assert sonnet.cost(cached) == pytest.approx((40_000 * 6 + 150_000 * 0.6 + 60_000 * 7.5 + 1_000 * 22.5) / 1e6)
    assert lookup("gemini", "gemini-2.5-flash").long_context is None   # type: ignore[union-attr]
    assert lookup("gemini", "gemini-1.5-pro").cost(Usage(200_000, 0)) == pytest.approx(0.5)  # type: ignore[union-attr]


def test_an_entrys_own_rates_keep_the_long_context_tier_in_proportion() -> None:
    builtin = lookup("gemini", "gemini-2.5-pro")
    half = ModelPrice.per_1k(0.000625, 0.005, like=builtin)      # a negotiated half price
    assert half.cost(Usage(300_000, 1_000)) == pytest.approx((300_000 * 1.25 + 1_000 * 7.5) / 1e6)


def test_gemini_audio_input_bills_at_its_audio_rate(upstream: Upstream) -> None:
    """Gemini 2.5 Flash bills audio input at $1.00/M against $0.30 for text; the per-modality
    counts in promptTokensDetails say how much of the prompt was audio."""
    upstream.queue(Reply(body=json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100_000, "candidatesTokenCount": 1_000, "totalTokenCount": 101_000,
                          "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 96_000},
                                                  {"modality": "TEXT", "tokenCount": 4_000}]},
        "modelVersion": "gemini-2.5-flash"}).encode()))
    with Client(Settings.load(env={"GEMINI_API_KEY": "k"}), max_retries=0) as client:
        r = client.chat("gemini/gemini-2.5-flash", "transcribe", base_url=f"{upstream.url}/v1beta")
    assert r.usage.audio_input_tokens == 96_000
    assert r.cost == pytest.approx((96_000 * 1.00 + 4_000 * 0.30 + 1_000 * 2.50) / 1e6)


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-4-6",
                                   "claude-sonnet-5"])
def test_claude_4_6_and_later_have_a_1m_window_at_standard_rates(model: str) -> None:
    """Anthropic's model pages give these a 1M-token context window at their standard rates (no
    long-context tier). The table said 200k: after one target's context-window error a route went
    only to larger windows, so it skipped these, the models that could take the prompt."""
    price = lookup("anthropic", model)
    assert price is not None and price.context_window == 1_000_000 and price.long_context is None


def test_claude_sonnet_5_bills_at_anthropics_list_price() -> None:
    """Sonnet 5 lists at $2/$10 (5m cache writes $2.50, 1h $4, reads $0.20: 1.25x, 2x, 0.1x);
    it was billed as Sonnet 4.5 ($3/$15), half as much again as Anthropic charges."""
    price = lookup("anthropic", "claude-sonnet-5")
    assert price is not None
    assert (price.input, price.output, price.cached_input, price.cache_write, price.cache_write_1h) == (
        2.0, 10.0, 0.2, 2.5, 4.0)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=200_000,
                  cache_write_tokens=300_000, cache_write_1h_tokens=100_000)
    # 500k fresh at $2, 200k read at $0.20, 200k 5m writes at $2.50, 100k 1h writes at $4, 1M out at $10
    assert price.cost(usage) == pytest.approx(1.0 + 0.04 + 0.5 + 0.4 + 10.0)


#: 2.5 Flash's list rates (ai.google.dev/gemini-api/docs/pricing): text $0.30, audio $1.00, cached
#: text $0.03, cached audio $0.10, output $2.50
FLASH_TEXT, FLASH_AUDIO, FLASH_CACHED, FLASH_CACHED_AUDIO, FLASH_OUT = 0.30, 1.00, 0.03, 0.10, 2.50


def test_gemini_cached_audio_bills_at_the_cached_audio_rate(upstream: Upstream) -> None:
    """Part of a prompt served from the context cache that was audio: promptTokensDetails counts
    the whole prompt (the cache in it), cacheTokensDetails the cached part by modality. The cached
    audio billed as cached text ($0.03) and its count, left in the prompt's audio, put fresh text
    on the $1.00 audio rate: 2k fresh text + 100k cached audio cost $0.00625, not $0.01185."""
    upstream.queue(Reply(body=json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 102_000, "candidatesTokenCount": 500, "totalTokenCount": 102_500,
                          "cachedContentTokenCount": 100_000,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2_000},
                                                  {"modality": "AUDIO", "tokenCount": 100_000}],
                          "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 100_000}]},
        "modelVersion": "gemini-2.5-flash"}).encode()))
    with Client(Settings.load(env={"GEMINI_API_KEY": "k"}), max_retries=0) as client:
        r = client.chat("gemini/gemini-2.5-flash", "summarise the recording", base_url=f"{upstream.url}/v1beta")
    assert r.cost == pytest.approx((2_000 * FLASH_TEXT + 100_000 * FLASH_CACHED_AUDIO + 500 * FLASH_OUT) / 1e6)
    assert (r.usage.cached_tokens, r.usage.audio_input_tokens, r.usage.cached_audio_tokens) == (100_000,) * 3


def test_every_input_token_bills_once_at_its_own_rate() -> None:
    """Fresh text, fresh audio, cached text and cached audio together: 112k prompt tokens, of
    which 100k cached (60k text, 40k audio) and 50k audio in all (so 10k fresh audio)."""
    flash = lookup("gemini", "gemini-2.5-flash")
    assert flash is not None
    usage = Usage(112_000, 500, cached_tokens=100_000, audio_input_tokens=50_000, cached_audio_tokens=40_000)
    assert flash.cost(usage) == pytest.approx((2_000 * FLASH_TEXT + 10_000 * FLASH_AUDIO + 60_000 * FLASH_CACHED
                                               + 40_000 * FLASH_CACHED_AUDIO + 500 * FLASH_OUT) / 1e6)
    for model, cached_audio in (("gemini-2.5-flash-lite", 0.03), ("gemini-2.0-flash", 0.175)):
        row = lookup("gemini", model)
        assert row is not None and row.cached_audio_input == cached_audio
        assert row.cost(Usage(1_000_000, 0, cached_tokens=1_000_000, audio_input_tokens=1_000_000,
                              cached_audio_tokens=1_000_000)) == pytest.approx(cached_audio)


def test_usage_that_does_not_split_the_cache_by_modality_counts_each_token_once() -> None:
    """OpenAI-style usage (OpenRouter relaying Gemini: ``prompt_tokens_details`` has ``cached_tokens``
    and ``audio_tokens``, both parts of the prompt, no split). The audio the fresh tokens cannot
    hold must have come from the cache; the rest is taken to be fresh, the dearer reading."""
    flash = lookup("gemini", "gemini-2.5-flash")
    assert flash is not None
    # 12k fresh, 100k cached, 50k audio: at most 12k of the audio is fresh, so at least 38k was cached
    usage = Usage(112_000, 0, cached_tokens=100_000, audio_input_tokens=50_000)
    assert flash.cost(usage) == pytest.approx((12_000 * FLASH_AUDIO + 62_000 * FLASH_CACHED
                                               + 38_000 * FLASH_CACHED_AUDIO) / 1e6)
    # all audio fits in the fresh part: as before, cached tokens are text
    assert flash.cost(Usage(112_000, 0, cached_tokens=100_000, audio_input_tokens=5_000)) == pytest.approx(
        (7_000 * FLASH_TEXT + 5_000 * FLASH_AUDIO + 100_000 * FLASH_CACHED) / 1e6)


def test_a_row_without_a_cached_audio_rate_says_what_cached_audio_bills_at() -> None:
    """One cached rate for every modality (Gemini 2.5 Pro lists no audio rate): cached audio is
    cached input. A row that prices audio apart but lists no cached audio rate: the audio rate
    (no discount the provider promises; billing it as cached text would undercount it)."""
    pro = lookup("gemini", "gemini-2.5-pro")
    assert pro is not None and pro.audio_input is None and pro.cached_audio_input is None
    cached_audio = Usage(100_000, 0, cached_tokens=100_000, audio_input_tokens=100_000, cached_audio_tokens=100_000)
    assert pro.cost(cached_audio) == pytest.approx(100_000 * 0.125 / 1e6)
    listed_none = ModelPrice(input=0.3, output=2.5, cached_input=0.03, audio_input=1.0)
    assert listed_none.cost(cached_audio) == pytest.approx(100_000 * 1.0 / 1e6)


def test_an_entrys_own_rates_keep_the_cached_audio_rate_in_proportion() -> None:
    flash = lookup("gemini", "gemini-2.5-flash")
    half = ModelPrice.per_1k(0.00015, 0.00125, like=flash)      # a negotiated half price
    assert half.cached_audio_input == pytest.approx(0.05)
    assert half.scaled(2.0).cached_audio_input == pytest.approx(0.1)
