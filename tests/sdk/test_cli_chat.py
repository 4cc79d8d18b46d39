"""``cloverleaf chat``'s choices and flags: which model a flag picks, which values a flag takes,
what a prompt on stdin may hold, and what is printed for a structured answer."""

from __future__ import annotations

import json

import pytest

from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse
from .upstream import Reply


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


def test_a_list_schema_prints_the_array_not_the_wire_wrapper(tmp_path, capsys):
    """A top-level array travels as {"items": [...]}: that wrapper was printed, streamed or not."""
    schema = tmp_path / "list.json"
    schema.write_text(json.dumps({"type": "array", "items": {"type": "string"}}))
    for mode in ([], ["--no-stream"]):
        assert main(["chat", "-m", "fake/chat", *mode, "--schema", str(schema), "three colours"]) == 0
        value = json.loads(capsys.readouterr().out)
        assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), mode


def test_streamed_reasoning_ends_its_line_before_the_summary(capsys):
    assert main(["chat", "-m", "fake/chat", "-v", "--reasoning", "high", "three colours"]) == 0
    err = capsys.readouterr().err
    assert "Thinking about: three colours\n[fake/chat] latency" in err


def _chunk(text: str) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m1",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(event)}\n\n".encode()


def test_a_stream_cut_mid_answer_still_ends_the_output_line(tmp_path, upstream, capsys):
    upstream.queue(Reply(200, headers={"content-type": "text/event-stream"},
                         chunks=[_chunk("half an"), _chunk(" answer"), _chunk(" never sent")], reset_after_chunks=2))
    config = tmp_path / "c.toml"
    config.write_text(f'[defaults]\nmax_retries = 0\n[providers.mylab]\nkind = "openai"\n'
                      f'base_url = "{upstream.url}/v1"\n')
    assert main(["--config", str(config), "chat", "-m", "mylab/m1", "hi"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "half an answer\n" and "error:" in captured.err


def test_structured_output_on_a_provider_that_cannot_stream_it_suggests_no_stream(monkeypatch, capsys):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_key_123")
    with pytest.raises(SystemExit, match="pass --no-stream"):
        main(["chat", "-m", "groq/llama-3.1-8b-instant", "--json", "hi"])
