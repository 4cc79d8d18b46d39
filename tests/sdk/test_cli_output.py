"""The `cloverleaf` command's output as a pipeline sees it: a reader that stops early, and usage
errors that keep stdout clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cloverleaf
from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse

#: The sources the tests import, for the command run as a process.
SOURCES = Path(cloverleaf.__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    ["models"],
    ["providers", "--markdown"],
    ["--help"],
    ["chat", "-m", "fake/echo", "hello"],
    ["chat", "--no-stream", "-m", "fake/echo", "hello"],
    ["embed", "-m", "simple", "one", "two"],
])
def test_a_reader_that_stops_early_ends_the_command_quietly(argv, tmp_path):
    """`cloverleaf models | head -1`: stdout's pipe closes before the command writes. Python
    printed "Exception ignored ... BrokenPipeError" on stderr and exited with 120."""
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("PYTHONUNBUFFERED", None)        # stdout buffered, as a user's is: the failure was at its flush
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()                      # the reader is gone before a byte is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_no_command_is_a_usage_error_with_the_help_on_stderr(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: cloverleaf" in err and "COMMAND" in err


def test_a_failed_command_keeps_its_status_when_the_reader_stopped_early(tmp_path):
    """`cloverleaf doctor | head -1` on a broken configuration: doctor printed its report, found
    the problem and returned 1, but the flush of its output into the closed pipe turned that into
    0, the status of a healthy setup. A reader stopping early ends the output, not the verdict."""
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(bad), "doctor"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, err
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_an_error_exit_keeps_its_status_when_the_reader_stopped_early(tmp_path, upstream):
    """The same for a command that stops with an error message after printing: `image -n 2`
    wrote its first file, could not write the second (a folder of that name) and said so; with
    the reader gone, its status was 0."""
    import base64
    import json

    from .upstream import Reply

    png = base64.b64encode(b"\x89PNG\r\n\x1a\nnew").decode()
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"b64_json": png}] * 2}).encode()))
    (tmp_path / "cat-2.png").mkdir()
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n')
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(config), "image", "a cat", "-n", "2",
                             "--force", "-m", "mylab/gpt-image-1", "-o", str(tmp_path / "cat.png")], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, err
    assert (tmp_path / "cat-1.png").exists() and "cannot write" in err
    assert "Traceback" not in err and "Exception ignored" not in err
