"""``cloverleaf serve`` as a child process, for the tests that need the real command: several
workers, replicas sharing a store, signals, the start-up output.

Starting it, waiting until it answers and reading what it printed once stopped were written out
again in each such module; here they are once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def serve(tmp_path: Path, config: Path, *flags: str, env: dict[str, str] | None = None,
          own_session: bool = False) -> subprocess.Popen[str]:
    """``cloverleaf --config CONFIG serve FLAGS`` in ``tmp_path``, with none of the caller's
    ``CLOVERLEAF_*`` variables (``env`` adds the ones the test means) and its data folder there
    (``own_session``: its own process group, for a signal to all of it)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    child_env.update({"XDG_DATA_HOME": str(tmp_path), **(env or {})})
    return subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(config), "serve", *flags],
                            env=child_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=own_session)


def wait_until_up(proc: subprocess.Popen[str], url: str, probe: str = "/health") -> None:
    """Until ``url + probe`` answers 200; fails with the server's output if it exits first, and
    after a minute."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, f"{url} did not come up"
        time.sleep(0.2)


def stopped_output(proc: subprocess.Popen[str]) -> str:
    """What the server printed, once it has been asked to stop (and killed if it would not)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]
