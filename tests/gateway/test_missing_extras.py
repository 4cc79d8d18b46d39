"""Without the ``[gateway]`` extra (SQLAlchemy), the SDK works and the gateway says what to
install, instead of "No module named 'sqlalchemy'" from deep inside the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = "import sys; sys.modules['sqlalchemy'] = None\n"   # as if it were not installed


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_sdk_alone_needs_no_sqlalchemy() -> None:
    out = run("import cloverleaf; print(cloverleaf.chat('fake/echo', 'hi').content != '')")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_a_route_without_the_gateway_extra_names_the_pip_install(tmp_path: Path) -> None:
    code = ("import cloverleaf\n"
            "try:\n"
            f"    c = cloverleaf.Client(routes={{'smart': {{'targets': ['fake/echo']}}}}, "
            f"store={{'url': 'sqlite:///{tmp_path / 'x.db'}'}})\n"
            "    c.chat('smart', 'hi')\n"
            "except ImportError as exc:\n"
            "    print('ImportError:', exc)\n")
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout and "pip install 'cloverleaf[gateway]'" in out.stdout
    assert "No module named" not in out.stdout
