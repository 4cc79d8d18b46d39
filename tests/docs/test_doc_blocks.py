"""The user-facing pages are executable: every python, bash and toml block runs as written
(offline, on the fake provider), or says in a marker why it cannot (``tests/docs/blocks.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .blocks import RUNNABLE, Block, MarkerError, PageRun, extract, offline_env

ROOT = Path(__file__).resolve().parents[2]
#: Every page a user reads: the README and the benchmark's.
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md"]


#: The whole page's bound, a backstop only: each block is bounded on its own (``BLOCK_TIMEOUT``),
#: which is what catches a block that hangs. The README's blocks run one after another in one
#: test, about 45 s on a quiet machine and 150 s on a loaded one, past the suite's 120 s per
#: test, which failed a README that was fine.
PAGE_TIMEOUT = 900


@pytest.mark.timeout(PAGE_TIMEOUT)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_of_the_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    blocks = [b for b in extract(page) if b.kind is not None or b.file is not None]
    assert blocks, f"{page} has no runnable blocks"
    run = PageRun(tmp_path, offline_env())
    try:
        for block in blocks:
            if block.skip is None:
                run.run(block)
    finally:
        run.close()
    assert any(b.skip is None for b in blocks) or page != ROOT / "README.md"


def test_the_pages_list_covers_every_markdown_page_shipped() -> None:
    shipped = {p for p in ROOT.glob("*.md")} | {p for p in (ROOT / "bench").glob("*.md")}
    assert shipped <= set(PAGES), f"add {sorted(str(p) for p in shipped - set(PAGES))} to PAGES"


def test_the_readme_sdk_example_and_server_commands_are_run_not_skipped() -> None:
    blocks = extract(ROOT / "README.md")
    run = [b for b in blocks if b.kind is not None and b.skip is None]
    text = "\n".join(b.code for b in run)
    for needle in ('cloverleaf.chat("openai/gpt-4o-mini"', "cloverleaf.stream(", "response_format=City",
                   "run_tools=True", "cloverleaf.embed(", "cloverleaf serve --config cloverleaf.toml --port 4000",
                   "from openai import OpenAI", "from anthropic import Anthropic", "cloverleaf keys create"):
        assert needle in text, f"the README block with {needle!r} must run in the test"


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "PAGE.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_markers_are_read_and_a_skip_needs_a_reason(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- readme-test: skip needs a GPU and a model download -->\n\n```python\nimport torch\n```\n"
                           "<!-- readme-test: file conf/x.toml -->\n```toml\n[defaults]\nmodel = 'fake/echo'\n```\n"
                           "<!-- readme-test: replace KEY_ID => k_1 -->\n```bash\necho KEY_ID\n```\n```text\nshown\n```\n")
    a, b, c, d = extract(page)
    assert a.skip == "needs a GPU and a model download" and a.kind == "python"
    assert b.file == "conf/x.toml" and c.replace == [("KEY_ID", "k_1")] and d.kind is None
    with pytest.raises(MarkerError, match="needs a reason"):
        extract(_page(tmp_path, "<!-- readme-test: skip -->\n```bash\nls\n```\n"))
    page = _page(tmp_path, "```python\nx = 41\n```\n<!-- readme-test: continues -->\n```python\nassert x + 1 == 42\n```\n")
    first, second = extract(page)
    assert second.continues and not first.continues
    run = PageRun(tmp_path, offline_env())
    run.run(first)
    run.run(second)  # x comes from the block before
    with pytest.raises(MarkerError, match="unknown readme-test directive"):
        extract(_page(tmp_path, "<!-- readme-test: ignore this -->\n```bash\nls\n```\n"))
    assert set(RUNNABLE.values()) == {"python", "bash", "toml"}


def test_a_block_that_is_no_longer_true_fails_with_its_location(tmp_path: Path) -> None:
    page = _page(tmp_path, "Intro\n\n```python\nimport cloverleaf\ncloverleaf.chat('nonesuch/model', 'hi')\n```\n")
    [block] = extract(page)
    run = PageRun(tmp_path, offline_env())
    with pytest.raises(AssertionError, match=r"(?s)PAGE.md:3 \(python block\) failed.*unknown provider 'nonesuch'"):
        run.run(block)
    bad_toml = Block(page, 9, "toml", "[defaults]\nmodle = 'x'\n")
    with pytest.raises(AssertionError, match=r"(?s)not a valid cloverleaf.toml.*modle"):
        run.run(bad_toml)
