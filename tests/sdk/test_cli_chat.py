"""``cloverleaf chat``'s choices and flags: which model a flag picks, which values a flag takes,
what a prompt on stdin may hold, and what is printed for a structured answer."""

from __future__ import annotations

import pytest

from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse


def _first_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.splitlines()[0]


def test_provider_flag_wins_over_a_default_model_of_another_provider(monkeypatch, capsys):
    """CLOVERLEAF_MODEL=openai/... and --provider anthropic sent the prompt to OpenAI."""
    monkeypatch.setenv("CLOVERLEAF_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-o")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-a")
    assert main(["chat", "--provider", "anthropic", "--dry-run", "hello"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("POST https://api.anthropic.com/")
    assert "anthropic/claude-haiku-4-5" in captured.err
    assert main(["chat", "--provider", "openai", "--dry-run", "hello"]) == 0   # the default is openai's: kept
    assert _first_line(capsys) == "POST https://api.openai.com/v1/chat/completions"


def test_provider_flag_without_a_default_of_its_own_asks_for_a_model(monkeypatch, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[defaults]\nmodel = "openai/gpt-4o-mini"\n[providers.mylab]\nkind = "openai"\n'
                      'base_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(SystemExit, match=r"--provider mylab needs -m MODEL .*openai/gpt-4o-mini"):
        main(["--config", str(config), "chat", "--provider", "mylab", "--dry-run", "hello"])
    assert main(["--config", str(config), "chat", "--provider", "mylab", "-m", "llama", "--dry-run", "hi"]) == 0
    assert _first_line(capsys) == "POST http://127.0.0.1:9/v1/chat/completions"
