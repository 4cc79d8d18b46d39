"""The privacy policy through the gateway and on direct SDK calls, against real sockets.

"Cloud" targets point at a connection-counting upstream on 127.0.0.1; a refused call must
leave it at zero connections. The address rule is tested with the name ``localhost``: the
test resolver says it is a public address (so under ``local-only`` it is refused) while the
real transport would reach the counting mock on loopback (so the control call proves the
mock was reachable).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf import Attachment, Client, ConfigError, PrivacyViolation
from cloverleaf._config import ModelEntry, ProviderSettings, Settings

from ..counting_upstream import CountingUpstream

PUBLIC_IP = "93.184.216.34"
ENV = {"OPENAI_API_KEY": "sk-test-privacy"}


def pretend_public(host: str, port: int) -> list[str]:
    return [PUBLIC_IP] if host == "localhost" else ["192.168.1.20"]


@pytest.fixture
def cloud() -> Iterator[CountingUpstream]:
    u = CountingUpstream("cloud")
    yield u
    u.close()


@pytest.fixture
def local() -> Iterator[CountingUpstream]:
    u = CountingUpstream("local")
    yield u
    u.close()


def make_settings(tmp_path: Path, cloud: CountingUpstream, local: CountingUpstream, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        env=ENV, max_retries=0, timeout=5.0,
        providers={"openai": ProviderSettings("openai", base_url=cloud.base_url),
                   "vllm": ProviderSettings("vllm", base_url=local.base_url)},
        models=[ModelEntry(name="edge-vllm", identifier="m", provider="vllm",
                           base_url=f"http://localhost:{cloud.port}/v1"),
                ModelEntry(name="lab", identifier="m", provider="chat_completions", is_public=False,
                           base_url=local.base_url)],
        routes={"mixed": {"targets": ["openai/gpt-4o-mini", "vllm/llama"]},
                "cloud": {"targets": ["openai/gpt-4o-mini", "edge-vllm"]},
                "private": {"targets": ["openai/gpt-4o-mini", "vllm/llama"], "privacy": "local-only"}},
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
    )
    base.update(kw)
    return Settings(**base)


def client_for(settings: Settings) -> Client:
    client = Client(settings)
    client.engine.privacy.resolver = pretend_public
    return client


def last_record(client: Client) -> Any:
    client.gateway.store.flush()
    return client.gateway.store.recent_calls(limit=1)[0]


def test_local_only_skips_the_cloud_primary(tmp_path: Path, cloud: CountingUpstream, local: CountingUpstream) -> None:
    with client_for(make_settings(tmp_path, cloud, local)) as client:
        resp = client.chat("mixed", "secret", privacy="local-only")
        assert resp.content == "answered by local" and resp.metadata.target == "vllm/llama"
        assert cloud.connections == 0 and cloud.bytes_received == 0
        assert local.connections >= 1
        record = last_record(client)
        assert record.status == "ok"
        assert record.metadata["privacy"]["policy"] == "local-only"
        assert record.metadata["privacy"]["rule"] == "the call's privacy option"
        assert [r["target"] for r in record.metadata["privacy"]["refused"]] == ["openai/gpt-4o-mini"]
        # streams and the async client take the same path
        stream = client.stream("mixed", "secret", privacy="local-only")
        assert "".join(e.text or "" for e in stream if e.type == "text") == "answered by local"
        assert cloud.connections == 0


def test_without_the_policy_the_cloud_mock_is_reachable(tmp_path: Path, cloud: CountingUpstream,
                                                        local: CountingUpstream) -> None:
    """The control: the same routes reach the 'cloud' mock when nothing restricts them."""
    with client_for(make_settings(tmp_path, cloud, local)) as client:
        assert client.chat("mixed", "hello").content == "answered by cloud"
        assert client.chat("edge-vllm", "hello").content == "answered by cloud"   # localhost really is loopback
        assert cloud.connections >= 2
        assert "privacy" not in last_record(client).metadata


def test_a_cloud_only_route_fails_closed_with_zero_bytes_sent(tmp_path: Path, cloud: CountingUpstream,
                                                              local: CountingUpstream) -> None:
    with client_for(make_settings(tmp_path, cloud, local)) as client:
        with pytest.raises(PrivacyViolation) as info:
            client.chat("cloud", "secret", privacy="local-only")
        err = info.value
        assert err.policy == "local-only" and err.route == "cloud"
        reasons = dict(err.targets)
        assert "not a local provider" in reasons["openai/gpt-4o-mini"]
        # a vllm row (a local provider by name) whose host resolves to a public address
        assert PUBLIC_IP in reasons["edge-vllm"] and "public address" in reasons["edge-vllm"]
        assert "edge-vllm" in str(err) and "local-only" in str(err)
        assert cloud.connections == 0 and cloud.bytes_received == 0
        record = last_record(client)
        assert record.status == "error" and record.error_type == "PrivacyViolation"
        assert {r["target"] for r in record.metadata["privacy"]["refused"]} == {"openai/gpt-4o-mini", "edge-vllm"}


async def test_async_gateway_calls_and_embeddings(tmp_path: Path, cloud: CountingUpstream,
                                                  local: CountingUpstream) -> None:
    settings = make_settings(tmp_path, cloud, local)
    async with cloverleaf.AsyncClient(settings) as client:
        client.engine.privacy.resolver = pretend_public
        assert (await client.chat("mixed", "x", privacy="local-only")).content == "answered by local"
        with pytest.raises(PrivacyViolation):
            await client.embed("openai/text-embedding-3-small", "secret", privacy="local-only")
        assert (await client.embed("simple", "secret", privacy="local-only")).vectors
        assert (await client.embed("lab", "secret", privacy="local-only")).vectors == [[0.1, 0.2]]
    assert cloud.connections == 0


def test_a_route_or_default_policy_cannot_be_loosened_by_the_call(tmp_path: Path, cloud: CountingUpstream,
                                                                  local: CountingUpstream) -> None:
    with client_for(make_settings(tmp_path, cloud, local)) as client:
        assert client.chat("private", "x", privacy="any").content == "answered by local"
        assert last_record(client).metadata["privacy"]["rule"] == "route 'private'"
    settings = make_settings(tmp_path, cloud, local, privacy={"default": "local-only"})
    with client_for(settings) as client:
        assert client.chat("mixed", "x", privacy="any").content == "answered by local"
        with pytest.raises(PrivacyViolation, match=r"\[privacy\] default"):
            client.chat("openai/gpt-4o-mini", "x")
    assert cloud.connections == 0


def test_data_classes_map_to_policies(tmp_path: Path, cloud: CountingUpstream, local: CountingUpstream) -> None:
    settings = make_settings(tmp_path, cloud, local,
                             privacy={"classes": {"confidential": "local-only", "public": "any"}})
    with client_for(settings) as client:
        assert client.chat("mixed", "x", data_class="confidential").content == "answered by local"
        assert "confidential" in last_record(client).metadata["privacy"]["rule"]
        assert client.chat("mixed", "x", data_class="public").content == "answered by cloud"
        with pytest.raises(ConfigError, match="unknown data class 'secret'"):
            client.chat("mixed", "x", data_class="secret")
    assert cloud.connections == 1


def test_direct_sdk_calls_are_checked_without_the_gateway(cloud: CountingUpstream, local: CountingUpstream) -> None:
    settings = Settings(env=ENV, max_retries=0, timeout=5.0,
                        providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)})
    assert not settings.uses_gateway
    with Client(settings) as client:
        with pytest.raises(PrivacyViolation, match="openai/gpt-4o-mini"):
            client.chat("openai/gpt-4o-mini", "secret", privacy="local-only")
        with pytest.raises(PrivacyViolation):  # a URL handed to a cloud provider is refused with it
            client.chat("openai/gpt-4o-mini", "look", privacy="local-only",
                        attachments=[Attachment(source="https://example.com/cat.png", type="image",
                                                fetch="provider")])
        with pytest.raises(PrivacyViolation):
            list(client.stream("openai/gpt-4o-mini", "secret", privacy="local-only"))
        with pytest.raises(PrivacyViolation):
            client.embed("openai/text-embedding-3-small", "secret", privacy="local-only")
        assert client.chat("fake/echo", "fine", privacy="local-only").content == "fine"
        assert client.chat("vllm/llama", "x", privacy="local-only", base_url=local.base_url).content \
            == "answered by local"
    with Client(Settings(env={})) as keyless:       # refused for what it is, not for the missing key
        with pytest.raises(PrivacyViolation, match="anthropic/claude-haiku-4-5"):
            keyless.chat("anthropic/claude-haiku-4-5", "secret", privacy="local-only")
        with pytest.raises(ConfigError, match="no API key for anthropic"):
            keyless.chat("anthropic/claude-haiku-4-5", "fine to send")
    strict = Settings(env=ENV, max_retries=0, privacy={"default": "local-only"},
                      providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)})
    with Client(strict) as client:
        with pytest.raises(PrivacyViolation, match=r"set by \[privacy\] default"):
            client.chat("openai/gpt-4o-mini", "secret", privacy="any")      # a call cannot loosen it
    assert cloud.connections == 0


async def test_direct_async_calls_are_checked(cloud: CountingUpstream) -> None:
    settings = Settings(env=ENV, max_retries=0, providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)})
    async with cloverleaf.AsyncClient(settings) as client:
        with pytest.raises(PrivacyViolation):
            await client.chat("openai/gpt-4o-mini", "secret", privacy="local-only")
        with pytest.raises(PrivacyViolation):
            async for _ in client.stream("openai/gpt-4o-mini", "secret", privacy="local-only"):
                pass
    assert cloud.connections == 0


@pytest.mark.parametrize(("base_url", "local_ok"), [
    ("http://127.0.0.1:8000/v1", True),
    ("http://[::1]:8000/v1", True),
    ("http://10.1.2.3/v1", True),
    ("http://192.168.1.20:8000/v1", True),
    ("http://100.101.102.103/v1", True),          # CGNAT: a tailnet
    ("http://[fd12::1]/v1", True),
    ("http://169.254.169.254/v1", False),         # the cloud's metadata endpoint is not "your network"
    ("http://[2002:c0a8:101::1]/v1", False),      # 6to4 carrying 192.168.1.1: sent through a relay
    ("http://[2001:0:4136:e378:8000:63bf:3f57:fefe]/v1", False),   # Teredo carrying 192.168.1.1
    ("http://[64:ff9b::c0a8:101]/v1", False),     # NAT64 carrying 192.168.1.1: through a translator
    ("http://[::ffff:192.168.1.20]:8000/v1", True),   # IPv4-mapped: the same host
    (f"http://{PUBLIC_IP}:8000/v1", False),
    ("http://localhost:8000/v1", False),          # the resolver says: public
    ("http://lan-box.test:8000/v1", True),        # the resolver says: 192.168.1.20
])
def test_locality_is_decided_by_the_resolved_address(base_url: str, local_ok: bool) -> None:
    with Client(Settings(env={})) as client:
        client.engine.privacy.resolver = pretend_public
        target = client.engine.resolve("vllm/m", base_url=base_url)
        assert client.engine.privacy.locality(target).local is local_ok


@pytest.mark.parametrize("failure", [OSError("no DNS"), UnicodeError("label empty or too long")])
def test_unresolvable_hosts_fail_closed(failure: Exception) -> None:
    def broken(host: str, port: int) -> list[str]:
        raise failure

    with Client(Settings(env={})) as client:
        client.engine.privacy.resolver = broken
        locality = client.engine.privacy.locality(client.engine.resolve("ollama/llama3", base_url="http://gpu-box:11434"))
        assert not locality.local and "could not be resolved" in locality.reason


#: A DNS label over 63 characters: the IDNA codec refuses the name before any lookup.
OVERLONG_HOST = "a" * 64 + ".lab.internal"


async def test_a_host_name_no_lookup_can_take_is_refused_not_an_error(tmp_path: Path) -> None:
    """The system resolver raises the IDNA codec's UnicodeError for such a name, which the
    locality check let through (the server's 500). It is a host that cannot be resolved: not
    local, so a local-only route moves on to its next target and a direct call is refused with
    PrivacyViolation; without the policy the call is an InvalidURL naming the host."""
    settings = Settings(env={}, max_retries=0,
                        providers={"vllm": ProviderSettings("vllm", base_url=f"http://{OVERLONG_HOST}:8000/v1")},
                        routes={"r": {"targets": ["vllm/llama", "fake/echo"]}},
                        store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    with Client(settings) as client:      # the real resolver: the codec fails before any lookup
        locality = client.engine.privacy.locality(client.engine.resolve("vllm/llama"))
        assert not locality.local and "could not be resolved" in locality.reason and OVERLONG_HOST in locality.reason
        assert client.chat("r", "hello", privacy="local-only").content == "hello"
        record = last_record(client)
        [refused] = record.metadata["privacy"]["refused"]
        assert refused["target"] == "vllm/llama" and "could not be resolved" in refused["reason"]
        with pytest.raises(PrivacyViolation, match="could not be resolved"):
            client.chat("vllm/llama", "hello", privacy="local-only")
        with pytest.raises(cloverleaf.InvalidURL, match="not a valid DNS name") as info:
            client.chat("vllm/llama", "hello")
        assert OVERLONG_HOST in str(info.value)
    async with cloverleaf.AsyncClient(settings) as aclient:
        assert (await aclient.chat("r", "hello", privacy="local-only")).content == "hello"
        with pytest.raises(PrivacyViolation, match="could not be resolved"):
            await aclient.chat("vllm/llama", "hello", privacy="local-only")


def test_privacy_config_errors_say_what_to_write() -> None:
    with pytest.raises(ConfigError, match="local-only"):
        Client(Settings(env={}, privacy={"default": "cloud-ok"}))
    with pytest.raises(ConfigError, match="unknown key"):
        Client(Settings(env={}, privacy={"defualt": "any"}))
    from cloverleaf.gateway.config import parse_route

    with pytest.raises(ConfigError, match=r"\[routes.r\]"):
        parse_route("r", {"targets": ["fake/echo"], "privacy": "nope"})


def test_the_readme_privacy_section_is_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from cloverleaf.gateway.config import parse

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Privacy"):text.index("## The gateway server")]
    (tmp_path / "cloverleaf.toml").write_text(section.split("```toml\n", 1)[1].split("```", 1)[0])
    loaded = Settings.load(tmp_path / "cloverleaf.toml", env={})
    assert parse(loaded).routes["private"].privacy == "local-only"
    with Client(loaded) as client:
        assert client.engine.privacy.config.classes == {"confidential": "local-only", "public": "any"}
    monkeypatch.chdir(tmp_path / "..")
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["stays here", "refused before sending: openai/gpt-4o-mini"]


def test_the_cli_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cloverleaf.cli import main

    (tmp_path / "cloverleaf.toml").write_text(
        '[[models]]\nname = "lab-box"\nprovider = "chat_completions"\nidentifier = "m"\nis_public = false\n'
        'base_url = "http://192.168.1.20:8000/v1"\n'
        '[[models]]\nname = "rented-gpu"\nprovider = "vllm"\nidentifier = "m"\n'
        f'base_url = "http://{PUBLIC_IP}:8000/v1"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli")
    for name in ("CLOVERLEAF_CONFIG", "CLOVERLEAF_BACKEND", "OLLAMA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["models", "--use", "local"]) == 0
    listed = capsys.readouterr().out
    assert "ollama/llama3.1" in listed and "lab-box" in listed
    assert "rented-gpu" not in listed and "openai/" not in listed and "anthropic/" not in listed
    assert main(["chat", "--local-only", "--no-stream", "-m", "openai/gpt-4o-mini", "secret"]) == 1
    err = capsys.readouterr().err
    assert "privacy policy 'local-only' (set by the call's privacy option) refused: openai/gpt-4o-mini" in err
    assert main(["chat", "--local-only", "--dry-run", "-m", "openai/gpt-4o-mini", "secret"]) == 1
    assert "privacy policy 'local-only'" in capsys.readouterr().err
    assert main(["chat", "--local-only", "--no-stream", "-m", "fake/echo", "stays"]) == 0
    assert capsys.readouterr().out.strip() == "stays"


def test_a_semantic_cache_never_embeds_a_local_only_prompt_in_the_cloud(tmp_path: Path, cloud: CountingUpstream,
                                                                         local: CountingUpstream) -> None:
    cache = {"mode": "semantic", "embedding_model": "openai/text-embedding-3-small", "similarity": 0.9,
             "deterministic_only": False}
    with client_for(make_settings(tmp_path, cloud, local, cache=cache)) as client:
        for _ in range(2):
            assert client.chat("vllm/llama", "my diary", privacy="local-only").content == "answered by local"
        assert cloud.connections == 0           # no lookup, no store: the cache is bypassed
        assert len(local.paths) == 2            # both calls went to the model itself
        client.chat("vllm/llama", "public text")
        assert cloud.paths == ["/v1/embeddings"]   # without the policy the lookup embeds it in the cloud
    offline = {**cache, "embedding_model": "simple/hash"}
    with client_for(make_settings(tmp_path, cloud, local, cache=offline)) as client:
        before = len(local.paths)
        for _ in range(2):
            client.chat("vllm/llama", "my diary", privacy="local-only")
        assert len(local.paths) == before + 1   # a local embedding model keeps the cache in use: one hit


#: The environment libpq reads when a URL names no host (the store's driver): unset in these tests.
LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE")


@pytest.mark.parametrize(("url", "local"), [
    ("memory", True),
    ("sqlite:///var/lib/cloverleaf/cache.db", True),
    ("postgresql+psycopg:///cloverleaf", True),                 # no host anywhere: libpq's local socket
    ("redis://10.1.2.3:6379/0", True),
    ("redis://localhost:6379/0", False),                        # the resolver says: public
    ("postgresql://user:secret@db.example.test/cl", True),      # the resolver says: 192.168.1.20
    ("http://93.184.216.34:4318/v1/traces", False),
    # the host the client really connects to, wherever the URL names it
    ("redis://:secret@?host=localhost&port=6380", False),      # redis-py reads host/port from the query
    ("redis:///0?host=localhost", False),
    ("redis://", False),                                        # redis-py's default: localhost:6379
    ("redis://?host=db.example.test", True),
    ("unix:///var/run/redis/redis.sock?db=0", True),            # a genuine unix socket
    ("redis+cluster://10.1.2.3:6379", False),                   # a Cluster's other nodes are its to name
    ("postgresql+psycopg://cl:secret@/cl?host=localhost", False),          # libpq reads host from the query
    ("postgresql+psycopg://cl:secret@db.example.test/cl?host=localhost", False),   # ... over the netloc
    ("postgresql://cl:secret@/cl?host=/var/run/postgresql,localhost", False),     # every listed host counts
    ("postgresql://cl:secret@/cl?host=/var/run/postgresql,db.example.test", True),
    ("postgresql://cl:secret@/cl?host=/var/run/postgresql", True),         # a socket directory
    ("postgresql://cl:secret@/cl?hostaddr=93.184.216.34", False),          # libpq connects to hostaddr
    ("postgresql://cl:secret@/cl?service=prod", False),         # its host is in a file: cannot be told
    ("postgresql://cl:secret@/cl?conninfo=host%3Dlocalhost", False),   # psycopg's connection string
    ("postgresql://cl:secret@/cl?conninfo=host%3D/run/postgresql", True),
    ("postgresql://cl:secret@/cl?conninfo=host%3D/run/postgresql&host=localhost", False),   # the query wins
    ("postgresql://cl:secret@/cl?conninfo=host%3D'unclosed", False),  # unreadable: cannot be told
    ("http:///v1/traces", False),                               # no host is not "a local socket"
])
def test_where_else_a_calls_text_may_go(url: str, local: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The response cache, the response store and a content-capturing collector are judged by
    the targets' rule, at the host their client really connects to (redis-py and libpq read
    ``host`` from the query string too); the reason never repeats credentials."""
    from cloverleaf._privacy import PrivacyConfig, PrivacyGuard

    for name in LIBPQ_ENV:
        monkeypatch.delenv(name, raising=False)
    guard = PrivacyGuard(PrivacyConfig.parse(None), resolver=pretend_public)
    found = guard.sink(url)
    assert found.local is local, found.reason
    assert "secret" not in found.reason
    assert guard.sink_cached(url) == found


@pytest.mark.parametrize(("env", "local"), [
    ({"PGHOST": "localhost"}, False),                 # the resolver says: public
    ({"PGHOST": "db.example.test"}, True),            # the resolver says: 192.168.1.20
    ({"PGHOST": "/run/postgresql"}, True),            # a socket directory
    ({"PGHOSTADDR": "93.184.216.34"}, False),
    ({"PGSERVICE": "prod"}, False),
])
def test_a_store_url_without_a_host_goes_where_libpq_s_environment_says(
        env: dict[str, str], local: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``postgresql:///db`` is not "a local socket" when PGHOST (or PGHOSTADDR, or a service)
    sends libpq elsewhere; a host in the URL wins over the environment, as in libpq."""
    from cloverleaf._privacy import PrivacyConfig, PrivacyGuard

    for name in LIBPQ_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    guard = PrivacyGuard(PrivacyConfig.parse(None), resolver=pretend_public)
    assert guard.sink("postgresql+psycopg://cl:secret@/cloverleaf").local is local
    if "PGHOST" in env:
        assert guard.sink("postgresql+psycopg://cl:secret@/cloverleaf?host=/run/postgresql").local


async def test_the_store_refusal_reads_the_host_from_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Responses store check (one rule with the cache's): a PostgreSQL URL naming its host
    in the query string is refused under local-only when that host is not local."""
    from cloverleaf._context import CallContext
    from cloverleaf._privacy import PrivacyConfig, PrivacyGuard
    from cloverleaf.gateway.config import make_route
    from cloverleaf.gateway.privacy import RoutePrivacy

    for name in LIBPQ_ENV:
        monkeypatch.delenv(name, raising=False)
    privacy = RoutePrivacy(PrivacyGuard(PrivacyConfig.parse(None), resolver=pretend_public))
    route = make_route("vllm/llama", ["vllm/llama"], implicit=True)
    hosted = "postgresql+psycopg://cl:secret@/cl?host=localhost"
    why = await privacy.store_refusal(route, CallContext(privacy="local-only"), hosted)
    assert why is not None and "'localhost' is at public address" in why and "secret" not in why
    assert await privacy.store_refusal(route, CallContext(), hosted) is None    # no policy: stored
    assert await privacy.store_refusal(route, CallContext(privacy="local-only"),
                                       "postgresql+psycopg://cl:secret@/cl?host=/run/postgresql") is None
