"""Registry entries as users write them (the Olyx model-registry guide, AgentLoom, Allos, Ally):
they apply wherever they match, full endpoint URLs are endpoints, unknown keys fail at load, and
what a provider cannot do is said before what configuration it lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloverleaf._client import Client
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import ConfigError, UnsupportedCapability
from cloverleaf._types import Attachment

from .upstream import Reply, Upstream

CHAT_OK = json.dumps({
    "id": "c1", "object": "chat.completion", "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
}).encode()
EMBED_OK = json.dumps({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}],
                       "model": "e", "usage": {"prompt_tokens": 3, "total_tokens": 3}}).encode()


def _load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "cloverleaf.toml"
    path.write_text(toml, encoding="utf-8")
    return Settings.load(path, env=env or {})


def test_olyx_internal_entry_with_a_full_endpoint_url_works_as_written(tmp_path: Path, upstream: Upstream) -> None:
    settings = _load(tmp_path, f"""
[[models]]
name = "team-llama"
provider = "internal"
identifier = "llama-3.1-70b"
base_url = "{upstream.url}/v1/chat/completions"
input_cost_per_1k = 0.5
output_cost_per_1k = 1.0
""")
    upstream.queue(Reply(body=CHAT_OK))
    with Client(settings, max_retries=0) as client:
        r = client.chat("team-llama", "hello")
        assert r.text == "hi" and r.cost == pytest.approx(1.5)  # 1k in at 0.5 + 1k out at 1.0
        seen = upstream.seen[-1]
        assert seen.path == "/v1/chat/completions"  # used as given, not ".../chat/completions/chat/completions"
        assert "authorization" not in seen.headers  # key optional
        assert json.loads(seen.body)["model"] == "llama-3.1-70b"
        # the same endpoint cannot embed: refused with what to do, nothing sent
        with pytest.raises(UnsupportedCapability, match=r"chat endpoint.*root \(http://127\.0\.0\.1:\d+/v1\)"):
            client.embed("team-llama", ["x"])
        assert len(upstream.seen) == 1


def test_an_embeddings_endpoint_url_embeds_and_refuses_chat(tmp_path: Path, upstream: Upstream) -> None:
    settings = _load(tmp_path, f"""
[[models]]
name = "team-embed"
provider = "openai_compatible"
identifier = "bge-m3"
base_url = "{upstream.url}/v1/embeddings"
""")
    upstream.queue(Reply(body=EMBED_OK))
    with Client(settings, max_retries=0) as client:
        assert client.embed("team-embed", ["x"]).vectors == [[0.5, 0.5]]
        assert upstream.seen[-1].path == "/v1/embeddings"
        with pytest.raises(UnsupportedCapability, match="embeddings endpoint"):
            client.chat("team-embed", "hi")


def test_an_endpoint_urls_credentials_stay_out_of_its_refusal_and_its_repr() -> None:
    """The refusal of another operation quoted the base_url as written, an ``?api-key=`` and a
    password with it; so did the provider config's repr (a debugging print, a log line)."""
    url = "http://svc:PW-SECRET@127.0.0.1:9/openai/v1/chat/completions?api-version=2024-10-21&api-key=KEY-SECRET"
    entry = ModelEntry(name="team-azure", provider="openai_compatible", identifier="gpt-4o", base_url=url)
    with Client(Settings(models=[entry], env={}), max_retries=0) as client:
        with pytest.raises(UnsupportedCapability) as refused:
            client.embed("team-azure", ["x"])
        config = repr(client.engine.resolve("team-azure").cfg)
    for text in (str(refused.value), config):
        assert "SECRET" not in text and "api-version=2024-10-21&api-key=<redacted>" in text, text


@pytest.mark.parametrize("call", ["priced", "internal/llama-3.1-70b", "internal:llama-3.1-70b", "llama-3.1-70b"])
def test_entry_applies_by_name_provider_identifier_and_bare_identifier(tmp_path: Path, upstream: Upstream,
                                                                       call: str) -> None:
    settings = _load(tmp_path, f"""
[[models]]
name = "priced"
provider = "internal"
identifier = "llama-3.1-70b"
base_url = "{upstream.url}/v1"
api_key_env = "TEAM_KEY"
input_cost_per_1k = 0.5
output_cost_per_1k = 1.0
""", env={"TEAM_KEY": "sk-team"})
    upstream.queue(Reply(body=CHAT_OK))
    with Client(settings, max_retries=0) as client:
        r = client.chat(call, "hello")
    assert r.cost == pytest.approx(1.5)
    assert upstream.seen[-1].headers["authorization"] == "Bearer sk-team"
    assert upstream.seen[-1].path == "/v1/chat/completions"


