"""The repository's top level holds the project and nothing else.

Why: a helper's scratch output (``b6.out``, a ``.pid`` file) was once committed at the root by a
merge and travelled into every clone for two stops. The top level is what a newcomer sees
first (README's Layout section names each entry), so a new entry there is a decision: add it to
:data:`ROOT` and to README's Layout, or keep it out of the commit.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Every entry tracked at the repository's top level.
ROOT = frozenset({".ci", ".gitignore", "LICENSE", "README.md", "bench", "docs", "pyproject.toml", "scripts", "src",
                  "tests"})


def test_the_top_level_holds_only_the_projects_entries() -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: nothing tells tracked files from local ones")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    top = {name.split("/", 1)[0] for name in listed.decode().split("\0") if name}
    assert top <= ROOT, f"unexpected entries at the repository root: {sorted(top - ROOT)}"
