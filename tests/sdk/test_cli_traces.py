"""``cloverleaf traces`` and ``spend`` on a real SQLite store: what a row says about a call that
was answered from the cache, cut off after its output, or asked for by a trace id that is not there."""

from __future__ import annotations

import time

import pytest

from cloverleaf.cli import main
from cloverleaf.gateway.store import CallRecord, open_store

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    store = open_store(url)
    now = time.time()
    store.record_call(CallRecord("call_1", now - 2, "chat", "smart", "ok", trace_id="tr_1", target="fake/echo",
                                 provider="fake", latency_ms=2.0, cost=0.5, cache="hit"))
    store.record_call(CallRecord("call_2", now - 1, "chat", "smart", "cancelled", trace_id="tr_1",
                                 target="mylab/slow", provider="mylab", error_type="CancelledError", latency_ms=2500.0,
                                 ttft_ms=12.0))
    store.flush()
    store.close()
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "{url}"\n')
    return str(path)


def _row(out: str, word: str) -> str:
    return next(line for line in out.splitlines() if word in line)


def test_a_cache_hit_and_a_stream_cut_after_output_are_told_apart(config, capsys):
    assert main(["--config", config, "traces"]) == 0
    out = capsys.readouterr().out
    assert "ok (cache hit)" in _row(out, "fake/echo")         # it read as an ordinary ok row
    cut = _row(out, "mylab/slow")
    assert "cancelled (CancelledError)" in cut and cut.split()[-2:] == ["unknown", "0"]
    assert main(["--config", config, "spend", "--json"]) == 0
    rows = {r["group"]: r for r in map(__import__("json").loads, capsys.readouterr().out.splitlines())}
    assert rows["mylab/slow"]["unknown_cost"] == 1 and rows["fake/echo"]["unknown_cost"] == 0


def test_an_unknown_trace_id_is_said_to_be_no_such_trace(config, capsys):
    assert main(["--config", config, "traces", "--trace", "tr_nope"]) == 0
    err = capsys.readouterr().err
    assert "no calls in trace 'tr_nope': no such trace" in err and "recorded yet" not in err


def test_spend_by_model_is_one_row_per_model_as_admin_spend_and_its_budget_count_it(tmp_path, monkeypatch, capsys):
    """``fake/echo``, ``fake:echo``, a ``[[models]]`` entry of it and an entry stored through the
    admin API are one model: one row (``/admin/spend?by=model``'s, ``model_budgets.spend_report``),
    not four that do not add up to what a budget on the model counts. A target that names no
    model the gateway knows keeps its own row."""
    from cloverleaf.gateway.store import ModelEntryRow

    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    store = open_store(url)
    store.create_model_entry(ModelEntryRow(name="stored-echo", identifier="echo", provider="fake"))
    now = time.time()
    for i, target in enumerate(["fake/echo", "fake:echo", "echo-entry", "stored-echo", "mylab/slow"]):
        store.record_call(CallRecord(f"call_{i}", now - 10 + i, "chat", "r", "ok", target=target, provider="fake",
                                     input_tokens=1, output_tokens=2, cost=0.25))
    store.flush()
    store.close()
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "{url}"\n\n[[models]]\nname = "echo-entry"\nprovider = "fake"\n'
                    'identifier = "echo"\n')
    assert main(["--config", str(path), "spend", "--by", "model", "--json"]) == 0
    rows = [__import__("json").loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"group": "fake/echo", "calls": 4, "input_tokens": 4, "output_tokens": 8, "cost": 1.0,
                     "unknown_cost": 0},
                    {"group": "mylab/slow", "calls": 1, "input_tokens": 1, "output_tokens": 2, "cost": 0.25,
                     "unknown_cost": 0}]
    assert main(["--config", str(path), "spend", "--by", "model"]) == 0
    assert "total: 5 calls, $1.250000" in capsys.readouterr().out


def test_traces_by_model_lists_the_calls_its_spend_row_counts(tmp_path, monkeypatch, capsys):
    """``spend --by model`` shows one fake/echo row for calls answered as ``fake/echo``,
    ``fake:echo`` and an entry of it; ``traces --model`` (there was none) lists those calls, by
    any of the model's names, as ``/admin/traces?model=`` does."""
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    store = open_store(url)
    now = time.time()
    for i, target in enumerate(["fake/echo", "fake:echo", "echo-entry", "mylab/slow"]):
        store.record_call(CallRecord(f"call_{i}", now - 10 + i, "chat", "r", "ok", target=target, provider="fake",
                                     cost=0.25))
    store.flush()
    store.close()
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "{url}"\n\n[[models]]\nname = "echo-entry"\nprovider = "fake"\n'
                    'identifier = "echo"\n')
    for name in ("fake/echo", "echo-entry"):
        assert main(["--config", str(path), "traces", "--model", name, "--json"]) == 0
        listed = [__import__("json").loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
        assert listed == ["call_2", "call_1", "call_0"], name


def test_a_model_without_calls_is_not_said_to_be_an_empty_store(config, capsys):
    """`traces --model nosuch` on a store full of calls said "no calls recorded yet"."""
    assert main(["--config", config, "traces", "--model", "nosuch/model"]) == 0
    err = capsys.readouterr().err
    assert "no calls of model 'nosuch/model' in this store" in err and "recorded yet" not in err
