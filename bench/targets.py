"""The processes a benchmark run starts, and how to read their memory and CPU.

Three targets, one mock upstream:

- ``direct``: the load generator talks to the mock itself (the baseline every number is
  compared with);
- ``cloverleaf``: ``cloverleaf serve`` with a generated ``cloverleaf.toml`` whose providers
  point at the mock (``mock`` → instant, ``mock20`` → 20 ms);
- ``litellm``: the LiteLLM proxy from PyPI, in its own venv (``bench/.venv-litellm``), with a
  ``config.yaml`` whose models point at the mock through ``api_base``; no database.

Both gateways run with a master key (the way either would be deployed) and are pinned to
one core with ``taskset``; the mock and the load generator share the other core. Every
process is started here and stopped here by its own pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
PORTKEY_DIR = BENCH_DIR / ".venv-portkey"  # npm prefix for @portkey-ai/gateway (bench/run.sh installs it)
PORTKEY_SERVER = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
MASTER_KEY = "sk-bench-master-key-0123456789abcdef"
MOCK_MODEL = "mock-model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskset(core: str | None) -> list[str]:
    return ["taskset", "-c", core] if core is not None else []


@dataclass
class Target:
    """How to reach one target: for each upstream ("instant", "d20"), the chat URL and the
    model name to send."""

    name: str
    endpoints: dict[str, tuple[str, str]]
    api_key: str = MASTER_KEY
    #: extra request headers per upstream ("instant", "d20"), e.g. Portkey's custom host
    headers: dict[str, list[str]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    base: str = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        tree = process_tree(proc.pid)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for pid in tree[1:]:  # workers that outlived their parent
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def _stop_on_failure(proc: subprocess.Popen[bytes]) -> None:
    """A target that failed to come up is stopped here (the runner only stops targets it got)."""
    if proc.poll() is None:
        Target("failed", {}, process=proc).stop()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}; see {log_path}:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready within {timeout:.0f}s; see {log_path}")


def _start_on_mock_paths(name: str, cmd: list[str], port: int, log_path: Path, cwd: Path,
                         ready_timeout: float = 20) -> Target:
    """Start a process that serves the mock's own paths (the mock itself, or a plain relay in
    front of it) on ``port``, and wait until it answers."""
    proc = _spawn(cmd, log_path, dict(os.environ), cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/v1/models", proc, ready_timeout, log_path)
    except BaseException:
        _stop_on_failure(proc)
        raise
    return Target(name, {"instant": (f"{base}/v1/chat/completions", MOCK_MODEL),
                         "d20": (f"{base}/d20/v1/chat/completions", MOCK_MODEL)},
                  process=proc, log_path=log_path, base=base)


def start_mock(run_dir: Path, core: str | None) -> Target:
    port = free_port()
    return _start_on_mock_paths("direct", [*taskset(core), PYTHON, "-m", "bench.mock_upstream", "--port", str(port)],
                                port, run_dir / "mock_upstream.log", REPO)


def cloverleaf_toml(mock_base: str, run_dir: Path, governed: bool = False, telemetry: bool = False,
                    cache: bool = False) -> str:
    text = f"""# generated by bench/targets.py
[providers.mock]
kind = "openai"
base_url = "{mock_base}/v1"
api_key_env = "BENCH_MOCK_API_KEY"

[providers.mock20]
kind = "openai"
base_url = "{mock_base}/d20/v1"
api_key_env = "BENCH_MOCK_API_KEY"

[store]
url = "sqlite:///{run_dir}.db"
"""
    if governed:
        text += GOVERNED_TOML
    if telemetry:   # spans for every call, exported to the mock (which accepts OTLP/HTTP)
        text += f'\n[telemetry]\notlp_endpoint = "{mock_base}"\nservice_name = "bench"\n'
    if cache:       # every benchmark request is the same question: after the first, all hits
        text += '\n[cache]\nmode = "exact"\ndeterministic_only = false\n'
    return text


#: The governed configuration: priced models, routes with rpm/tpm limits and a budget, a store
#: recording every call; the client also uses a virtual key with a budget and an rpm limit
#: (created through the admin API once the server is up). Every limit is far above what the
#: benchmark spends, so every check runs and none refuses.
GOVERNED_TOML = """
[[models]]
name = "priced"
provider = "mock"
identifier = "mock-model"
input_cost_per_1k = 0.0005
output_cost_per_1k = 0.0015

