"""Run the code blocks of a user-facing Markdown page, in order, as a user would.

What runs (the fence's language decides):

- ``python``/``py``: a fresh interpreter, in the page's working directory;
- ``bash``/``sh``/``shell``: ``bash -euo pipefail``; ``cloverleaf`` is this checkout's CLI, and a
  ``cloverleaf serve ...`` line starts the server in the background on a free port, waits until it
  answers, and leaves it running for the blocks after it (a later ``cloverleaf serve`` replaces
  it; the last one is stopped when the page is done). Variables a block exports reach the blocks
  after it;
- ``toml``: added to ``cloverleaf.toml`` in the working directory (where ``--config
  cloverleaf.toml`` finds it), the way a reader adds each section the page shows to one file, and
  checked: the file loads as written, every table and key of it exists.

Every block runs offline: ``CLOVERLEAF_BACKEND=fake`` sends every model call to the fake provider,
no provider key is in the environment, and the documented port ``4000`` (``:4000``, ``--port 4000``)
is replaced by the free port the page's server got; ``CLOVERLEAF_URL`` points at it.

Markers: an HTML comment right above a block (blank lines between are fine), one directive each:

- ``<!-- readme-test: skip REASON -->`` — the block is not run; the reason is required and
  should say why it cannot run offline or in a test (and where it is covered instead);
- ``<!-- readme-test: file NAME -->`` — a block to write to NAME (relative to the working
  directory) instead of running it; a ``toml`` block is checked as configuration all the same;
- ``<!-- readme-test: replace OLD => NEW -->`` — run the block with OLD replaced by NEW (for a
  placeholder such as ``KEY_ID`` that only the run can know; NEW may be a shell expression);
- ``<!-- readme-test: continues -->`` — a python block that goes on from the python block before
  it (uses its ``client``, say): it runs after that block's code, in the same interpreter.

A block in any other language (``text``, ``json``, none) is shown, not run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import unused_port

RUNNABLE = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash", "toml": "toml"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<verb>[a-z-]+)\s*(?P<rest>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)[^`]*$")
DOCUMENTED_PORT = "4000"
BLOCK_TIMEOUT = 120.0
SERVER_WAIT = 60.0


@dataclass
class Block:
    doc: Path
    line: int                      # 1-based line of the opening fence
    lang: str                      # the fence's info string, lowercased
    code: str
    skip: str | None = None
    file: str | None = None
    replace: list[tuple[str, str]] = field(default_factory=list)
    continues: bool = False

    @property
    def kind(self) -> str | None:
        return RUNNABLE.get(self.lang)

    def where(self) -> str:
        return f"{self.doc.name}:{self.line} ({self.lang} block)"


class MarkerError(ValueError):
    """A malformed ``readme-test`` marker."""


def extract(doc: Path) -> list[Block]:
    """Every fenced block of ``doc`` with the markers right above it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, start = m.group("fence"), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i])
            i += 1
        block = Block(doc, start + 1, m.group("info").lower(), "\n".join(body) + "\n")
        _apply_markers(block, lines, start)
        blocks.append(block)
        i += 1
    return blocks


def _apply_markers(block: Block, lines: list[str], fence_at: int) -> None:
    j = fence_at - 1
    while j >= 0 and (not lines[j].strip() or MARKER.match(lines[j].strip())):
        m = MARKER.match(lines[j].strip())
        j -= 1
        if m is None:
            continue
        verb, rest = m.group("verb"), m.group("rest")
        where = f"{block.doc.name}:{j + 2}"
        if verb == "skip":
            if len(rest) < 10:
                raise MarkerError(f"{where}: `readme-test: skip` needs a reason (why the block cannot run "
                                  "offline, and where it is covered instead)")
            block.skip = rest
        elif verb == "file":
            if not rest or rest.startswith(("/", "..")):
                raise MarkerError(f"{where}: `readme-test: file NAME` needs a relative file name")
            block.file = rest
        elif verb == "continues":
            block.continues = True
        elif verb == "replace":
            old, sep, new = rest.partition("=>")
            if not sep or not old.strip():
                raise MarkerError(f"{where}: `readme-test: replace OLD => NEW`")
            block.replace.append((old.strip(), new.strip()))
        else:
            raise MarkerError(f"{where}: unknown readme-test directive {verb!r} (skip, file, replace, continues)")


_PORT = re.compile(r"(?<=:)" + DOCUMENTED_PORT + r"\b|(?<=--port )" + DOCUMENTED_PORT + r"\b")
_SERVE_BACKGROUND = re.compile(r"^(\s*cloverleaf\s+serve\b[^#&]*?)\s*&\s*(#.*)?$", re.MULTILINE)

