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


def _run_script_in(tmp_path: Path, args: list[str], env: dict[str, str], config_file: bool = False) -> tuple[str, str]:
    """scripts/run in a copy of the repository's layout whose bootstrap does nothing and whose
    ``cloverleaf`` prints what it was started with: the script's own decisions, nothing served."""
    import shutil
    import subprocess

    (tmp_path / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", tmp_path / "scripts" / "run")
    (tmp_path / "scripts" / "bootstrap.sh").write_text("#!/usr/bin/env bash\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "cloverleaf").write_text(
        '#!/usr/bin/env bash\necho "backend=${CLOVERLEAF_BACKEND-unset} args=$*"\n')
    for f in ("scripts/run", "scripts/bootstrap.sh", ".venv/bin/cloverleaf"):
        (tmp_path / f).chmod(0o755)
    if config_file:
        (tmp_path / "cloverleaf.toml").write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    out = subprocess.run([str(tmp_path / "scripts" / "run"), *args], env={**base, **env}, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip(), out.stderr


def test_scripts_run_answers_every_model_offline_until_providers_are_configured(tmp_path: Path) -> None:
    """The README's promise: any OpenAI or Anthropic client pointed at scripts/run gets answers
    (from the fake provider) with no keys, and a configuration of yours turns that off."""
    out, err = _run_script_in(tmp_path / "plain", ["--port", "4001"], {})
    assert out == "backend=fake args=serve --port 4001" and "offline fake provider" in err
    for args, env, config_file in ((["--config", "my.toml"], {}, False), (["--config=my.toml"], {}, False),
                                   ([], {"CLOVERLEAF_CONFIG": "my.toml"}, False), ([], {}, True),
                                   ([], {"CLOVERLEAF_BACKEND": ""}, False)):
        where = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        out, _ = _run_script_in(where, args, env, config_file)
        assert not out.startswith("backend=fake"), (args, env, config_file)
