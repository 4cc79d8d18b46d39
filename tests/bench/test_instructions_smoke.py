"""Keeps ``bench/instructions.py`` from rotting without running valgrind (the suite never
measures): every configuration's TOML is a valid cloverleaf configuration with exactly the
governance it names, and a callgrind dump's total is read."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bench import instructions as I


@pytest.mark.parametrize("name", sorted(I.CONFIGS))
def test_each_configuration_has_the_governance_it_names(name: str, tmp_path: Path) -> None:
    config = I.CONFIGS[name]
    if config.floor:
        return
    table = tomllib.loads(I.config_toml(config, "http://127.0.0.1:9", tmp_path))
    assert table["store"]["flush_ms"] == 3000
    limits, budgets = set(table.get("limits", {})), set(table.get("budgets", {}))
    if not config.governed:
        assert not limits and not budgets and "routes" not in table
        return
    assert ("gov" in limits) == ("route-limits" in name or name == "governed")
    assert ("gov" in budgets) == ("route-budget" in name or name == "governed")
    assert set(table["routes"]) == {"gov", "gov20"}


def test_ablation_starts_from_open_and_ends_governed() -> None:
    assert I.ABLATION[0] == "open" and I.ABLATION[-1] == "governed"
    assert all(name in I.CONFIGS for name in (*I.ABLATION, *I.DEFAULT))


def test_a_dump_total_is_read(tmp_path: Path) -> None:
    (tmp_path / "cg.out.1").write_text("version: 1\ncreator: callgrind\nevents: Ir\nsummary: 1234567\n")
    assert I.dumped_total(tmp_path, set()) == 1234567
    before = set(tmp_path.glob("cg.out*"))
    (tmp_path / "cg.out.1.2").write_text("events: Ir\ntotals: 42\n")
    assert I.dumped_total(tmp_path, before) == 42


@pytest.mark.parametrize("args", [["--requests", "0"], ["--connections", "-3"], ["--repeats", "two"],
                                  ["--configs", "open,nonsense"]])
def test_bad_arguments_are_refused_with_a_reason(args: list[str], capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(I.shutil, "which", lambda name: f"/usr/bin/{name}")   # as if valgrind were there
    try:
        code = I.main(args)
    except SystemExit as exc:   # argparse's refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "at least 1" in err or "unknown configuration(s): nonsense" in err


@pytest.mark.parametrize("args", [["--streams", "0"], ["--configs", "floor"], ["--configs", "open,nonsense"]])
def test_the_stream_counter_refuses_bad_arguments_with_a_reason(args: list[str], capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import stream_instructions as S

    monkeypatch.setattr(S.shutil, "which", lambda name: f"/usr/bin/{name}")
    try:
        code = S.main(args)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "at least 1" in err or "unknown configuration(s)" in err
