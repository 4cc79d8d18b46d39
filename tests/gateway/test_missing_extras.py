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


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``cloverleaf ARGS`` without SQLAlchemy, in an empty folder with no configuration."""
    code = BLOCK + f"import sys; from cloverleaf.cli import main; sys.exit(main({list(args)!r}))"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=env)


def test_doctor_on_a_base_install_reports_the_missing_extra_and_finishes(tmp_path: Path) -> None:
    """An SDK user's ``cloverleaf doctor`` (no gateway tables, no server) names the extra the
    gateway would need and passes; it was a 26-line traceback and exit 1."""
    out = cli(tmp_path, "doctor")
    assert "Traceback" not in out.stderr, out.stderr
    assert "skipped" in out.stdout and "pip install 'cloverleaf[gateway]'" in out.stdout
    assert out.returncode == 0


def test_a_command_that_needs_a_missing_extra_says_so_in_one_line(tmp_path: Path) -> None:
    out = cli(tmp_path, "traces")
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "pip install 'cloverleaf[gateway]'" in out.stderr
    assert out.returncode == 1


def test_the_package_declares_its_types_and_carries_its_licence() -> None:
    """``py.typed`` lets users' type checkers read the annotations (PEP 561); the licence text
    ships in the wheel and sdist (hatchling takes LICENSE from the project root)."""
    assert (REPO / "src" / "cloverleaf" / "py.typed").is_file()
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]
