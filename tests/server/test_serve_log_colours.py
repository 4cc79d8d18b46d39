"""``cloverleaf serve``'s log is coloured only where colour belongs: on a terminal, unless
``NO_COLOR`` is set. uvicorn looked at stdout, while the log goes to stderr."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tests.ports import unused_port

READY = "Application startup complete"


def _serve(tmp_path: Path, stdout: int, stderr: int | IO[bytes], **env: str) -> subprocess.Popen[bytes]:
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/serve.db"\n')
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_") and k != "NO_COLOR"}
    return subprocess.Popen([sys.executable, "-m", "cloverleaf", "serve", "--config", str(config), "--port",
                             str(unused_port())], env={**base, "XDG_DATA_HOME": str(tmp_path), **env},
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _until_ready(text_so_far: Callable[[], str], proc: subprocess.Popen[bytes]) -> str:
    """What the server logged up to its start-up line."""
    deadline = time.monotonic() + 60
    while READY not in (text := text_so_far()):
        assert proc.poll() is None, text
        assert time.monotonic() < deadline, f"no start-up line: {text!r}"
        time.sleep(0.05)
    return text


def test_a_log_redirected_to_a_file_from_a_terminal_has_no_escape_codes(tmp_path: Path) -> None:
    """`cloverleaf serve 2> server.log` in a terminal: stdout is the terminal, the log a file."""
    main, terminal = pty.openpty()
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        proc = _serve(tmp_path, terminal, err)
    os.close(terminal)
    try:
        text = _until_ready(lambda: log.read_text(errors="replace"), proc)
    finally:
        _stop(proc)
        os.close(main)
    assert "Started server process" in text and "\x1b[" not in text


def test_no_color_turns_colour_off_on_a_terminal(tmp_path: Path) -> None:
    main, terminal = pty.openpty()
    proc = _serve(tmp_path, terminal, terminal, NO_COLOR="1")
    os.close(terminal)

    seen: list[str] = []

    def text_so_far() -> str:
        ready, _, _ = select.select([main], [], [], 0.2)
        try:
            seen.append(os.read(main, 65536).decode(errors="replace") if ready else "")
        except OSError:   # the terminal closed: the server is gone (the caller says so)
            pass
        return "".join(seen)

    try:
        text = _until_ready(text_so_far, proc)
    finally:
        _stop(proc)
        os.close(main)
    assert "Started server process" in text and "\x1b[" not in text
