"""The README's capability matrix is the generated one, and its commands exist."""

import os
from pathlib import Path

from cloverleaf._matrix import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_matrix_matches_the_adapters():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- matrix:start -->\n") + len("<!-- matrix:start -->\n")
    end = text.index("<!-- matrix:end -->")
    assert text[start:end] == markdown(), "README matrix is stale: run `cloverleaf providers --markdown`"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert "scripts/run" in first_block and "scripts/test" in first_block
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    for script in ("scripts/run", "scripts/test"):
        assert os.access(ROOT / script, os.X_OK)


def test_readme_configuration_example_loads(tmp_path: Path) -> None:
    """The TOML the README shows is accepted as written (every key and table in it exists)."""
    from cloverleaf._config import Settings
    from cloverleaf.gateway.config import parse

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Configuration"):]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "cloverleaf.toml"
    path.write_text(example, encoding="utf-8")
    settings = Settings.load(path, env={})
    assert settings.default_model == "smart" and settings.http_client == "auto"
    config = parse(settings)
    assert config.routes["smart"].targets[0].model == "anthropic/claude-sonnet-4-5"
    assert config.limits.for_scope("provider", "openai") is not None and config.budgets
    from cloverleaf.attachments import AttachmentPolicy

    policy = AttachmentPolicy(**settings.attachments)
    assert policy.max_per_request == 32 and policy.host_allowed("cdn.internal", 8443)
    from cloverleaf.server.options import ServerOptions

    server = ServerOptions.from_settings(settings.server, {})
    assert (server.http, server.header_timeout_seconds, server.max_connections) == ("auto", 10.0, 10_000)