[[models]]
name = "priced20"
provider = "mock20"
identifier = "mock-model"
input_cost_per_1k = 0.0005
output_cost_per_1k = 0.0015

[routes.gov]
targets = ["priced"]

[routes.gov20]
targets = ["priced20"]

[limits.gov]
rpm = 100000000
tpm = 1000000000

[limits.gov20]
rpm = 100000000
tpm = 1000000000

[budgets.gov]
limit_usd = 1000000000.0

[budgets.gov20]
limit_usd = 1000000000.0
"""


#: The benchmark's virtual key: a budget and rpm/tpm limits far above what any run spends.
KEY_POLICY = {"budget": 1e9, "rpm": 100_000_000, "tpm": 1_000_000_000}


def create_virtual_key(base: str, policy: dict[str, float] | None = None) -> str:
    """A virtual key (the admin API, with the master key); by default with ``KEY_POLICY``."""
    body = json.dumps({"name": "bench", **(KEY_POLICY if policy is None else policy)}).encode()
    req = urllib.request.Request(f"{base}/admin/keys", data=body, method="POST",
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["key"])


def start_cloverleaf(mock: Target, run_dir: Path, core: str | None, *, name: str = "cloverleaf",
                     variant: tuple[str, ...] = (), governed: bool = False, serve_args: tuple[str, ...] = (),
                     granian: bool = False, telemetry: bool = False, cache: bool = False,
                     wrapper: tuple[str, ...] = (), toml: str | None = None, key_policy: dict[str, float] | None = None,
                     ready_timeout: float = 60) -> Target:
    """``cloverleaf serve``; a non-empty ``variant`` runs it through ``bench.variants`` with
    those flags (e.g. ``("--http-client", "aiohttp")``); ``governed``: the governed
    configuration and a virtual key (see ``GOVERNED_TOML``); ``serve_args``: more
    ``cloverleaf serve`` flags (``--http uvicorn``); ``granian``: the same app under the
    granian server (Rust, PyPI) instead of ``cloverleaf serve``, to compare servers.
    ``wrapper``: a command the server runs under (``bench/instructions.py``: valgrind);
    ``toml``: this configuration instead of the generated one; ``key_policy``: the governed
    virtual key's budget and limits instead of ``KEY_POLICY``."""
    port = free_port()
    config = run_dir / f"{name}.toml"
    config.write_text(toml if toml is not None else cloverleaf_toml(mock.base, run_dir / name, governed, telemetry,
                                                                   cache))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    env.update(CLOVERLEAF_MASTER_KEY=MASTER_KEY, BENCH_MOCK_API_KEY="sk-mock", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO / "src") + os.pathsep + str(REPO))
    log_path = run_dir / f"{name}.log"
    launcher = ["-m", "bench.variants", *variant, "--"] if variant else ["-m", "cloverleaf"]
    cmd = [*taskset(core), *wrapper, PYTHON, *launcher, "--config", str(config), "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", *serve_args]
    if granian:  # cloverleaf's app factory reads the config and bind address from the environment
        env.update(CLOVERLEAF_CONFIG=str(config), CLOVERLEAF_SERVE_HOST="127.0.0.1", CLOVERLEAF_SERVE_PORT=str(port))
        cmd = [*taskset(core), PYTHON, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws",
               "--runtime-mode", "st", "--log-level", "warning", "cloverleaf.server.cli_serve:worker_app"]
    proc = _spawn(cmd, log_path, env, run_dir)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/chat/completions"
    try:
        _wait_http(f"{base}/health", proc, ready_timeout, log_path)
        key = create_virtual_key(base, key_policy) if governed else MASTER_KEY
    except BaseException:
        _stop_on_failure(proc)
        raise
    if governed:
        return Target(name, {"instant": (url, "gov"), "d20": (url, "gov20")}, api_key=key,
                      process=proc, log_path=log_path, base=base)
    return Target(name, {"instant": (url, f"mock/{MOCK_MODEL}"), "d20": (url, f"mock20/{MOCK_MODEL}")},
                  process=proc, log_path=log_path, base=base)


