"""``cloverleaf keys create|update`` against the admin API's fields: every field has its option
(``--budget-period``, ``--metadata``, ``--expires-at`` and ``--expires-in-seconds`` were
missing), and a value is refused by the same rules in the same words as ``POST``/``PATCH
/admin/keys`` (the CLI had rules of its own: ``--rpm 1.5`` said "expected a whole number",
``--budget 2e12`` went to the server), naming the option where the API names the field."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from .conftest import MASTER, Live, create_key

#: (the CLI's options, the same values as the admin API's body)
SAME_VALUES: list[tuple[list[str], dict[str, Any]]] = [
    (["--rpm", "1.5"], {"rpm": 1.5}), (["--rpm", "0"], {"rpm": 0}), (["--tpm", "2000000000"], {"tpm": 2_000_000_000}),
    (["--budget", "2e12"], {"budget": 2e12}), (["--budget", "-1"], {"budget": -1}),
    (["--budget-period", "week"], {"budget_period": "week"}), (["--metadata", "[1]"], {"metadata": [1]}),
    (["--metadata", json.dumps({"x": "y" * 20_000})], {"metadata": {"x": "y" * 20_000}}),
    (["--expires-in-seconds", "0"], {"expires_in_seconds": 0}), (["--expires-in-days", "1e12"], {"expires_in_days": 1e12}),
    (["--name", " "], {"name": " "}),
]


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from cloverleaf.cli import main

    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2, argv
    return capsys.readouterr().err.strip().removeprefix("error: ")


def _as_options(message: str) -> str:
    """The API's message as the CLI words it: its fields named as options, and no clock reading."""
    for field, option in sorted({"allowed_models": "--models", "budget_period": "--budget-period",
                                 "expires_at": "--expires-at", "expires_in_seconds": "--expires-in-seconds",
                                 "expires_in_days": "--expires-in-days"}.items(), key=lambda p: -len(p[0])):
        message = message.replace(field, option)
    field, _, problem = message.partition(": ")
    return re.sub(r"\d{9,}", "T", f"{field if field.startswith('--') else '--' + field}: {problem}")


@pytest.mark.parametrize(("flags", "body"), SAME_VALUES)
def test_the_cli_refuses_what_the_api_refuses_in_its_words(secured_server: Live, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], flags: list[str],
                                                           body: dict[str, Any]) -> None:
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    key = create_key(secured_server, name="parity")
    with secured_server.http(MASTER) as http:
        created = http.post("/admin/keys", json={"name": "parity", **body})
        changed = http.patch(f"/admin/keys/{key['id']}", json=body)
    assert created.status_code == changed.status_code == 400, (created.text, changed.text)
    on_create = _cli_error(capsys, "keys", "--url", secured_server.url, "create", "--name", "parity", *flags)
    on_update = _cli_error(capsys, "keys", "--url", secured_server.url, "update", key["id"], *flags)
    assert re.sub(r"\d{9,}", "T", on_create) == _as_options(created.json()["error"]["message"])
    assert re.sub(r"\d{9,}", "T", on_update) == _as_options(changed.json()["error"]["message"])


def test_an_expiry_in_the_past_is_refused_on_create_as_the_api_refuses_it(secured_server: Live,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    with secured_server.http(MASTER) as http:
        api = http.post("/admin/keys", json={"name": "old", "expires_at": 978307200}).json()["error"]["message"]
    cli = _cli_error(capsys, "keys", "--url", secured_server.url, "create", "--name", "old", "--expires-at", "2001-01-01")
    assert re.sub(r"\d{9,}", "T", cli) == _as_options(api) and "--expires-in-days" in cli


def test_every_field_of_the_api_has_an_option_on_create_and_on_update(secured_server: Live,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`keys update` could not set a budget's period, a key's metadata (the admin role) or an
    exact expiry: those needed a hand-written PATCH."""
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    url = secured_server.url
    assert main(["keys", "--url", url, "create", "--name", "full", "--budget", "3", "--budget-period", "day",
                 "--metadata", '{"role": "admin"}', "--expires-at", "2030-01-01T00:00Z"]) == 0
    key_id = capsys.readouterr().out.split()[2]

    def shown() -> dict[str, Any]:
        with secured_server.http(MASTER) as http:
            return http.get(f"/admin/keys/{key_id}").json()  # type: ignore[no-any-return]

    key = shown()
    assert (key["budget"], key["budget_period"], key["metadata"], key["expires_at"]) == (
        3.0, "day", {"role": "admin"}, 1893456000.0)
    assert main(["keys", "--url", url, "update", key_id, "--budget-period", "month", "--metadata", '{"team": "a"}',
                 "--expires-in-seconds", "3600"]) == 0
    assert "budget $3.0 per month" in capsys.readouterr().out
    key = shown()
    assert key["budget_period"] == "month" and key["metadata"] == {"team": "a"} and key["expires_at"] is not None
    assert main(["keys", "--url", url, "update", key_id, "--budget-period", "none", "--metadata", "none",
                 "--expires-at", "none"]) == 0
    key = shown()
    assert (key["budget_period"], key["metadata"], key["expires_at"]) == (None, {}, None)
    for flags, said in ((["--metadata", "{oops"], "not valid JSON"), (["--expires-at", "tomorrow"], "2027-01-31"),
                        (["--expires-at", "1", "--expires-in-days", "2"], "not allowed with")):
        assert said in _cli_error(capsys, "keys", "--url", url, "update", key_id, *flags), flags


def test_the_cli_checks_its_options_where_only_the_sdk_is_installed(secured_server: Live) -> None:
    """`cloverleaf keys` talks to a server over HTTP, so it must run without the [server] extra:
    the shared rules import nothing from it."""
    code = ("import sys; sys.modules['sqlalchemy'] = sys.modules['starlette'] = sys.modules['uvicorn'] = None\n"
            "from cloverleaf.cli import main\n"
            f"main(['keys', '--url', {secured_server.url!r}, 'update', 'key_0123456789abcdef', '--rpm', '0'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"CLOVERLEAF_MASTER_KEY": MASTER, "PATH": "", **_python_env()})
    assert done.returncode == 2 and done.stderr.strip() == "error: --rpm: must be at least 1", done.stderr


def _python_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "LANG")}
