"""The response cache through the SDK and the gateway, against a real upstream on loopback
that counts the calls it served: a hit must never reach it."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import cloverleaf
from cloverleaf import ConfigError
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf.gateway.cache import MemoryBackend, ResponseCache, parse_cache
from cloverleaf.gateway.cache.codec import CachedAnswer, dumps, loads

from ..loopback import Answer, Handle, LoopbackServer
from .openai_mock import OpenAIMock

MODEL = "mock/gpt-test"


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    yield m
    m.close()


def make_client(tmp_path: Path, mock: OpenAIMock, cache: dict[str, Any], **settings: Any) -> cloverleaf.Client:
    s = Settings(providers={"mock": mock.provider()}, cache=cache, env={"MOCK_KEY": "k"}, gateway=True,
                 store={"url": f"sqlite:///{tmp_path / 'calls.db'}"}, max_retries=0, **settings)
    return cloverleaf.Client(s)


def test_exact_hit_skips_the_provider_and_costs_nothing(tmp_path: Path, mock: OpenAIMock) -> None:
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        first = client.chat(MODEL, "Name a prime.", temperature=0)
        second = client.chat(MODEL, "Name a prime.", temperature=0)
        assert mock.chats == 1
        assert second.content == first.content == "answer 1 to: Name a prime."
        assert second.cost == 0.0
        assert second.metadata.extra["cache"] == "hit"
        assert second.usage.input_tokens == first.usage.input_tokens   # same shape as the provider's answer
        other = client.chat(MODEL, "Name another prime.", temperature=0)
        assert mock.chats == 2 and "another" in other.content
        client.gateway.store.flush()
        calls = client.gateway.store.recent_calls(10)
        assert sorted(c.cache for c in calls) == ["hit", "miss", "miss"]
        hit = next(c for c in calls if c.cache == "hit")
        assert hit.cost == 0.0 and hit.input_tokens == 0 and hit.status == "ok" and hit.attempts == []


def test_only_deterministic_requests_unless_configured(tmp_path: Path, mock: OpenAIMock) -> None:
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        client.chat(MODEL, "Tell a joke.")                   # provider default temperature: samples
        client.chat(MODEL, "Tell a joke.")
        assert mock.chats == 2
    with make_client(tmp_path, mock, {"mode": "exact", "deterministic_only": False}) as client:
        client.chat(MODEL, "Tell a joke.", temperature=0.9)
        client.chat(MODEL, "Tell a joke.", temperature=0.9)
        assert mock.chats == 3


def test_every_parameter_is_part_of_the_key(tmp_path: Path, mock: OpenAIMock) -> None:
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        client.chat(MODEL, "q", temperature=0)
        client.chat(MODEL, "q", temperature=0, max_tokens=5)
        client.chat(MODEL, "q", temperature=0, system="be brief")
        client.chat(MODEL, "q", temperature=0, seed=3)
        client.chat(MODEL, [{"role": "user", "content": "q"}], temperature=0)   # the same question as the first
        assert mock.chats == 4
        client.chat(MODEL, "q", temperature=0.0)                                # 0 and 0.0: one question
        client.chat(MODEL, "q", temperature=0, top_p=1)
        client.chat(MODEL, "q", temperature=0, top_p=1.0)
        assert mock.chats == 5


def test_per_call_opt_out_and_refresh(tmp_path: Path, mock: OpenAIMock) -> None:
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        client.chat(MODEL, "q", temperature=0)
        client.chat(MODEL, "q", temperature=0, cache=False)          # neither read nor write
        assert mock.chats == 2
        fresh = client.chat(MODEL, "q", temperature=0, cache="refresh")   # ask again, store the new answer
        assert mock.chats == 3 and fresh.content.startswith("answer 3")
        assert client.chat(MODEL, "q", temperature=0).content.startswith("answer 3")
        assert mock.chats == 3
        with pytest.raises(ConfigError, match="cache=False"):
            client.chat(MODEL, "q", temperature=0, cache="sometimes")


def test_route_settings(tmp_path: Path, mock: OpenAIMock) -> None:
    """A route's own cache switch, deterministic-only rule and TTL win over ``[cache]``'s. The
    TTL is read on the cache's clock, pinned here: on wall time the second call had to come within
    0.2 s of the first one's store, which a loaded machine need not manage (a miss, one upstream
    call too many)."""
    routes = {"nocache": {"targets": [MODEL], "cache": False},
              "short": {"targets": [MODEL], "cache_ttl": 0.2},
              "any": {"targets": [MODEL], "cache_deterministic_only": False}}
    with make_client(tmp_path, mock, {"mode": "exact"}, routes=routes) as client:
        cache = client.gateway.cache
        assert cache is not None and isinstance(cache.backend, MemoryBackend)
        now = [1000.0]
        cache.backend = MemoryBackend(cache.config.max_entries, clock=lambda: now[0])
        client.chat("nocache", "q", temperature=0)
        client.chat("nocache", "q", temperature=0)
        assert mock.chats == 2
        client.chat("any", "q", temperature=1)
        client.chat("any", "q", temperature=1)
        assert mock.chats == 3
        client.chat("short", "q", temperature=0)
        now[0] += 0.1                                     # within the route's TTL
        client.chat("short", "q", temperature=0)
        assert mock.chats == 4
        now[0] += 0.2                                     # past it (the [cache] default TTL would still hit)
        client.chat("short", "q", temperature=0)
        assert mock.chats == 5


def test_stream_is_cached_and_replayed_with_its_chunks(tmp_path: Path, mock: OpenAIMock) -> None:
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        s1 = client.stream(MODEL, "Say four words please", temperature=0)
        live = [e.text for e in s1 if e.type == "text"]
        s2 = client.stream(MODEL, "Say four words please", temperature=0)
        replayed = [e.text for e in s2 if e.type == "text"]
        assert mock.chats == 1
        assert replayed == live and len(live) > 3            # the upstream's own chunk boundaries
        assert s2.response.content == s1.response.content and s2.response.cost == 0.0
        # a non-stream call of the same question is served from the stream's entry, and vice versa
        assert client.chat(MODEL, "Say four words please", temperature=0).content == s1.response.content
        client.chat(MODEL, "other words", temperature=0)
        s3 = client.stream(MODEL, "other words", temperature=0)
        assert "".join(e.text for e in s3 if e.type == "text") == s3.response.content
        assert mock.chats == 2


def test_structured_output_is_parsed_on_a_hit(tmp_path: Path, mock: OpenAIMock) -> None:
    class Answer(BaseModel):
        value: str

    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        prompt = '{"value": "x"}'
        mock_answer = client.chat(MODEL, prompt, temperature=0)   # the mock answers with text, not JSON
        assert mock_answer.content.startswith("answer 1")
        with pytest.raises(cloverleaf.StructuredOutputError):
            client.chat(MODEL, "json please", temperature=0, response_format=Answer)
        with pytest.raises(cloverleaf.StructuredOutputError):
            client.chat(MODEL, "json please", temperature=0, response_format=Answer)
        assert mock.chats == 3                  # a failed answer is never cached


def test_fake_provider_structured_hit_has_parsed(tmp_path: Path) -> None:
    class City(BaseModel):
        name: str
        population: int

    s = Settings(cache={"mode": "exact"}, gateway=True, store={"url": f"sqlite:///{tmp_path / 'c.db'}"})
    with cloverleaf.Client(s) as client:
        a = client.chat("fake/echo", "Largest city?", temperature=0, response_format=City)
        b = client.chat("fake/echo", "Largest city?", temperature=0, response_format=City)
        assert b.metadata.extra["cache"] == "hit" and isinstance(b.parsed, City) and b.parsed == a.parsed


def test_a_hit_validates_structured_output_only_where_its_miss_did(tmp_path: Path, mock: OpenAIMock) -> None:
    """With tools and a response format, a model that calls a tool has no structured output
    to validate: the miss returns the call, and so must the hit (it parsed "" as JSON)."""
    class City(BaseModel):
        name: str

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        miss, hit = (client.chat(MODEL, "Weather in Paris?", tools=[get_weather], response_format=City,
                                 temperature=0) for _ in range(2))
        assert mock.chats == 1 and hit.metadata.extra["cache"] == "hit"
        for resp in (miss, hit):
            assert resp.finish_reason == "tool_calls" and [t.name for t in resp.tool_calls] == ["get_weather"]
            assert resp.parsed is None


#: a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_a_local_file_is_keyed_by_its_content_not_its_path(tmp_path: Path, mock: OpenAIMock) -> None:
    scan, copy = tmp_path / "scan.png", tmp_path / "copy.png"
    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        def ask(path: Path) -> cloverleaf.ChatResponse:
            return client.chat(MODEL, "What is in this image?", attachments=[str(path)], temperature=0)

        scan.write_bytes(PNG)
        ask(scan)
        scan.write_bytes(PNG + b"\0" * 64)            # the same name, another image
        assert ask(scan).metadata.extra.get("cache") != "hit" and mock.chats == 2
        copy.write_bytes(PNG)                          # the first image under another name
        assert ask(copy).metadata.extra["cache"] == "hit" and mock.chats == 2
        assert mock.bodies[-1]["messages"][-1]["content"][-1]["image_url"]["url"].endswith(
            base64.b64encode(PNG + b"\0" * 64).decode())   # the upstream saw the new image


def test_a_url_the_gateway_downloads_is_not_cached(tmp_path: Path, mock: OpenAIMock,
                                                   loopback: Callable[[Handle], LoopbackServer]) -> None:
    """Its content is unknown until it is fetched, and may change under the same URL."""
    images = loopback(lambda request: Answer(200, PNG, {"content-type": "image/png"}))
    with make_client(tmp_path, mock, {"mode": "exact"}, attachments={"allow_hosts": ("127.0.0.1",)}) as client:
        for _ in range(2):
            resp = client.chat(MODEL, "What is in this image?", attachments=[f"{images.url}/scan.png"], temperature=0)
            assert "cache" not in resp.metadata.extra
    assert mock.chats == 2 and len(images.requests) == 2


def test_scoped_per_key_unless_shared(tmp_path: Path, mock: OpenAIMock) -> None:
    async def run(shared: bool) -> int:
        before = mock.chats
        client = cloverleaf.AsyncClient(Settings(providers={"mock": mock.provider()}, env={"MOCK_KEY": "k"},
                                                 cache={"mode": "exact", "shared": shared}, gateway=True,
                                                 store={"url": f"sqlite:///{tmp_path / f'{shared}.db'}"}))
        gw = client.gateway
        from cloverleaf._types import ChatRequest, Message

        for key in ("key-a", "key-b", "key-a"):
            ctx = CallContext(key=KeyPolicy(key_id=key))
            await gw.achat(MODEL, ChatRequest(model="", messages=[Message.user("same")], temperature=0), ctx)
        await gw.aclose()
        return mock.chats - before

    assert asyncio.run(run(False)) == 2      # key-b does not see key-a's answer
    assert asyncio.run(run(True)) == 1


def test_a_key_that_may_not_use_the_model_gets_no_cached_answer(tmp_path: Path, mock: OpenAIMock) -> None:
    async def run() -> None:
        priced = ModelEntry.from_dict({"name": "priced", "provider": "mock", "identifier": "gpt-test",
                                       "input_cost_per_1k": 1.0, "output_cost_per_1k": 1.0})
        client = cloverleaf.AsyncClient(Settings(providers={"mock": mock.provider()}, env={"MOCK_KEY": "k"},
                                                 cache={"mode": "exact", "shared": True}, gateway=True,
                                                 models=[priced],
                                                 store={"url": f"sqlite:///{tmp_path / 'p.db'}"}))
        from cloverleaf._types import ChatRequest, Message

        req = ChatRequest(model="", messages=[Message.user("secret")], temperature=0, max_tokens=100)
        await client.gateway.achat("priced", req, CallContext(key=KeyPolicy(key_id="a")))
        with pytest.raises(cloverleaf.PermissionDeniedError):
            await client.gateway.achat("priced", req, CallContext(key=KeyPolicy(key_id="b", allowed_models=("fake/*",))))
        with pytest.raises(cloverleaf.BudgetExceeded):   # a budget too small for the call: no free answer either
            await client.gateway.achat("priced", req, CallContext(key=KeyPolicy(key_id="c", budget=0.0001)))
        await client.gateway.aclose()

    asyncio.run(run())
    assert mock.chats == 1


def test_semantic_hit_on_a_close_paraphrase(tmp_path: Path, mock: OpenAIMock) -> None:
    cache = {"mode": "semantic", "embedding_model": "simple/hash", "similarity": 0.8}
    with make_client(tmp_path, mock, cache) as client:
        client.chat(MODEL, "What is the capital city of France?", temperature=0)
        close = client.chat(MODEL, "what is the capital city of france", temperature=0)
        assert mock.chats == 1
        assert close.metadata.extra["cache"] == "hit" and 0.8 <= close.metadata.extra["cache_similarity"] <= 1.0
        client.chat(MODEL, "How do I bake sourdough bread at home?", temperature=0)
        assert mock.chats == 2
        # the scope holds model and parameters: the same prompt with another max_tokens is a miss
        client.chat(MODEL, "What is the capital city of France?", temperature=0, max_tokens=7)
        assert mock.chats == 3


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_size_bound_and_ttl(tmp_path: Path, mock: OpenAIMock, backend: str) -> None:
    url = f"sqlite:///{tmp_path / 'cache.db'}" if backend == "sqlite" else "memory"
    with make_client(tmp_path, mock, {"mode": "exact", "url": url, "max_entries": 2, "ttl": 30}) as client:
        for q in ("a", "b", "c"):
            client.chat(MODEL, q, temperature=0)
        client.chat(MODEL, "c", temperature=0)     # still there
        client.chat(MODEL, "a", temperature=0)     # the oldest went when "c" came
        assert mock.chats == 4


def test_sqlite_cache_survives_a_restart(tmp_path: Path, mock: OpenAIMock) -> None:
    cache = {"mode": "exact", "url": f"sqlite:///{tmp_path / 'cache.db'}"}
    with make_client(tmp_path, mock, cache) as client:
        client.chat(MODEL, "persist me", temperature=0)
    with make_client(tmp_path, mock, cache) as client:
        assert client.chat(MODEL, "persist me", temperature=0).metadata.extra["cache"] == "hit"
    assert mock.chats == 1


def test_memory_backend_expires_entries() -> None:
    now = [100.0]
    backend = MemoryBackend(10, clock=lambda: now[0])

    async def run() -> None:
        await backend.put("k", b"v", ttl=5)
        assert await backend.get("k") == b"v"
        now[0] += 6
        assert await backend.get("k") is None and len(backend) == 0

    asyncio.run(run())


def test_codec_round_trip_never_unpickles() -> None:
    from cloverleaf._types import ChatResponse, StreamEvent, Text, ToolCall, Usage

    resp = ChatResponse(parts=[Text("hi"), ToolCall("c1", "f", {"a": [1, 2]})], model="m", provider="p",
                        finish_reason="tool_calls", usage=Usage(3, 4))
    answer = loads(dumps(CachedAnswer(resp, [StreamEvent("text", text="hi")], 1.5)))
    assert answer.response.parts == resp.parts and answer.response.usage == resp.usage
    assert answer.events == [StreamEvent("text", text="hi")]
    with pytest.raises(ValueError, match="unknown cached type"):
        loads(b'{"response": {"__t": "Popen", "args": "rm"}}')


def test_a_mistyped_cache_url_is_refused_without_its_password() -> None:
    """The error for a [cache] url of an unknown scheme (serve's stderr, ``cloverleaf doctor``,
    a CI log) printed the URL whole, password included."""
    from cloverleaf.gateway.cache.backends import open_backend

    url = "valkey://:hunter2-cache-pw@cache.internal:6379/0?token=tok-secret-1"
    with pytest.raises(ConfigError, match="cache.internal") as refused:
        parse_cache({"mode": "exact", "url": url})
    with pytest.raises(ConfigError, match="cache.internal") as unsupported:
        open_backend(url, max_entries=10, prefix="p:")
    for err in (refused, unsupported):
        assert "hunter2" not in str(err.value) and "tok-secret" not in str(err.value)


def test_config_errors_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="allowed"):
        parse_cache({"mode": "exact", "tll": 5})
    with pytest.raises(ConfigError, match="embedding_model"):
        parse_cache({"mode": "semantic"})
    with pytest.raises(ConfigError, match="mode"):
        parse_cache({"mode": "fuzzy"})
    with pytest.raises(ConfigError, match="cache_ttl"):
        Settings(routes={"r": {"targets": ["fake/echo"], "cache_ttl": -1}}, gateway=True)
        from cloverleaf.gateway.config import parse

        parse(Settings(routes={"r": {"targets": ["fake/echo"], "cache_ttl": -1}}))


def test_a_broken_cache_is_a_miss_not_a_failure(tmp_path: Path, mock: OpenAIMock) -> None:
    class Broken(MemoryBackend):
        async def get(self, key: str) -> bytes | None:
            raise OSError("disk gone")

    with make_client(tmp_path, mock, {"mode": "exact"}) as client:
        gw = client.gateway
        assert gw.cache is not None
        gw.cache = ResponseCache(gw.cache.config, gw.engine, backend=Broken(10))
        assert client.chat(MODEL, "q", temperature=0).content.startswith("answer 1")
        assert mock.chats == 1


def test_a_whole_answer_replayed_as_a_stream_keeps_its_stop_sequence() -> None:
    """A stream served from a non-streamed entry ends as the upstream's stream would: its done
    event says which stop sequence ended the answer (Anthropic clients read it)."""
    from cloverleaf._types import ChatResponse, ResponseMetadata, Text
    from cloverleaf.gateway.cache import replay_events

    resp = ChatResponse([Text("1, 2, 3")], "claude", "anthropic", finish_reason="stop",
                        metadata=ResponseMetadata(raw_finish_reason="stop_sequence", extra={"stop_sequence": "END"}))
    done = replay_events(loads(dumps(CachedAnswer(resp))))[-1]
    assert done.type == "done" and done.raw_finish_reason == "stop_sequence" and done.extra == {"stop_sequence": "END"}
    plain = ChatResponse([Text("hi")], "claude", "anthropic", finish_reason="stop")
    assert replay_events(CachedAnswer(plain))[-1].extra is None


# --------------------------------------------------------------------------- beta features in the key


def test_requests_differing_only_in_betas_do_not_share_an_entry(tmp_path: Path, mock: OpenAIMock) -> None:
    """A beta (``anthropic-beta``) can switch on what changes the answer: two beta sets are two
    questions. The same set however spelt (order, spaces, repeats, one header or several) is one."""
    async def run() -> list[str | None]:
        client = cloverleaf.AsyncClient(Settings(providers={"mock": mock.provider()}, env={"MOCK_KEY": "k"},
                                                 cache={"mode": "exact"}, gateway=True,
                                                 store={"url": f"sqlite:///{tmp_path / 'b.db'}"}))
        from cloverleaf._types import ChatRequest, Message

        results = []
        for betas in [(), ("context-1m-2025-08-07",), ("interleaved-thinking-2025-05-14",),
                      ("context-1m-2025-08-07",), (" interleaved-thinking-2025-05-14,context-1m-2025-08-07",),
                      ("context-1m-2025-08-07", "interleaved-thinking-2025-05-14", "context-1m-2025-08-07"), ()]:
            ctx = CallContext(key=KeyPolicy(key_id="a"), client_betas=betas)
            await client.gateway.achat(MODEL, ChatRequest(model="", messages=[Message.user("same")], temperature=0),
                                       ctx)
            results.append(ctx.cache_result)
        await client.gateway.aclose()
        return results

    assert asyncio.run(run()) == ["miss", "miss", "miss", "hit", "miss", "hit", "hit"]
    assert mock.chats == 4


def test_a_request_without_betas_keeps_the_key_it_always_had() -> None:
    """Keys made before betas were keyed (these digests) still find their entries; betas, in any
    spelling of one set, make one other key, in exact and semantic mode alike."""
    from cloverleaf._types import ChatRequest, Message, Tool
    from cloverleaf.gateway.cache.keys import exact_key, semantic_keys

    req = ChatRequest(model="", messages=[Message.system("be brief"), Message.user("Name a prime.")],
                      temperature=0, tools=[Tool("get_time", "the time")], max_tokens=20)
    before = "2095a38b85a24c6591ad1563c809308798973409c6c123b11ff024c4ff85f77b"
    scope_before = "594bc49564d78ce159ee979975c7b034064dc0a5acef11bea05b5ffae4374d23"
    assert exact_key("key-a", MODEL, req) == exact_key("key-a", MODEL, req, ()) == before
    assert semantic_keys("key-a", MODEL, req) == (before, scope_before, "Name a prime.")
    with_betas = exact_key("key-a", MODEL, req, ("b-2, a-1",))
    assert with_betas != before
    assert exact_key("key-a", MODEL, req, ("a-1", "b-2", "a-1")) == with_betas
    assert exact_key("key-a", MODEL, req, ("a-1",)) not in (before, with_betas)
    key, scope, _ = semantic_keys("key-a", MODEL, req, ("a-1", "b-2"))
    assert key == with_betas and scope != scope_before


def test_prompt_cache_marks_are_not_part_of_the_key() -> None:
    """``cache_control`` on a tool or the request changes what the provider bills, not what it
    answers: a marked and an unmarked call are one question (and keep the key they had)."""
    from cloverleaf._types import ChatRequest, Message, Tool
    from cloverleaf.gateway.cache.keys import exact_key

    marked = ChatRequest(model="", messages=[Message.system("be brief"), Message.user("Name a prime.")],
                         temperature=0, tools=[Tool("get_time", "the time", cache_control={"type": "ephemeral"})],
                         max_tokens=20, cache_control={"type": "ephemeral", "ttl": "1h"})
    assert exact_key("key-a", MODEL, marked) == "2095a38b85a24c6591ad1563c809308798973409c6c123b11ff024c4ff85f77b"


def test_context_edits_are_part_of_the_key_only_when_present() -> None:
    """Clearing old thinking or tool results changes what the model reads, so it changes the
    question; a request without edits keeps the key it always had."""
    from cloverleaf._types import ChatRequest, Message, Tool
    from cloverleaf.gateway.cache.keys import exact_key, semantic_keys

    def req(edits: dict[str, Any] | None) -> ChatRequest:
        return ChatRequest(model="", messages=[Message.system("be brief"), Message.user("Name a prime.")],
                           temperature=0, tools=[Tool("get_time", "the time")], max_tokens=20,
                           context_management=edits)

    before = "2095a38b85a24c6591ad1563c809308798973409c6c123b11ff024c4ff85f77b"
    assert exact_key("key-a", MODEL, req(None)) == before
    thinking = exact_key("key-a", MODEL, req({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}))
    tools = exact_key("key-a", MODEL, req({"edits": [{"type": "clear_tool_uses_20250919"}]}))
    assert len({before, thinking, tools}) == 3
    assert semantic_keys("key-a", MODEL, req({"edits": [{"type": "clear_tool_uses_20250919"}]}))[0] == tools


def test_prompt_cache_marks_on_tool_calls_and_results_are_not_part_of_the_key() -> None:
    """An agent loop moves its breakpoint to the newest tool result on every turn: the marks on
    tool calls, tool results and the blocks inside them leave the question, and its key, as it was."""
    from cloverleaf._types import ChatRequest, Message, Text, ToolCall, ToolResult
    from cloverleaf.gateway.cache.keys import exact_key

    def conversation(mark: dict[str, Any] | None) -> ChatRequest:
        return ChatRequest(model="", temperature=0, messages=[
            Message.user("read a"), Message.assistant([ToolCall("t1", "read", {"path": "a"}, cache_control=mark)]),
            Message("tool", [ToolResult("t1", [Text("file a", cache_control=mark)], cache_control=mark)])])

    assert exact_key("key-a", MODEL, conversation({"type": "ephemeral"})) == exact_key("key-a", MODEL,
                                                                                        conversation(None))


def test_adaptive_thinking_and_anthropics_effort_are_part_of_the_key() -> None:
    """Adaptive thinking and an effort of ``max`` give other answers than a budget and ``high``:
    they are keyed when set, and a request without them keeps the key it had."""
    from cloverleaf._types import ChatRequest, Message, ReasoningConfig
    from cloverleaf.gateway.cache.keys import exact_key

    def ask(reasoning: ReasoningConfig) -> str:
        return exact_key("key-a", MODEL, ChatRequest(model="", messages=[Message.user("hi")], temperature=0,
                                                     reasoning=reasoning))

    keys = {ask(ReasoningConfig(effort="high")), ask(ReasoningConfig(effort="high", native_effort="max")),
            ask(ReasoningConfig(effort="high", adaptive=True, native_effort="max")),
            ask(ReasoningConfig(effort="high", adaptive=True))}
    assert len(keys) == 4
    before = "ee3b3caf2605c2f494a0829ad80ab9eec5dff0956266ea5492da83224ecb0db4"   # its key before these fields
    assert ask(ReasoningConfig(effort="high")) == before


def test_a_replayed_stream_keeps_what_a_live_streams_done_event_carries() -> None:
    """A cached answer streamed to a client: Perplexity's sources and Anthropic's applied edits
    ride on the done event, as on a live stream (the replay kept only the stop sequence)."""
    from cloverleaf._types import ChatResponse, ResponseMetadata, Text, Usage
    from cloverleaf.gateway.cache import replay_events
    from cloverleaf.gateway.cache.codec import CachedAnswer

    extra = {"citations": ["https://a.example"], "search_results": [{"title": "A", "url": "https://a.example"}],
             "context_management": {"applied_edits": []}, "stop_sequence": "END", "upstream_provider": "x"}
    resp = ChatResponse(parts=[Text("It is A [1].")], model="sonar", provider="perplexity", finish_reason="stop",
                        usage=Usage(input_tokens=3, output_tokens=4),
                        metadata=ResponseMetadata(raw_finish_reason="stop", extra=dict(extra)))
    done = replay_events(CachedAnswer(response=resp))[-1]
    assert done.type == "done" and done.extra == {k: v for k, v in extra.items() if k != "upstream_provider"}


class HungRedis:
    """A TCP server that accepts and reads but never answers: a Redis stopped (SIGSTOP) or behind
    a dead network path. Counts the connections it was given."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


async def test_a_hung_redis_cache_costs_one_bounded_wait_then_is_left_alone_for_a_while() -> None:
    """A Redis that never answers: the lookup gives up (a miss, served by the provider) instead
    of waiting on the socket, and the calls after it skip the cache for a few seconds, lookups
    and stores alike, rather than each waiting again."""
    from cloverleaf._types import ChatRequest, ChatResponse, Message, Text
    from cloverleaf.gateway.cache.config import CacheConfig

    hung = HungRedis()
    try:
        cache = ResponseCache(CacheConfig(mode="exact", url=f"redis://127.0.0.1:{hung.port}/0"), engine=None)
        plan = cache.plan("m", ChatRequest("m", [Message.user("hello")], temperature=0), None, None)
        assert plan is not None
        assert await cache.lookup(plan) is None and len(hung.accepted) == 1
        assert await cache.lookup(plan) is None                   # paused: nothing asked of Redis
        await cache.store(plan, ChatResponse(model="m", provider="p", parts=[Text("hi")]), None)
        assert len(hung.accepted) == 1 and cache.misses == 2
    finally:
        hung.close()
