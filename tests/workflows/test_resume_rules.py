"""What a run keeps to, started or resumed: the strictest privacy and data class (the caller's
tighten the file's, the run file's hold a resume), the inputs a changed file declares, and
failures that always say how to resume, in a command that can be pasted as printed."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Client, PrivacyViolation, WorkflowError, WorkflowFailed
from cloverleaf._config import ProviderSettings
from cloverleaf.workflows import plan_workflow, run_workflow

from ..counting_upstream import CountingUpstream
from .test_runner import chat_bodies, settings


@pytest.fixture
def cloud() -> Iterator[CountingUpstream]:
    upstream = CountingUpstream("cloud")
    yield upstream
    upstream.close()


def cloud_settings(tmp_path: Path, cloud: CountingUpstream, **kw: Any) -> Any:
    """`openai` is a cloud provider here (its base_url the counting mock): local-only refuses it."""
    return settings(tmp_path, env={"OPENAI_API_KEY": "sk-test", "XDG_DATA_HOME": str(tmp_path / "data")},
                    providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)},
                    privacy={"classes": {"confidential": "local-only", "secret": "local-only", "public": "any"}},
                    **kw)


def run_file(tmp_path: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{run_id}.json").read_text()))


# --------------------------------------------------------------------------- data class: the strictest wins


def test_a_callers_data_class_tightens_the_files_and_never_loosens_it(tmp_path: Path,
                                                                       cloud: CountingUpstream) -> None:
    """The file says confidential (local-only); `--data-class public` (any) used to replace it and
    send the confidential prompt to the cloud."""
    confidential = {"name": "diary", "data_class": "confidential", "steps": [
        {"id": "a", "type": "llm_call", "model": "openai/gpt-4o-mini", "prompt": "patient record", "output": "a"}]}
    local = {**confidential, "steps": [{**confidential["steps"][0], "model": "fake/echo"}]}
    with Client(cloud_settings(tmp_path, cloud)) as client:
        with pytest.raises(PrivacyViolation, match="data class 'confidential'"):
            run_workflow(confidential, client=client, data_class="public")
        with pytest.raises(PrivacyViolation, match="data class 'confidential'"):
            plan_workflow(confidential, client=client, data_class="public")
        # a stricter class from the caller still wins over a looser file
        with pytest.raises(PrivacyViolation, match="data class 'secret'"):
            run_workflow({**confidential, "data_class": "public"}, client=client, data_class="secret")
        # the calls themselves carry the file's class, not the caller's looser one
        result = run_workflow(local, client=client, data_class="public")
        assert run_file(tmp_path, result.run_id)["data_class"] == "confidential"
        client.gateway.store.flush()
        [call] = client.traces.get(result.run_id).calls                 # type: ignore[union-attr]
        assert call.metadata["privacy"]["policy"] == "local-only"
        assert "data class 'confidential'" in call.metadata["privacy"]["rule"]
        with pytest.raises(WorkflowError, match="data_class: unknown data class 'nosuch'"):
            run_workflow(local, client=client, data_class="nosuch")
    assert cloud.connections == 0


# --------------------------------------------------------------------------- resume: held to the run's privacy


LOCAL_THEN_MIXED = {"name": "lo", "steps": [
    {"id": "a", "type": "llm_call", "model": "fake/echo", "prompt": "diary: my secret", "output": "a"},
    {"id": "b", "type": "llm_call", "model": "mixed", "prompt": "summarize {state.a}", "output": "b"}],
    "outputs": {"b": "{state.b}"}}
MIXED = {"mixed": {"targets": ["fake/fail-500", "openai/gpt-4o-mini"]}}     # local first, a cloud fallback


@pytest.mark.parametrize("started", [{"privacy": "local-only"}, {"data_class": "confidential"}])
def test_a_resumed_run_keeps_the_privacy_it_started_with(tmp_path: Path, cloud: CountingUpstream,
                                                         started: dict[str, str]) -> None:
    """A run started local-only resumed with no option used to send its local-only state to the
    cloud fallback; the run file now holds the resume to the run's privacy and data class."""
    with Client(cloud_settings(tmp_path, cloud, routes=MIXED)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(LOCAL_THEN_MIXED, client=client, **started)   # type: ignore[arg-type]
        run_id = info.value.run_id
        assert "privacy=" not in str(info.value) and "data_class=" not in str(info.value)   # nothing to repeat
        saved = run_file(tmp_path, run_id)
        assert (saved["privacy"], saved["data_class"]) == (started.get("privacy"), started.get("data_class"))
        plan = plan_workflow(LOCAL_THEN_MIXED, resume=run_id, client=client)
        assert any("local-only" in line for line in plan)
        with pytest.raises(WorkflowFailed, match="failed at step 'b'"):
            run_workflow(LOCAL_THEN_MIXED, resume=run_id, client=client)
        # a looser class on the resume does not loosen it either
        with pytest.raises(WorkflowFailed, match="failed at step 'b'"):
            run_workflow(LOCAL_THEN_MIXED, resume=run_id, client=client, data_class="public")
        assert len(chat_bodies(client)) == 4            # a once; b's local target three times
    assert cloud.connections == 0


def test_a_run_file_from_before_privacy_was_saved_resumes_as_it_did(tmp_path: Path, cloud: CountingUpstream) -> None:
    with Client(cloud_settings(tmp_path, cloud, routes=MIXED)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow({**LOCAL_THEN_MIXED, "steps": [LOCAL_THEN_MIXED["steps"][0],    # type: ignore[index]
                                                        {"id": "b", "type": "llm_call", "model": "fake/fail-500",
                                                         "prompt": "summarize {state.a}", "output": "b"}]},
                         client=client)
        path = tmp_path / "data" / "cloverleaf" / "runs" / f"{info.value.run_id}.json"
        old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("privacy", "data_class")}
        path.write_text(json.dumps(old))
        result = run_workflow(LOCAL_THEN_MIXED, resume=info.value.run_id, client=client)
    assert result.status == "succeeded" and result.outputs["b"] == "answered by cloud"
    assert cloud.connections == 1


# --------------------------------------------------------------------------- resume: a file that changed


ADDING = {"name": "addin", "inputs": {"topic": {"type": "string", "default": "cats"}}, "steps": [
    {"id": "a", "type": "llm_call", "model": "fake/echo", "prompt": "A {inputs.topic}", "output": "a"},
    {"id": "b", "type": "llm_call", "model": "fake/fail-400", "prompt": "B {state.a}", "output": "b"}],
    "outputs": {"b": "{state.b}"}}


def test_an_input_declared_since_the_run_started_takes_its_default_on_resume(tmp_path: Path) -> None:
    """Inputs cannot be passed to a resume: a new input with a default used to pass --dry-run and
    then fail the resumed step forever; one without a default is refused before any call."""
    fixed_b = {"id": "b", "type": "llm_call", "model": "fake/echo", "prompt": "B {state.a} {inputs.tone} {state.tone}",
               "output": "b"}
    with Client(settings(tmp_path)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(ADDING, client=client)
        run_id = info.value.run_id
        required = {**ADDING, "inputs": {**ADDING["inputs"], "tone": {"type": "string"}},   # type: ignore[dict-item]
                    "steps": [ADDING["steps"][0], fixed_b]}                                 # type: ignore[index]
        for check in (plan_workflow, run_workflow):
            with pytest.raises(WorkflowError, match=f"input 'tone' \\(string\\) was declared after run {run_id} "
                                                    "started and has no default"):
                check(required, resume=run_id, client=client)
        assert len(chat_bodies(client)) == 2
        defaulted = {**required, "inputs": {**ADDING["inputs"],    # type: ignore[dict-item]
                                            "tone": {"type": "string", "default": "formal"}}}
        assert "inputs: topic=cats, tone=formal" in plan_workflow(defaulted, resume=run_id, client=client)
        result = run_workflow(defaulted, resume=run_id, client=client)
    assert result.status == "succeeded" and result.outputs["b"] == "B A cats formal formal"
    assert run_file(tmp_path, run_id)["inputs"] == {"topic": "cats", "tone": "formal"}


# --------------------------------------------------------------------------- failures say how to resume


def test_a_failure_in_outputs_names_the_run_and_how_to_resume_it(tmp_path: Path) -> None:
    """Every step done and paid for, then `outputs:` fails: the message named no run id and no
    resume command, unlike a failed step's."""
    tags = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
            "required": ["tags"]}
    flow = {"name": "outfail", "steps": [
        {"id": "s1", "type": "llm_call", "model": "fake/chat", "prompt": "a person", "response_format": tags,
         "output": "o"}], "outputs": {"fourth": "{state.o.tags.3}"}}     # the fake answers at most 2 tags
    path = tmp_path / "out.json"
    path.write_text(json.dumps(flow))
    with Client(settings(tmp_path)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(str(path), client=client)
        failed = info.value
        assert failed.step == "outputs" and run_file(tmp_path, failed.run_id)["failed_step"] == "outputs"
        assert f"`cloverleaf run {path} --resume {failed.run_id}`" in str(failed)
        assert f"resume={failed.run_id!r}" in str(failed) and "fix outputs.fourth" in str(failed)
        path.write_text(json.dumps({**flow, "outputs": {"tags": "{state.o.tags}"}}))
        resumed = run_workflow(str(path), resume=failed.run_id, client=client)
        assert isinstance(resumed.outputs["tags"], list) and [s.status for s in resumed.steps] == ["earlier"]
        assert len(chat_bodies(client)) == 1                    # no step ran again


def test_the_printed_resume_command_works_as_pasted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A path with a space was printed unquoted (`cloverleaf run my flows/two.yaml --resume ...`),
    and the CLI's own quoted line was suppressed exactly then; a local-only run's command needs no
    --local-only (the run file keeps it)."""
    from cloverleaf.cli import main

    flow = ("name: two\nsteps:\n  - {id: a, type: llm_call, model: fake/echo, prompt: A, output: a}\n"
            "  - {id: b, type: llm_call, model: fake/fail-400, prompt: 'B {state.a}', output: b}\n"
            "outputs:\n  b: '{state.b}'\n")
    (tmp_path / "my flows").mkdir()
    (tmp_path / "my flows" / "two.yaml").write_text(flow)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CLOVERLEAF_CONFIG", "CLOVERLEAF_BACKEND", "CLOVERLEAF_STORE_URL", "CLOVERLEAF_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "my flows/two.yaml", "--local-only"]) == 1
    err = capsys.readouterr().err
    [command] = [part for i, part in enumerate(err.split("`")) if i % 2 and part.startswith("cloverleaf run")]
    run_id = command.rsplit(" ", 1)[1]
    assert command == f"cloverleaf run 'my flows/two.yaml' --resume {run_id}"
    assert "with this run's options" not in err
    assert run_file(tmp_path, run_id)["privacy"] == "local-only"
    (tmp_path / "my flows" / "two.yaml").write_text(flow.replace("fake/fail-400", "fake/echo"))   # step b fixed
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == "b: B A\n"


def test_a_workflow_given_as_a_mapping_is_told_to_resume_through_the_sdk(tmp_path: Path) -> None:
    """`cloverleaf run '<mapping>' --resume RUN_ID` was the hint: a command naming no file."""
    flow = {"name": "hello", "inputs": {"who": {"type": "object", "default": {"a": 1}}}, "steps": [
        {"id": "greet", "type": "llm_call", "model": "fake/echo", "prompt": "Hello, {inputs.who.b}!", "output": "g"}],
        "outputs": {"g": "{state.g}"}}
    with Client(settings(tmp_path)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(flow, client=client)
        failed = info.value
        assert str(failed).endswith(f"resume from this step with run_workflow(<the same workflow>, "
                                    f"resume={failed.run_id!r})")
        assert "cloverleaf run" not in str(failed) and "<mapping>" not in str(failed)
        flow["steps"][0]["prompt"] = "Hello, {inputs.who.a}!"
        flow["outputs"] = {"z": "{inputs.who.z}"}             # an object input: known to be missing only now
        with pytest.raises(WorkflowFailed) as info:       # a failure in outputs: the same SDK-only hint
            run_workflow(flow, resume=failed.run_id, client=client)
        assert info.value.step == "outputs" and "cloverleaf run" not in str(info.value)
        assert f"run_workflow(<the same workflow>, resume={failed.run_id!r})" in str(info.value)
