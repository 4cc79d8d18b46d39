"""A structured step's answer is held to its own response_format: an answer that breaks the
schema fails that step (not the next one), is not saved, and a resume asks again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Client, WorkflowFailed
from cloverleaf._config import Settings
from cloverleaf.workflows import run_workflow

PLAN = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["title", "n"], "additionalProperties": False}
FLOW = {"name": "plan-then-use", "steps": [
    {"id": "plan", "type": "llm_call", "model": "fake/chat", "prompt": "plan", "response_format": PLAN,
     "output": "plan"},
    {"id": "use", "type": "llm_call", "model": "fake/echo", "prompt": "Title={state.plan.title} N={state.plan.n}",
     "output": "use"}],
    "outputs": {"use": "{state.use}"}}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(env={"XDG_DATA_HOME": str(tmp_path / "data")}, max_retries=0, gateway=True,
                        store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    with Client(settings) as c:
        yield c


def _run_file(tmp_path: Path, run_id: str) -> dict[str, Any]:
    return json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{run_id}.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("answer, why", [
    ("null", "(the whole value): expected object, got null"),
    ('{"title": "x"}', "n: is required but missing"),
    ("[1, 2]", "(the whole value): expected object, got array"),
])
def test_an_answer_that_breaks_the_steps_schema_fails_that_step_and_a_resume_asks_again(
        tmp_path: Path, client: Client, answer: str, why: str) -> None:
    client.fake.script.reply(text=answer)
    with pytest.raises(WorkflowFailed) as info:
        run_workflow(FLOW, client=client)
    failed = info.value
    assert failed.step == "plan" and "does not match its JSON Schema" in str(failed) and why in str(failed)
    saved = _run_file(tmp_path, failed.run_id)
    assert saved["done"] == [] and "plan" not in saved["state"]          # the bad answer is not kept

    client.fake.script.reply(text='{"title": "good", "n": 1}')         # the model answers well this time
    result = run_workflow(FLOW, resume=failed.run_id, client=client)
    assert [s.status for s in result.steps] == ["ok", "ok"]
    assert result.outputs == {"use": "Title=good N=1"}
