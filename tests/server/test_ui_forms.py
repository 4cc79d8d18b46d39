"""The dashboard's forms over plain HTTP: a refused form comes back as it was sent (boxes and
selects included, never a secret), and a "Create key" form sent twice creates one key."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import csrf_of, form_token_of, sign_in


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER,
                                      "CLOVERLEAF_ENCRYPTION_KEY": "forms-test-encryption-key"}))
    yield server
    stop_live(server)


def _tag(page: str, element_id: str) -> str:
    return re.search(rf'<(?:input|select)[^>]*id="{element_id}"[^>]*>', page).group(0)  # type: ignore[union-attr]


def _listed(live: Live, name: str) -> bool:
    with live.http(MASTER) as http:
        return any(m["id"] == name for m in http.get("/v1/models").json()["data"])


def test_a_refused_model_form_keeps_its_boxes_as_they_were_sent(live: Live) -> None:
    """An unticked "Listed in /v1/models" is not sent at all, and the refused form came back
    with it ticked: correcting the one bad field and saving listed an entry meant hidden."""
    http = sign_in(live)
    token = csrf_of(http.get("/ui/models").text)
    typed = {"csrf": token, "name": "internal-only", "provider": "fake", "identifier": "echo",
             "api_key": "sk-provider-secret-abcdef0123", "input_cost_per_1k": "abc"}
    refused = http.post("/ui/models", data=typed)
    assert refused.status_code == 400 and "expected a number" in refused.text
    assert "checked" not in _tag(refused.text, "m-public")
    assert "sk-provider-secret-abcdef0123" not in refused.text
    # sent again as the page now shows it (the box left as it is), the entry stays hidden
    assert http.post("/ui/models", data={**typed, "input_cost_per_1k": "0.001"}).status_code == 303
    assert live.state.backend.store.get_model_entry("internal-only").is_public is False
    assert not _listed(live, "internal-only")

    # a ticked box comes back ticked, on the add form and on the edit form's "remove the key"
    ticked = http.post("/ui/models", data={**typed, "name": "public-one", "is_public": "on"})
    assert ticked.status_code == 400 and "checked" in _tag(ticked.text, "m-public")
    edit = {"csrf": token, "entry": "internal-only", "provider": "fake", "identifier": "echo",
            "context_window": "many", "clear_api_key": "on"}
    refused_edit = http.post("/ui/models", data=edit)
    assert refused_edit.status_code == 400
    assert "checked" in _tag(refused_edit.text, "m-clear") and "checked" not in _tag(refused_edit.text, "m-public")
    # and a fresh add form still starts listed
    assert "checked" in _tag(http.get("/ui/models").text, "m-public")


def test_a_refused_key_form_comes_back_filled_in(live: Live) -> None:
    """One bad field threw away everything typed: every input came back empty, the box
    unticked and the period reset."""
    http = sign_in(live)
    page = http.get("/ui/keys").text
    typed = {"csrf": csrf_of(page), "form_token": form_token_of(page), "name": "ci-bot",
             "allowed_models": "fake/*", "rpm": "100", "tpm": "5000", "budget": "ten dollars",
             "budget_period": "month", "expires_in_days": "30", "admin": "on"}
    refused = http.post("/ui/keys", data=typed)
    assert refused.status_code == 400 and "budget: expected a number" in refused.text
    form = refused.text[refused.text.index('id="key-form"'):]
    for name in ("name", "allowed_models", "rpm", "tpm", "budget", "expires_in_days"):
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(typed[name])}"', form), name
    assert "checked" in _tag(form, "k-admin") and '<option value="month" selected>' in form
    assert not live.state.backend.store.list_virtual_keys(include_revoked=True)
    # the same form, corrected, creates the key (its token was not used up by the refusal)
    created = http.post("/ui/keys", data={**typed, "budget": "10"})
    assert created.status_code == 201 and 'id="new-secret"' in created.text
    # and the form after a success is empty again
    after = created.text[created.text.index('id="key-form"'):]
    assert 'value="ci-bot"' not in after and "checked" not in _tag(after, "k-admin")


def test_a_create_key_form_sent_twice_creates_one_key(live: Live) -> None:
    """The answer to "Create key" is the POST's page: reloading it sent the form again and
    silently made a second key. A form's token creates at most one key; sent again, the page
    says which key it made, without its secret."""
    http = sign_in(live)
    page = http.get("/ui/keys").text
    form = {"csrf": csrf_of(page), "form_token": form_token_of(page), "name": "once-only"}
    first = http.post("/ui/keys", data=form)
    assert first.status_code == 201
    secret = re.search(r'id="new-secret" class="mono" value="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"Key (key_[0-9a-f]+) created", first.text).group(1)  # type: ignore[union-attr]
    again = http.post("/ui/keys", data=form)   # what a reload sends
    assert again.status_code == 409
    assert f"This form was already submitted: key {key_id} was created" in again.text
    assert secret not in again.text and 'id="new-secret"' not in again.text
    named = [k for k in live.state.backend.store.list_virtual_keys(include_revoked=True) if k.name == "once-only"]
    assert [k.id for k in named] == [key_id]
    # the page after it has a new token: another key can be made from it
    more = http.post("/ui/keys", data={**form, "form_token": form_token_of(again.text)})
    assert more.status_code == 201

    # a token is good only in the session that rendered the form
    other = sign_in(live)
    other_page = other.get("/ui/keys").text
    stolen = other.post("/ui/keys", data={"csrf": csrf_of(other_page), "form_token": form["form_token"],
                                          "name": "stolen"})
    assert stolen.status_code == 400 and "submission token" in stolen.text
    missing = other.post("/ui/keys", data={"csrf": csrf_of(other_page), "name": "no-token"})
    assert missing.status_code == 400
    assert not [k for k in live.state.backend.store.list_virtual_keys() if k.name in ("stolen", "no-token")]