def start_floor(mock: Target, run_dir: Path, core: str | None, wrapper: tuple[str, ...] = ()) -> Target:
    """``bench/floor_proxy.py``: the least a Python gateway on uvloop and llhttp can add (it
    parses both bodies as JSON and forwards; nothing else), on the mock's own paths."""
    port = free_port()
    cmd = [*taskset(core), *wrapper, PYTHON, "-m", "bench.floor_proxy", "--port", str(port), "--upstream", mock.base]
    return _start_on_mock_paths("floor", cmd, port, run_dir / "floor.log", REPO, 300 if wrapper else 20)


NGINX = Path("/usr/sbin/nginx")


def nginx_conf(mock_base: str, port: int, run_dir: Path) -> str:
    """One nginx process relaying to the mock over pooled keep-alive connections, streams
    unbuffered: the same job as the floor proxy, in C."""
    upstream = mock_base.removeprefix("http://")
    return f"""# generated by bench/targets.py
daemon off;
master_process off;
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;   # the default (1,000) closes a client's connection mid-cell
    keepalive_timeout 600s;
    client_body_temp_path {run_dir}/nginx-tmp;
    proxy_temp_path {run_dir}/nginx-tmp;
    upstream mock {{ server {upstream}; keepalive 512; keepalive_requests 100000000; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


def start_nginx(mock: Target, run_dir: Path, core: str | None) -> Target:
    """nginx (Debian's ``nginx-light``, when installed) as a reverse proxy: what a C relay
    adds on this machine, beside the Python floor (``bench/floor_proxy.py``)."""
    port = free_port()
    (run_dir / "nginx-tmp").mkdir(parents=True, exist_ok=True)
    config = run_dir / "nginx.conf"
    config.write_text(nginx_conf(mock.base, port, run_dir))
    cmd = [*taskset(core), str(NGINX), "-c", str(config), "-p", str(run_dir)]
    return _start_on_mock_paths("nginx", cmd, port, run_dir / "nginx.log", run_dir)


def portkey_available() -> bool:
    return PORTKEY_SERVER.exists()


def start_portkey(mock: Target, run_dir: Path, core: str | None) -> Target:
    """The Portkey gateway (``@portkey-ai/gateway`` on node), sending each request to the mock
    through ``x-portkey-custom-host``."""
    port = free_port()
    log_path = run_dir / "portkey.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTKEY_", "OPENAI_"))}
    env["NODE_ENV"] = "production"
    proc = _spawn([*taskset(core), "node", str(PORTKEY_SERVER), f"--port={port}", "--headless"], log_path, env, run_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/", proc, 60, log_path)
    except BaseException:
        _stop_on_failure(proc)
        raise
    url = f"{base}/v1/chat/completions"
    common = ["x-portkey-provider: openai"]
    return Target("portkey", {"instant": (url, MOCK_MODEL), "d20": (url, MOCK_MODEL)}, api_key="sk-mock",
                  headers={"instant": [*common, f"x-portkey-custom-host: {mock.base}/v1"],
                           "d20": [*common, f"x-portkey-custom-host: {mock.base}/d20/v1"]},
                  process=proc, log_path=log_path, base=base)


def litellm_yaml(mock_base: str) -> str:
    return f"""# generated by bench/targets.py
model_list:
  - model_name: mock-instant
    litellm_params:
      model: openai/{MOCK_MODEL}
      api_base: {mock_base}/v1
      api_key: sk-mock
  - model_name: mock-d20
    litellm_params:
      model: openai/{MOCK_MODEL}
      api_base: {mock_base}/d20/v1
      api_key: sk-mock
litellm_settings:
  set_verbose: false
  turn_off_message_logging: true
  telemetry: false
general_settings:
  disable_spend_logs: true
"""


def litellm_available() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def start_litellm(mock: Target, run_dir: Path, core: str | None) -> Target:
    port = free_port()
    config = run_dir / "litellm.yaml"
    config.write_text(litellm_yaml(mock.base))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "DATABASE_URL", "OPENAI_"))}
    env.update(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True",
               PYTHONUNBUFFERED="1")
    log_path = run_dir / "litellm.log"
    proc = _spawn([*taskset(core), str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config),
                   "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"], log_path, env, run_dir)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, 180, log_path)
    except BaseException:
        _stop_on_failure(proc)
        raise
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target("litellm", {"instant": (url, "mock-instant"), "d20": (url, "mock-d20")}, process=proc,
                  log_path=log_path)


# -- memory and CPU of a process tree ---------------------------------------------------------

def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn workers, if any)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB."""
    total_kib = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kib / 1024.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / ticks