_BASH_PRELUDE = r"""
cloverleaf() {
  if [ "${1:-}" = serve ]; then shift; __readme_serve "$@"; else "$READMETEST_PYTHON" -m cloverleaf "$@"; fi
}
__readme_serve() {  # start `cloverleaf serve` in the background and wait until it accepts connections
  __readme_stop
  "$READMETEST_PYTHON" -m cloverleaf serve "$@" </dev/null >"$READMETEST_DIR/server.log" 2>&1 &
  echo $! >"$READMETEST_DIR/.server.pid"
  local deadline=$((SECONDS + READMETEST_SERVER_WAIT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$READMETEST_PORT") 2>/dev/null; do
    if ! kill -0 "$(cat "$READMETEST_DIR/.server.pid")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "cloverleaf serve did not start; its log:" >&2; cat "$READMETEST_DIR/server.log" >&2; return 1
    fi
    sleep 0.1
  done
}
__readme_stop() {
  [ -f "$READMETEST_DIR/.server.pid" ] || return 0
  local pid; pid="$(cat "$READMETEST_DIR/.server.pid")"; rm -f "$READMETEST_DIR/.server.pid"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
"""

#: Variables a bash block leaves behind that are the shell's own, not the block's.
_SHELL_VARS = {"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"}


class PageRun:
    """One page's blocks, run in order in one working directory with one environment."""

    def __init__(self, workdir: Path, base_env: dict[str, str]) -> None:
        self.dir = workdir
        self.port = unused_port()
        self._last_python = ""  # the code the last python block ran (for a block that continues it)
        self.env = dict(base_env)
        self.env.update({
            "CLOVERLEAF_BACKEND": "fake",
            "CLOVERLEAF_URL": f"http://127.0.0.1:{self.port}",
            "READMETEST_PYTHON": sys.executable,
            "READMETEST_DIR": str(workdir),
            "READMETEST_PORT": str(self.port),
            "READMETEST_SERVER_WAIT": str(int(SERVER_WAIT)),
            "HOME": str(workdir),
        })

    def run(self, block: Block) -> None:
        code = _PORT.sub(str(self.port), block.code)
        for old, new in block.replace:
            code = code.replace(old, new)
        if block.file is not None or block.kind == "toml":
            path = self.dir / (block.file or "cloverleaf.toml")
            path.parent.mkdir(parents=True, exist_ok=True)
            if block.file is None and path.exists():  # the page's tables accumulate in one file
                code = path.read_text(encoding="utf-8") + "\n" + code
            path.write_text(code, encoding="utf-8")
            if block.kind == "toml":
                check_config(path, block)
            return
        if block.kind == "python":
            if block.continues:
                if not self._last_python:
                    raise MarkerError(f"{block.where()}: `readme-test: continues` but no python block ran before it")
                code = self._last_python + "\n# --- continued ---\n" + code
            self._last_python = code
            script = self.dir / f"block_{block.line}.py"
            script.write_text(code, encoding="utf-8")
            self._exec([sys.executable, str(script)], block)
        elif block.kind == "bash":
            code = _SERVE_BACKGROUND.sub(r"\1 \2", code)  # the runner backgrounds it and waits for it
            env_out = self.dir / ".env-after"
            script = self.dir / f"block_{block.line}.sh"
            script.write_text(f"{_BASH_PRELUDE}\n{code}\nenv -0 > {str(env_out)!r}\n", encoding="utf-8")
            self._exec(["bash", "-euo", "pipefail", str(script)], block)
            self._take_exports(env_out)

    def _exec(self, argv: list[str], block: Block) -> None:
        try:
            out = subprocess.run(argv, cwd=self.dir, env=self.env, capture_output=True, text=True,
                                 timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{block.where()} did not finish within {BLOCK_TIMEOUT:.0f} s:\n"
                                 f"{exc.stdout}\n{exc.stderr}") from None
        if out.returncode != 0:
            log = self.dir / "server.log"
            server = f"\n--- server log ---\n{log.read_text()[-3000:]}" if log.exists() else ""
            raise AssertionError(f"{block.where()} failed (exit {out.returncode}):\n--- block ---\n{block.code}"
                                 f"--- stdout ---\n{out.stdout[-3000:]}\n--- stderr ---\n{out.stderr[-5000:]}"
                                 f"{server}")

    def _take_exports(self, env_out: Path) -> None:
        if not env_out.exists():
            return
        for item in env_out.read_bytes().split(b"\0"):
            name, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep and name not in _SHELL_VARS and not name.startswith(("BASH_", "READMETEST_")):
                self.env[name] = value
        env_out.unlink()

    def close(self) -> None:
        """Stop the page's server (the one process a block left running, by its pid)."""
        pidfile = self.dir / ".server.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text().strip())
        pidfile.unlink()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def check_config(path: Path, block: Block) -> None:
    """The TOML loads as cloverleaf.toml, gateway tables included (a typo is an error that says so)."""
    from cloverleaf._config import Settings
    from cloverleaf._errors import ConfigError
    from cloverleaf.gateway.config import parse

    try:
        parse(Settings.load(path, env={}))
    except ConfigError as exc:
        raise AssertionError(f"{block.where()} is not a valid cloverleaf.toml: {exc}") from None


def offline_env() -> dict[str, str]:
    """This process's environment without provider credentials or a config of the developer's."""
    drop = re.compile(r".*_API_KEY$|^AWS_(ACCESS|SECRET|SESSION|PROFILE|BEARER)|^CLOVERLEAF_(?!TEST_)")
    return {k: v for k, v in os.environ.items() if not drop.match(k)}
