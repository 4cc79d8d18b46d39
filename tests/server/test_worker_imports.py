"""A serving worker loads only what serving needs.

Every worker process pays, in resident memory, for each package its start imports: httpx
(with what its package ``__init__`` pulls in: rich, pygments, click), ``cryptography`` and
jinja2 were about 13 MiB of an 84 MiB worker. They are loaded on first use instead: httpx on
the first attachment download, ``cryptography`` on the first stored provider key, jinja2 on the
first dashboard page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

LAZY = ("httpx", "cryptography", "jinja2", "rich", "pygments")

CONFIG = """
[providers.upstream]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "UPSTREAM_KEY"

[store]
url = "sqlite:///{db}"

[routes.smart]
targets = ["upstream/some-model"]

[budgets.smart]
limit_usd = 10.0
"""


def _loaded_after_app(tmp_path: Path, code: str) -> list[str]:
    config = tmp_path / "cloverleaf.toml"
    config.write_text(CONFIG.format(db=tmp_path / "calls.db"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    env.update(CLOVERLEAF_CONFIG=str(config), CLOVERLEAF_MASTER_KEY="m" * 32, UPSTREAM_KEY="sk-test",
               CLOVERLEAF_SERVE_WORKERS="1")
    script = ("import sys\nfrom cloverleaf.server.cli_serve import worker_app\napp = worker_app()\n" + code +
              f"\nprint(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAZY!r}))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return [m for m in out.split(",") if m]


def test_building_the_app_does_not_load_what_only_some_requests_need(tmp_path: Path) -> None:
    assert _loaded_after_app(tmp_path, "") == []


def test_the_lazy_pieces_still_load_when_used(tmp_path: Path) -> None:
    code = ("from cloverleaf.server.secrets import SecretBox\n"
            "box = SecretBox('material')\nassert box.decrypt(box.encrypt('sk-secret')) == 'sk-secret'\n"
            "from cloverleaf.attachments.fetch import _default_ssl_context\n_default_ssl_context()")
    assert {"cryptography", "httpx"} <= set(_loaded_after_app(tmp_path, code))


def test_the_server_under_the_app_loads_no_websocket_or_reload_machinery() -> None:
    """uvicorn loads the websockets package when ``ws`` is "auto" (2.6 MiB a worker; the server
    has no WebSocket routes), and ``import uvicorn`` loads watchfiles whenever it is installed
    (the server extra asks for plain uvicorn, so it is not)."""
    script = textwrap.dedent("""
        import sys, uvicorn
        from cloverleaf.server.cli_serve import server_kwargs
        from cloverleaf.server.options import ServerOptions
        config = uvicorn.Config(lambda scope, receive, send: None, **server_kwargs(ServerOptions(port=0)))
        config.load()
        print(",".join(sorted({m.split(".")[0] for m in sys.modules} & {"websockets", "wsproto", "watchfiles"})))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