def test_an_ambiguous_bare_identifier_matches_no_entry() -> None:
    from cloverleaf._config import ModelEntry

    a = ModelEntry(name="a", provider="internal", identifier="shared", base_url="http://127.0.0.1:9/v1",
                   input_cost_per_1k=1.0, output_cost_per_1k=1.0)
    b = ModelEntry(name="b", provider="vllm", identifier="shared", input_cost_per_1k=2.0, output_cost_per_1k=2.0)
    engine = Engine(Settings(models=[a, b], env={}))
    assert engine.resolve("internal/shared").entry is a and engine.resolve("vllm/shared").entry is b
    assert engine.registry.find("shared") is None


def test_entry_credentials_and_additional_config_apply_to_provider_slash_identifier() -> None:
    from cloverleaf._config import ModelEntry

    entry = ModelEntry(name="claude-eu", provider="bedrock", identifier="anthropic.claude-3-5-sonnet-20241022-v2:0",
                       additional_config={"aws_region": "eu-central-1"})
    engine = Engine(Settings(models=[entry], env={}))
    for call in ("claude-eu", "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0"):
        target = engine.resolve(call)
        target.ready()  # aws_region is a region: no "needs an AWS region" fault
        assert target.cfg.extra["region"] == "eu-central-1"


def test_gemini_base_url_ending_in_models_is_not_doubled(upstream: Upstream) -> None:
    engine = Engine(Settings.load(env={"GEMINI_API_KEY": "g"}))
    target = engine.resolve("gemini/gemini-2.5-flash", base_url=f"{upstream.url}/v1beta/models")
    from cloverleaf._types import ChatRequest, Message

    req = engine._build_chat(target, ChatRequest(model="gemini-2.5-flash", messages=[Message.user("hi")]))
    assert req.url == f"{upstream.url}/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.mark.parametrize("toml, match", [
    ('[[models]]\nname = "x"\nprovider = "internal"\nidentifier = "m"\nbase_url = "http://127.0.0.1:9/v1"\n'
     'additional_config = { fallback = "gpt-4o" }\n', r"unknown key\(s\) \['fallback'\].*allowed: .*stream_usage"),
    ('[[models]]\nname = "x"\nprovider = "bedrock"\nidentifier = "m"\nadditional_config = { regoin = "eu" }\n',
     r"\['regoin'\].*aws_region.*region"),
    ('[[models]]\nname = "x"\nprovider = "nonesuch"\nidentifier = "m"\n', r"entry 'x': unknown provider 'nonesuch'"),
    ('[attachments]\nmax_byte = 5\n', r"\[attachments\] unknown key\(s\) \['max_byte'\]; allowed: .*max_bytes"),
    ('[providers.mylab]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nextra = { tempreature = 1 }\n',
     r"\[providers.mylab\] extra: unknown key\(s\) \['tempreature'\]"),
    ('[providers.mylab]\nbase_url = "http://127.0.0.1:9/v1"\n', r"add kind = \"openai\""),
])
def test_unknown_keys_are_config_errors_at_load_time(tmp_path: Path, toml: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, toml)


@pytest.mark.parametrize("kind", ["openai", "chat_completions", "internal", "openai_compatible"])
def test_openai_compatible_kinds_accept_the_names_users_bring(tmp_path: Path, upstream: Upstream, kind: str) -> None:
    settings = _load(tmp_path, f'[providers.lab]\nkind = "{kind}"\nbase_url = "{upstream.url}/v1"\n')
    upstream.queue(Reply(body=CHAT_OK))
    with Client(settings, max_retries=0) as client:
        assert client.chat("lab/any-model", "hi").text == "hi"
    assert upstream.seen[-1].path == "/v1/chat/completions"


