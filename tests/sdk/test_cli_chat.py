"""``cloverleaf chat``'s choices and flags: which model a flag picks, which values a flag takes,
what a prompt on stdin may hold, and what is printed for a structured answer."""

from __future__ import annotations

import json
import subprocess
import sys

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


@pytest.mark.parametrize("flags", [["--max-tokens", "-1"], ["--max-tokens", "0"], ["--max-tokens", "ten"],
                                   ["-t", "nan"], ["-t", "inf"], ["-t", "-0.5"]])
def test_numeric_flags_out_of_range_are_refused_before_anything_is_built(flags, capsys):
    """--max-tokens -1 was sent upstream as is; -t nan went out as "temperature": null."""
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "-m", "fake/echo", *flags, "--dry-run", "hi"])
    assert exit_info.value.code == 2
    assert "expected a" in capsys.readouterr().err


def test_numeric_flags_in_range_are_sent(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-o")
    assert main(["chat", "-m", "openai/gpt-4o-mini", "--max-tokens", "5", "-t", "0", "--dry-run", "hi"]) == 0
    body = json.loads(capsys.readouterr().out.split("\n\n", 1)[1])
    assert body["max_tokens"] == 5 and body["temperature"] == 0


def test_other_commands_numeric_flags_are_checked_too(monkeypatch, capsys):
    from cloverleaf.cli import build_parser

    parser = build_parser()
    for argv in (["serve", "--port", "70000"], ["serve", "--port", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    # keys create checks its body by the admin API's rules (server/key_fields.py) before sending:
    # refused in the API's words, naming the option, with nothing sent (no server listens there)
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", "sk-master-test-0123456789")
    for option, value in (("--rpm", "0"), ("--tpm", "-5")):
        with pytest.raises(SystemExit) as exited:
            main(["keys", "create", "--name", "n", option, value, "--url", "http://127.0.0.1:50549"])
        assert exited.value.code == 2 and f"{option}: must be at least 1" in capsys.readouterr().err


def test_a_prompt_on_stdin_that_is_not_utf8_is_refused_before_anything_is_sent(tmp_path, upstream):
    """It failed as "mylab 400 ... surrogates not allowed", blaming the provider, nothing sent."""
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n')
    r = subprocess.run([sys.executable, "-m", "cloverleaf", "--config", str(config), "chat", "-m", "mylab/m1"],
                       input=b"caf\xe9 au lait\n", capture_output=True, timeout=60)
    assert r.returncode == 1 and upstream.seen == []
    err = r.stderr.decode()
    assert "the prompt on stdin is not UTF-8 text (byte 3: 0xe9)" in err and "400" not in err
    r = subprocess.run([sys.executable, "-m", "cloverleaf", "chat", "-m", "fake/echo", "--no-stream"],
                       input="café ☕\n".encode(), capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.decode().strip() == "café ☕"


def test_a_prompt_argument_that_is_not_utf8_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["chat", "-m", "fake/echo", "caf\udce9"])
    assert exited.value.code == 2 and "the prompt argument is not UTF-8 text" in capsys.readouterr().err


def test_an_empty_prompt_is_a_usage_error_as_an_argument_as_on_stdin(tmp_path, upstream):
    """`chat ""` (a `"$PROMPT"` left unset) was sent to the model, while empty stdin was refused;
    both are usage errors now (status 2, as argparse's), and nothing is sent."""
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n')
    chat = [sys.executable, "-m", "cloverleaf", "--config", str(config), "chat", "-m", "mylab/m1"]
    for extra, stdin, said in (([""], b"", "the prompt argument is empty"), ([" \n"], b"", "the prompt argument is empty"),
                               ([], b"  \n", "the prompt on stdin is empty")):
        r = subprocess.run([*chat, *extra], input=stdin, capture_output=True, timeout=60)
        assert r.returncode == 2 and said in r.stderr.decode() and "Traceback" not in r.stderr.decode(), extra
    assert upstream.seen == []
