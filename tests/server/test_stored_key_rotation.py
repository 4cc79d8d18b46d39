"""A provider key stored through the admin API that no longer decrypts (``CLOVERLEAF_MASTER_KEY``
changed, with no ``CLOVERLEAF_ENCRYPTION_KEY`` of its own) made the server fail at start-up with a
ConfigError telling the operator to re-enter the key through the admin API, which a server that
does not start cannot offer. Now the server starts, logs which entry lost its key (never the key),
calls to that entry fail saying why, and sending the key again through the admin API mends it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cloverleaf.gateway.store.records import ModelEntryRow
from cloverleaf.server import backend as backend_module
from cloverleaf.server.backend import Backend
from cloverleaf.server.secrets import SecretBox

from .conftest import MASTER, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]
OLD_MASTER = "the-master-key-before-rotation-0123"
SECRET = "sk-upstream-SECRET-before-rotation"


def test_a_stored_key_that_no_longer_decrypts_does_not_stop_the_server(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = {"url": f"sqlite:///{tmp_path / 'store.db'}"}
    before = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": OLD_MASTER}, store=store, models=[]))
    try:
        with before.http(OLD_MASTER) as http:
            made = http.post("/admin/models", json={"name": "team", "provider": "fake", "identifier": "echo",
                                                    "api_key": SECRET})
            assert made.status_code == 201, made.text
    finally:
        stop_live(before)

    with caplog.at_level(logging.ERROR, logger="cloverleaf.server"):
        after = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store=store, models=[]))  # it starts
    try:
        said = [r for r in caplog.records if r.name == "cloverleaf.server" and "'team'" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.ERROR
        assert "stored provider key cannot be decrypted" in said[0].getMessage()
        assert "PATCH /admin/models/team" in said[0].getMessage() and SECRET not in caplog.text

        with after.http(MASTER) as http:
            refused = http.post("/v1/chat/completions", json={"model": "team", "messages": HELLO})
            assert refused.status_code == 503, refused.text
            assert "model entry 'team': its stored provider key cannot be decrypted" in refused.json()["error"]["message"]
            assert SECRET not in refused.text
            assert not after.fake.requests   # it did not go out without its key
            served = http.post("/v1/chat/completions", json={"model": "fake/chat", "messages": HELLO})
            assert served.status_code == 200, served.text   # the rest of the gateway serves
            assert http.get("/admin/models/team").json()["has_api_key"] is True

            mended = http.patch("/admin/models/team", json={"api_key": "sk-upstream-new"})
            assert mended.status_code == 200, mended.text
            answer = http.post("/v1/chat/completions", json={"model": "team", "messages": HELLO})
            assert answer.status_code == 200, answer.text
        assert after.fake.requests[-1].headers["authorization"] == "Bearer sk-upstream-new"
    finally:
        stop_live(after)


async def test_an_undecryptable_key_is_logged_once_however_often_the_registry_reloads(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every change to the table reloads every stored entry (the workers' sync): the entry is
    said once, and said again only if its key is mended and then lost again."""
    # only the test's own calls check: the background check could take a change first on a slow run
    monkeypatch.setattr(backend_module, "REGISTRY_SYNC_SECONDS", 3600.0)
    s = settings(store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    old = SecretBox(OLD_MASTER)
    rotated = Backend(s, box=SecretBox(MASTER))
    rotated.store.upsert_model_entry(ModelEntryRow(name="team", identifier="echo", provider="fake",
                                                   api_key_encrypted=old.encrypt(SECRET)))
    try:
        with caplog.at_level(logging.ERROR, logger="cloverleaf.server"):
            await rotated.start()
            for i in range(3):
                rotated.store.upsert_model_entry(ModelEntryRow(name=f"other-{i}", identifier="chat", provider="fake"))
                assert await rotated.sync_registry() is True
            assert len([r for r in caplog.records if "'team'" in r.getMessage()]) == 1
            entry = rotated.engine.registry.get("team")
            assert entry is not None and entry.api_key is None and "cannot be decrypted" in str(entry.key_problem)

            rotated.install(rotated.store.upsert_model_entry(ModelEntryRow(   # the key sent again
                name="team", identifier="echo", provider="fake", api_key_encrypted=SecretBox(MASTER).encrypt("sk-new"))))
            assert rotated.engine.registry.get("team").key_problem is None  # type: ignore[union-attr]
            rotated.install(rotated.store.upsert_model_entry(ModelEntryRow(
                name="team", identifier="echo", provider="fake", api_key_encrypted=old.encrypt(SECRET))))
            assert len([r for r in caplog.records if "'team'" in r.getMessage()]) == 2
        assert SECRET not in caplog.text
    finally:
        await rotated.aclose()
