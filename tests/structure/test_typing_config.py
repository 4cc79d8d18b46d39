"""The type check stays on: mypy strict with stale ignores reported, run by ``scripts/test``
(CI) over ``src/`` before pytest. (mypy itself runs there, not here, to keep pytest fast.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_strict_and_reports_unused_ignores() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and config["warn_unused_ignores"] is True
    assert config["packages"] == ["cloverleaf"] and config["mypy_path"] == "src"


def test_ci_runs_mypy_and_a_type_error_fails_the_run() -> None:
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert ".venv/bin/python -m mypy || typecheck=$?" in script
    assert "exit $(( tests != 0 ? tests : typecheck ))" in script.splitlines()[-1]
