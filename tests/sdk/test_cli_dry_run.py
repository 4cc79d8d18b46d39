"""``cloverleaf chat --dry-run`` prints the request "with secrets redacted", as README says: the
key, a base_url's password and every configured header value, wherever they would appear."""

from __future__ import annotations

import base64

from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse


def test_dry_run_redacts_the_base_urls_password_and_configured_header_values(tmp_path, monkeypatch, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[providers.mylab]\nkind = "openai"\nbase_url = "http://admin:hunter2pass@127.0.0.1:9/v1"\n'
                      'api_key_env = "MYLAB_KEY"\n'
                      'headers = {"cf-aig-authorization" = "Bearer cf-secret-token", "X-Tenant" = "tenant-7781"}\n')
    monkeypatch.setenv("MYLAB_KEY", "sk-mylab-key")
    assert main(["--config", str(config), "chat", "-m", "mylab/llama", "--dry-run", "hi"]) == 0
    out = capsys.readouterr().out
    basic = base64.b64encode(b"admin:hunter2pass").decode()
    for secret in ("hunter2pass", basic, "cf-secret-token", "tenant-7781", "sk-mylab-key"):
        assert secret not in out, secret
    head = out.split("\n\n", 1)[0].splitlines()
    assert head[0] == "POST http://admin:<redacted>@127.0.0.1:9/v1/chat/completions"
    assert "cf-aig-authorization: <redacted>" in head and "X-Tenant: <redacted>" in head   # names stay


def test_dry_run_keeps_a_query_but_not_a_key_in_it(tmp_path, monkeypatch, capsys):
    from cloverleaf.cli.chat import shown_url

    assert shown_url("https://h.example/v1/m:streamGenerateContent?alt=sse&key=AIzaSECRET") == \
        "https://h.example/v1/m:streamGenerateContent?alt=sse&key=<redacted>"
    assert shown_url("https://tok3n@h.example/v1") == "https://<redacted>@h.example/v1"
    # every credential name, as the admin API masks them; the rest of the query as written
    assert shown_url("https://h.example/openai/v1?api-version=2024-10-21&api-key=AZ1&password=PW2&x=a%20b") == \
        "https://h.example/openai/v1?api-version=2024-10-21&api-key=<redacted>&password=<redacted>&x=a%20b"

