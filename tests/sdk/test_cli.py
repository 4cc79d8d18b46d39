"""The `cloverleaf` command through its entry point (in-process, and once as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cloverleaf.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY",
                "OPENROUTER_API_KEY", "MISTRAL_API_KEY", "TOGETHER_API_KEY", "DEEPSEEK_API_KEY", "CLOVERLEAF_MODEL",
                "CLOVERLEAF_CONFIG", "CLOVERLEAF_BACKEND", "CLOVERLEAF_EMBEDDING_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_chat_with_nothing_configured_uses_fake_and_says_so(capsys):
    assert main(["chat", "hello there"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "hello there" and "fake/echo" in err


def test_chat_reads_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert main(["chat", "-m", "fake/echo", "--no-stream"]) == 0
    assert capsys.readouterr().out.strip() == "from stdin"


def test_chat_verbose_reports_latency_tokens_cost(capsys):
    assert main(["chat", "-m", "fake/echo", "-v", "count me"]) == 0
    err = capsys.readouterr().err
    assert "latency" in err and "tokens in" in err and "cost $" in err


def test_chat_json_schema_file(tmp_path, capsys):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}))
    assert main(["chat", "-m", "fake/x", "--schema", str(schema), "--no-stream", "answer"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out)["ok"], bool)


def test_dry_run_prints_the_request_with_secrets_redacted(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    assert main(["chat", "-m", "openai/gpt-4o-mini", "--dry-run", "--max-tokens", "7", "hi"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("POST https://api.openai.com/v1/chat/completions")
    assert "sk-very-secret-123" not in out and "<redacted>" in out
    body = json.loads(out.split("\n\n", 1)[1])
    assert body["model"] == "gpt-4o-mini" and body["messages"][-1]["content"] == "hi"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}   # chat streams by default


def test_dry_run_shows_the_request_chat_would_send_streamed_or_not(monkeypatch, capsys):
    """Gemini streams from another method than it answers whole: the dry run follows --no-stream."""
    monkeypatch.setenv("GEMINI_API_KEY", "gm-secret")
    assert main(["chat", "-m", "gemini/gemini-2.5-flash", "--dry-run", "hi"]) == 0
    assert ":streamGenerateContent" in capsys.readouterr().out.splitlines()[0]
    assert main(["chat", "-m", "gemini/gemini-2.5-flash", "--dry-run", "--no-stream", "hi"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(":generateContent") and "gm-secret" not in first
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert main(["chat", "-m", "openai/gpt-4o-mini", "--dry-run", "--no-stream", "hi"]) == 0
    assert "stream" not in json.loads(capsys.readouterr().out.split("\n\n", 1)[1])


def test_missing_key_names_the_variable(capsys):
    assert main(["chat", "-m", "anthropic/claude-haiku-4-5", "hi"]) == 1
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_unknown_provider_lists_known_ones(capsys):
    assert main(["chat", "-m", "nosuch/model", "hi"]) == 1
    err = capsys.readouterr().err
    assert "unknown provider 'nosuch'" in err and "anthropic" in err


def test_providers_prints_the_matrix(capsys):
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    assert "provider" in out and "anthropic" in out and "embeddings" in out


def test_models_lists_prices_and_recommendations(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-4o-mini" in out and "$0.15" in out and "Recommendations by use" in out
    assert main(["models", "--use", "local"]) == 0
    assert "ollama/" in capsys.readouterr().out


def test_embed_similarity_offline(capsys):
    assert main(["embed", "--similarity", "the cat sat", "the cat sat down", "stock markets fell"]) == 0
    out = capsys.readouterr().out
    assert "cosine" in out and out.count("\n") >= 4


def test_image_writes_a_png(tmp_path, capsys):
    out = tmp_path / "img.png"
    assert main(["image", "a red square", "-m", "fake/img", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_entry_point_runs_as_a_process():
    r = subprocess.run([sys.executable, "-m", "cloverleaf", "chat", "-m", "fake/echo", "ping"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ping"
    r = subprocess.run([sys.executable, "-m", "cloverleaf", "chat", "--help"], capture_output=True, text=True)
    assert "--dry-run" in r.stdout and "--attach" in r.stdout


MEDIA = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "media"


def test_attach_sends_the_file_to_the_model(capsys):
    png = MEDIA / "image.png"
    assert main(["chat", "-m", "fake/echo", "--no-stream", "--attach", str(png), "--attach", str(MEDIA / "document.pdf"),
                 "describe"]) == 0
    assert capsys.readouterr().out.strip() == "describe"


def test_attach_dry_run_shows_the_encoded_part(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["chat", "-m", "openai/gpt-4o-mini", "--dry-run", "--attach", str(MEDIA / "image.png"), "what?"]) == 0
    body = json.loads(capsys.readouterr().out.split("\n\n", 1)[1])
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_attach_refusal_is_a_clear_error(capsys, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("just text")
    assert main(["chat", "-m", "fake/echo", "--attach", str(bogus), "x"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "just text" not in err


def test_doctor_names_keys_and_the_http_client_but_never_a_secret(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctor-SECRET-123")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    main(["doctor"])
    out = capsys.readouterr().out
    assert "openai           set via OPENAI_API_KEY" in out
    assert "sk-doctor-SECRET-123" not in out
    assert "http client h1 for async calls (httptools is installed and no proxy is set)" in out
    assert "httptools" in out.split("extras:", 1)[1] and "orjson" in out.split("extras:", 1)[1]


def test_config_is_accepted_after_every_subcommand_that_reads_it(tmp_path, capsys):
    """`cloverleaf serve --config FILE` as the README writes it, and the global form, for each command."""
    from cloverleaf.cli import COMMANDS, NO_CONFIG, build_parser

    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[defaults]\nmodel = "fake/from-config"\n')
    parser = build_parser()
    for command in set(COMMANDS) - NO_CONFIG:
        tail = {"chat": ["hi"], "embed": ["a"], "image": ["cat", "-o", "x.png"], "run": ["flow.yaml"]}.get(command, [])
        assert parser.parse_args([command, "--config", str(cfg), *tail]).config == str(cfg), command
        assert parser.parse_args(["--config", str(cfg), command, *tail]).config == str(cfg), command
    args = parser.parse_args(["serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", "4100", "--workers", "2"])
    assert (args.config, args.port, args.workers) == (str(cfg), 4100, 2)
    assert main(["chat", "--config", str(cfg), "-v", "--no-stream", "which model?"]) == 0
    assert "fake/from-config" in capsys.readouterr().err


def test_keys_url_is_accepted_before_and_after_the_action():
    from cloverleaf.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["keys", "create", "--url", "http://127.0.0.1:9", "--name", "n"]).url == "http://127.0.0.1:9"
    assert parser.parse_args(["keys", "--url", "http://127.0.0.1:8", "list"]).url == "http://127.0.0.1:8"
    assert parser.parse_args(["keys", "revoke", "key_1", "--url", "http://127.0.0.1:7"]).url == "http://127.0.0.1:7"


def test_embed_with_a_provider_name_uses_its_default_embedding_model(monkeypatch, capsys):
    monkeypatch.setenv("CLOVERLEAF_BACKEND", "fake")
    for provider in ("openai", "ollama", "gemini", "mistral", "bedrock"):
        assert main(["embed", "-m", provider, "a b c"]) == 0, provider
        assert json.loads(capsys.readouterr().out.splitlines()[0])["dimensions"] > 0


def test_models_lists_embedding_defaults_openrouter_prices_and_no_fake_for_private_work(capsys):
    assert main(["models", "--use", "embeddings"]) == 0
    out = capsys.readouterr().out
    for model in ("openai/text-embedding-3-small", "ollama/nomic-embed-text", "gemini/gemini-embedding-001",
                  "mistral/mistral-embed", "bedrock/amazon.titan-embed-text-v2:0"):
        assert model in out, model
    assert main(["models", "--provider", "openrouter"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("openrouter/")]
    assert len(rows) >= 5 and all("$" in row for row in rows)
    assert main(["models", "--use", "local"]) == 0
    assert "fake/" not in capsys.readouterr().out
    assert main(["models"]) == 0
    private = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("local/private"))
    assert "fake" not in private


def test_user_mistakes_get_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Each of these used to end in a Python traceback."""
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "sk-master-test-0123456789")
    for out in (tmp_path / "missing" / "x.png", tmp_path):        # no such folder; a folder, not a file
        with pytest.raises(SystemExit, match="cannot write .*give -o a file path"):
            main(["image", "-m", "fake/img", "-o", str(out), "a cat"])
    with pytest.raises(SystemExit, match="needs its scheme: http://127.0.0.1:4710"):
        main(["keys", "--url", "127.0.0.1:4710", "list"])
    # the admin API's own rules and words (server/key_fields.py), naming the option
    for budget, said in (("nan", "must be a finite number"), ("1e309", "must be a finite number"),
                         ("-1", "must be at least 0")):
        with pytest.raises(SystemExit):
            main(["keys", "create", "--name", "x", "--budget", budget])
        assert f"--budget: {said}" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    for line in ('timeout = "abc"', "first_byte_timeout = 0", "max_retries = -1", "idle_timeout = true"):
        bad.write_text(f"[defaults]\n{line}\n")
        assert main(["--config", str(bad), "chat", "-m", "fake/echo", "hi"]) == 1
        assert "[defaults]" in capsys.readouterr().err


