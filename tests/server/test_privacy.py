"""The privacy policy on the live server: the request headers and the virtual-key setting.

"Cloud" targets point at a connection-counting upstream on 127.0.0.1 (see
``tests/counting_upstream.py``); a refused request must leave it at zero connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from cloverleaf._config import ProviderSettings

from ..counting_upstream import CountingUpstream
from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "my medical history"}]


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[CountingUpstream, CountingUpstream]]:
    cloud, local = CountingUpstream("cloud"), CountingUpstream("local")
    yield cloud, local
    cloud.close()
    local.close()


@pytest.fixture(scope="module")
def server(mocks: tuple[CountingUpstream, CountingUpstream]) -> Iterator[Live]:
    cloud, local = mocks
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-upstream-test"},
                 providers={"openai": ProviderSettings("openai", base_url=cloud.base_url),
                            "vllm": ProviderSettings("vllm", base_url=local.base_url)},
                 routes={"mixed": {"targets": ["openai/gpt-4o-mini", "vllm/llama"]},
                         "cloud": {"targets": ["openai/gpt-4o-mini"]},
                         "private": {"targets": ["vllm/llama", "openai/gpt-4o-mini"], "privacy": "local-only"}},
                 privacy={"classes": {"confidential": "local-only", "public": "any"}})
    live = start_live(s)
    yield live
    stop_live(live)


def post(live: Live, key: str, model: str, headers: dict[str, str] | None = None) -> Any:
    with live.http(key) as http:
        return http.post("/v1/chat/completions", json={"model": model, "messages": HELLO}, headers=headers or {})


def test_the_privacy_header_keeps_a_request_local(server: Live, mocks: tuple[CountingUpstream, CountingUpstream]) -> None:
    cloud, _ = mocks
    before = cloud.connections
    r = post(server, MASTER, "mixed", {"x-cloverleaf-privacy": "local-only"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "answered by local"
    r = post(server, MASTER, "cloud", {"x-cloverleaf-privacy": "local-only"})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "privacy_violation" and error["policy"] == "local-only"
    assert error["refused"][0]["target"] == "openai/gpt-4o-mini" and "not a local provider" in error["message"]
    assert cloud.connections == before
    # the data class header maps through [privacy.classes]
    r = post(server, MASTER, "mixed", {"x-cloverleaf-data-class": "confidential"})
    assert r.json()["choices"][0]["message"]["content"] == "answered by local"
    assert cloud.connections == before
    # and without any of it the cloud mock is reachable (the control)
    assert post(server, MASTER, "mixed").json()["choices"][0]["message"]["content"] == "answered by cloud"
    assert cloud.connections == before + 1


def test_a_conversation_with_a_local_only_turn_stays_local(server: Live,
                                                           mocks: tuple[CountingUpstream, CountingUpstream]) -> None:
    """previous_response_id replays every earlier turn to the new call's model: a turn that ran
    local-only (by its route, or by a header) used to reach a cloud model on the next turn."""
    cloud, _ = mocks
    client = server.openai(MASTER)
    by_route = client.responses.create(model="private", input="my bank PIN is 4711")
    by_header = client.responses.create(model="mixed", input="my bank PIN is 4711",
                                        extra_headers={"x-cloverleaf-data-class": "confidential"})
    assert by_route.output_text == by_header.output_text == "answered by local"
    before = cloud.connections
    for first in (by_route, by_header):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.responses.create(model="cloud", input="summarise", previous_response_id=first.id)
        assert refused.value.body["code"] == "privacy_violation"  # type: ignore[index]
        assert f"previous_response_id {first.id!r}" in refused.value.body["message"]  # type: ignore[index]
        # on a route with a local target, the next turn is served there; and it passes the policy on
        second = client.responses.create(model="mixed", input="summarise", previous_response_id=first.id)
        assert second.output_text == "answered by local"
        with pytest.raises(openai.PermissionDeniedError):
            client.responses.create(model="cloud", input="and?", previous_response_id=second.id)
    assert cloud.connections == before
    # a conversation nothing restricted goes where it is sent (the control)
    open_turn = client.responses.create(model="mixed", input="hello")
    assert open_turn.output_text == "answered by cloud"
    assert client.responses.create(model="cloud", input="more", previous_response_id=open_turn.id).output_text == (
        "answered by cloud")


def test_an_item_reference_to_a_local_only_turn_stays_local(server: Live,
                                                            mocks: tuple[CountingUpstream, CountingUpstream]) -> None:
    """An ``item_reference`` (the AI SDK's tool loop) replays a stored item to the new call's
    model: an item of a turn that ran local-only was sent to a cloud model."""
    cloud, _ = mocks
    client = server.openai(MASTER)
    private = client.responses.create(model="private", input="my bank PIN is 4711")
    said = next(item.id for item in private.output if item.type == "message")
    before = cloud.connections
    replay: list[Any] = [{"type": "item_reference", "id": said}, {"role": "user", "content": "repeat it"}]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.responses.create(model="cloud", input=replay)
    assert refused.value.body["code"] == "privacy_violation"  # type: ignore[index]
    assert f"item_reference {said!r}" in refused.value.body["message"]  # type: ignore[index]
    again = client.responses.create(model="mixed", input=replay)   # a local target serves it, and passes it on
    assert again.output_text == "answered by local"
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="cloud", input="and?", previous_response_id=again.id)
    assert cloud.connections == before
    open_turn = client.responses.create(model="mixed", input="hello")   # the control: nothing restricted it
    shared = next(item.id for item in open_turn.output if item.type == "message")
    assert client.responses.create(model="cloud", input=[{"type": "item_reference", "id": shared}]).output_text == (
        "answered by cloud")


def test_bad_privacy_headers_are_400(server: Live) -> None:
    r = post(server, MASTER, "mixed", {"x-cloverleaf-privacy": "local"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_privacy"
    r = post(server, MASTER, "mixed", {"x-cloverleaf-data-class": "top-secret"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_data_class"
    assert "confidential" in r.json()["error"]["message"]


def test_a_local_only_virtual_key(server: Live, mocks: tuple[CountingUpstream, CountingUpstream]) -> None:
    cloud, _ = mocks
    created = create_key(server, name="clinic", privacy="local-only")
    assert created["privacy"] == "local-only"
    secret = created["key"]
    before = cloud.connections
    client = server.openai(secret)
    out = client.chat.completions.create(model="mixed", messages=HELLO)   # type: ignore[arg-type]
    assert out.choices[0].message.content == "answered by local"
    # a request cannot loosen its key's policy
    out = client.chat.completions.create(model="mixed", messages=HELLO,   # type: ignore[arg-type]
                                         extra_headers={"x-cloverleaf-privacy": "any"})
    assert out.choices[0].message.content == "answered by local"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="cloud", messages=HELLO)    # type: ignore[arg-type]
    assert f"virtual key {created['id']!r}" in str(denied.value)
    with pytest.raises(anthropic.PermissionDeniedError):
        server.anthropic(secret).messages.create(model="cloud", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert cloud.connections == before
    # the decision is on the call record
    store = server.state.backend.store
    store.flush()
    calls = [c for c in store.recent_calls(limit=10) if c.key_id == created["id"]]
    assert calls and all(c.metadata["privacy"]["policy"] == "local-only" for c in calls)
    assert any(c.status == "error" and c.error_type == "PrivacyViolation" for c in calls)
    # an admin can lift it again; "any" is how the key shows when it adds no restriction
    with server.http(MASTER) as http:
        r = http.patch(f"/admin/keys/{created['id']}", json={"privacy": "any"})
        assert r.status_code == 200 and r.json()["privacy"] == "any", r.text
        assert http.post("/admin/keys", json={"name": "x", "privacy": "cloud"}).status_code == 400


def test_a_local_only_request_for_a_cloud_model_without_a_key_hears_the_policy(server: Live) -> None:
    """The gateway has no Anthropic key. Any other request hears that (404, set the key); a
    local-only one hears the policy's refusal (403), as on the SDK: the key would not let it go."""
    r = post(server, MASTER, "anthropic/claude-3-5-haiku-latest")
    assert r.status_code == 404 and "ANTHROPIC_API_KEY" in r.json()["error"]["message"]
    r = post(server, MASTER, "anthropic/claude-3-5-haiku-latest", {"x-cloverleaf-data-class": "confidential"})
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "privacy_violation" and "not a local provider" in error["message"]
    assert "data class 'confidential'" in error["message"]
    secret = create_key(server, name="ward", privacy="local-only")["key"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        server.openai(secret).chat.completions.create(model="anthropic/claude-3-5-haiku-latest",
                                                      messages=HELLO)   # type: ignore[arg-type]
    assert "virtual key" in str(denied.value) and "ANTHROPIC_API_KEY" not in str(denied.value)


def host_in_query(url: str) -> str:
    """The same database with its host named the way libpq also reads it: ``postgresql://u@/db?host=H&port=P``."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    moved = parsed.set(host=None, port=None).update_query_dict({"host": "localhost", "port": str(parsed.port)})
    return moved.render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["netloc", "query"])
def test_a_local_only_response_is_never_stored_in_a_database_that_is_not_local(form: str) -> None:
    """``store: true`` keeps the conversation in the store; under local-only a hosted database
    would hold it, so the request is refused with what to do, and nothing is written. The real
    PostgreSQL is reached through ``localhost`` while the privacy resolver says it is public;
    the host is named in the URL's netloc or, as libpq also reads it, in its query string
    (``?host=localhost``: no netloc host, and still not a local socket)."""
    import sqlalchemy as sa

    from ..gateway.stores import fresh_postgres_database

    with fresh_postgres_database() as url:
        remote_looking = url.replace("@127.0.0.1:", "@localhost:") if form == "netloc" else host_in_query(url)
        live = start_live(settings(store={"url": remote_looking}))
        try:
            live.state.backend.engine.privacy.resolver = (
                lambda host, port: ["93.184.216.34"] if host == "localhost" else ["127.0.0.1"])
            private = {"x-cloverleaf-privacy": "local-only"}
            with live.http() as http:
                refused = http.post("/v1/responses", json={"model": "fake/echo", "input": "my diary"}, headers=private)
                unstored = http.post("/v1/responses", json={"model": "fake/echo", "input": "my diary",
                                                            "store": False}, headers=private)
                public = http.post("/v1/responses", json={"model": "fake/echo", "input": "a public note"})
                found = http.get(f"/v1/responses/{public.json()['id']}")
        finally:
            stop_live(live)
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == "store"
        assert "local-only" in error["message"] and '"store": false' in error["message"]
        assert "localhost" in error["message"] and url.split("@")[0] not in error["message"]  # no credentials
        assert unstored.status_code == 200 and unstored.json()["output"][0]["content"][0]["text"] == "my diary"
        assert public.status_code == 200 and found.status_code == 200   # without the policy it is stored
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            texts = [str(row[0]) for row in conn.execute(sa.text("SELECT input_items FROM responses"))]
        engine.dispose()
        assert len(texts) == 1 and "my diary" not in texts[0]


def test_a_target_whose_host_no_lookup_can_take_is_never_a_500() -> None:
    """A base_url host with a DNS label over 63 characters: the IDNA codec refuses it (a
    UnicodeError) in the locality check and in the HTTP client, and both were the server's 500.
    Under local-only the target is refused as unresolvable and the route answers from its
    next one; without the policy the route falls back too, and the model alone is a 502 that
    names the host."""
    overlong = "a" * 64 + ".lab.internal"
    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                               providers={"vllm": ProviderSettings("vllm", base_url=f"http://{overlong}:8000/v1")},
                               routes={"r": {"targets": ["vllm/llama", "fake/echo"]}}))
    try:
        local_only = {"x-cloverleaf-privacy": "local-only"}
        for headers in (local_only, {}):
            r = post(live, MASTER, "r", headers)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == HELLO[0]["content"]
        r = post(live, MASTER, "vllm/llama", local_only)
        assert r.status_code == 403 and "could not be resolved" in r.json()["error"]["message"]
        r = post(live, MASTER, "vllm/llama")
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "upstream_unreachable" and overlong in error["message"]
        assert "not a valid DNS name" in error["message"]
    finally:
        stop_live(live)