def test_openai_row_asks_no_key_for_a_local_base_url(monkeypatch: pytest.MonkeyPatch, upstream: Upstream) -> None:
    from cloverleaf import get_provider

    for var in ("OPENAI_API_KEY", "CLOVERLEAF_BACKEND", "CLOVERLEAF_CONFIG", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    engine = Engine(Settings.load(env={}))
    engine.resolve("openai/local-model", base_url="http://localhost:8080/v1").ready()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        engine.resolve("openai/gpt-4o").ready()  # OpenAI's own host still needs one
    upstream.queue(Reply(body=CHAT_OK))
    provider = get_provider("openai", model="local-model", base_url=f"{upstream.url}/v1", max_retries=0)
    assert provider.chat("hi").text == "hi"
    assert "authorization" not in upstream.seen[-1].headers


def test_capability_is_checked_before_any_key_base_url_or_region(upstream: Upstream) -> None:
    with Client(Settings.load(env={}), max_retries=0) as client:
        with pytest.raises(UnsupportedCapability, match="anthropic.*embeddings"):
            client.embed("anthropic/claude-haiku-4-5", ["x"])   # no ANTHROPIC_API_KEY: still 422 first
        with pytest.raises(UnsupportedCapability, match="image generation"):
            client.generate_image("mistral/mistral-large-latest", "a cat")   # no MISTRAL_API_KEY
        with pytest.raises(UnsupportedCapability, match="audio input"):
            client.chat("bedrock/amazon.nova-pro-v1:0", "transcribe",  # no region; the URL is never fetched
                        attachments=[Attachment(source=f"{upstream.url}/a.wav", type="audio")])
        with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
            client.chat("anthropic/claude-haiku-4-5", "hi")       # a capable provider: then the key
    assert upstream.seen == []


@pytest.mark.parametrize("name, expected", [
    ("openai", "openai/text-embedding-3-small"), ("ollama", "ollama/nomic-embed-text"),
    ("gemini", "gemini/gemini-embedding-001"), ("mistral", "mistral/mistral-embed"),
    ("bedrock", "bedrock/amazon.titan-embed-text-v2:0"), ("simple", "simple/default"),
])
def test_a_provider_name_alone_embeds_with_its_default_model(name: str, expected: str) -> None:
    from cloverleaf._resolve import embedding_model

    engine = Engine(Settings.load(env={}))
    assert embedding_model(name, engine.resolver.known, engine.registry) == expected


def test_embed_with_a_provider_name_sends_the_default_model(upstream: Upstream) -> None:
    upstream.queue(Reply(body=EMBED_OK))
    with Client(Settings.load(env={"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": f"{upstream.url}/v1"}),
                max_retries=0) as client:
        client.embed("openai", ["x"])
    assert json.loads(upstream.seen[-1].body)["model"] == "text-embedding-3-small"


def test_local_providers_cost_zero_and_unknown_remote_prices_stay_unknown() -> None:
    engine = Engine(Settings.load(env={"OPENAI_API_KEY": "k"}))
    for model in ("ollama/some-unlisted:7b", "lmstudio/x", "vllm/x", "localai/x", "simple/default", "fake/echo"):
        assert engine.resolve(model).price is not None and engine.resolve(model).price.input == 0.0, model
    assert engine.resolve("openai/gpt-99").price is None
    assert engine.resolve("chat_completions/x", base_url="http://127.0.0.1:9/v1").price is None


def test_openrouter_cost_is_the_one_openrouter_reports(upstream: Upstream) -> None:
    body = json.loads(CHAT_OK)
    body["usage"]["cost"] = 0.0123
    upstream.queue(Reply(body=json.dumps(body).encode()))
    with Client(Settings.load(env={"OPENROUTER_API_KEY": "or"}), max_retries=0) as client:
        r = client.chat("openrouter/openai/gpt-4o-mini", "hi", base_url=f"{upstream.url}/api/v1")
    assert json.loads(upstream.seen[-1].body)["usage"] == {"include": True}  # asked for on the wire
    assert r.cost == pytest.approx(0.0123) and r.usage.cost == pytest.approx(0.0123)


def test_openrouter_stream_cost_comes_from_the_final_usage_chunk(upstream: Upstream) -> None:
    chunks = [b'data: {"id":"g","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
              b'data: {"id":"g","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
              b'data: {"id":"g","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,'
              b'"cost":0.00042}}\n\n', b"data: [DONE]\n\n"]
    upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=chunks))
    with Client(Settings.load(env={"OPENROUTER_API_KEY": "or"}), max_retries=0) as client:
        s = client.stream("openrouter/openai/gpt-4o-mini", "hi", base_url=f"{upstream.url}/api/v1")
        assert s.until_done().cost == pytest.approx(0.00042)


def test_unknown_attachments_keys_given_in_code_are_a_config_error_not_a_type_error() -> None:
    with pytest.raises(ConfigError, match=r"\[attachments\] unknown key\(s\) \['max_mb'\]"):
        Client(attachments={"max_mb": 5})