def test_dry_run_on_a_route_shows_its_first_targets_request(tmp_path, monkeypatch, capsys):
    config = tmp_path / "r.toml"
    config.write_text('[routes.smart]\ntargets = [{ model = "openai/gpt-4o-mini", base_url = "http://127.0.0.1:9/v1", '
                      'api_key_env = "MY_KEY" }, "fake/echo"]\n')
    monkeypatch.setenv("MY_KEY", "sk-route-secret")
    assert main(["--config", str(config), "chat", "-m", "smart", "--dry-run", "hi"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("POST http://127.0.0.1:9/v1/chat/completions")
    assert "first target, openai/gpt-4o-mini" in captured.err and "sk-route-secret" not in captured.out


def test_models_of_an_unknown_provider_is_a_usage_error(tmp_path, capsys):
    """`models --provider opnai` printed an empty table and exited 0, as if it had no models."""
    with pytest.raises(SystemExit) as exited:
        main(["models", "--provider", "opnai"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert "unknown provider 'opnai'; known providers: " in err and "openai," in err
    config = tmp_path / "c.toml"   # a provider of the configuration is known, models of its own or not
    config.write_text('[providers.mylab]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    assert main(["models", "--config", str(config), "--provider", "mylab"]) == 0


def test_keys_help_says_where_the_master_key_and_the_server_come_from(capsys):
    """Nothing in `keys --help` named CLOVERLEAF_MASTER_KEY: the error after a try was the only place."""
    with pytest.raises(SystemExit) as exited:
        main(["keys", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0 and "CLOVERLEAF_MASTER_KEY" in text and "CLOVERLEAF_URL" in text
