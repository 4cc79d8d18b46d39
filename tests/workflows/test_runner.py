"""Workflow runs on the fake provider: the README example, structured steps feeding the next,
image attachments from state through the SSRF guard, validation before any call, resume,
traces and privacy."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf import Client, PrivacyViolation, WorkflowError, WorkflowFailed
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf.providers.fake.content import png
from cloverleaf.workflows import load_workflow, plan_workflow, run_workflow

from ..counting_upstream import CountingUpstream
from ..loopback import Answer, Handle, LoopbackServer

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {"env": {"XDG_DATA_HOME": str(tmp_path / "data")}, "max_retries": 0, "gateway": True,
                            "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}}
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(settings(tmp_path)) as c:
        yield c


def chat_bodies(client: Client) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in client.fake.requests if r.path.endswith("/chat/completions")]


# --------------------------------------------------------------------------- the README example


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    return text[start:text.index("\n## ", start + 3)]


def test_the_readme_workflow_runs_on_the_fake_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    section = readme_section("Workflows")
    (tmp_path / "city.yaml").write_text(section.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    commands = section.split("```bash\n", 1)[1].split("```", 1)[0]
    first = commands.splitlines()[0].split("#")[0].split()
    assert first[:3] == ["cloverleaf", "run", "city.yaml"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CLOVERLEAF_CONFIG", "CLOVERLEAF_BACKEND", "CLOVERLEAF_STORE_URL", "CLOVERLEAF_MODEL"):
        monkeypatch.delenv(name, raising=False)
    from cloverleaf.cli import main

    assert main([*first[1:], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "succeeded" and result["workflow"] == "city-brief"
    assert result["outputs"]["line"].startswith("One line about ")            # fake/echo repeats the prompt
    assert result["outputs"]["country"] == result["state"]["place"]["country"]   # the structured step fed the next
    assert isinstance(result["state"]["embedding"], list) and result["state"]["embedding"]
    assert [s["status"] for s in result["steps"]] == ["ok", "ok", "ok"]
    assert result["state"]["city"] == "Porto"

    # one trace per run: each step is a call in it, with its latency and cost
    assert main(["traces", "--trace", result["run_id"]]) == 0
    table = capsys.readouterr().out
    for step in ("facts", "describe", "vector"):
        assert step in table
    store_calls = _calls(tmp_path / "data" / "cloverleaf" / "cloverleaf.db", result["run_id"])
    assert [c.metadata["step"] for c in store_calls] == ["facts", "describe", "vector"]
    assert all(c.latency_ms is not None for c in store_calls) and store_calls[0].cost is not None

    assert main(["run", "city.yaml", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "nothing will be sent" in plan and "1. facts (llm_call) model fake/chat" in plan

    # and the README's Python example, as written
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.startswith("Hello, Ada! run_")


def test_a_runs_trace_is_shown_whole_and_a_cut_listing_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`traces --trace RUN_ID`, which every run's status line points to, showed at most 20 calls (the
    -n default) with no note: a 25-step run's first five steps were silently missing."""
    from cloverleaf.cli import main

    steps = [{"id": f"s{i:02d}", "type": "llm_call", "model": "fake/echo", "prompt": f"step {i}", "output": f"o{i}"}
             for i in range(1, 26)]
    (tmp_path / "many.json").write_text(json.dumps({"name": "many", "steps": steps}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CLOVERLEAF_CONFIG", "CLOVERLEAF_BACKEND", "CLOVERLEAF_STORE_URL", "CLOVERLEAF_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "many.json", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["traces", "--trace", run_id]) == 0
    out, err = capsys.readouterr()
    shown = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert shown == {s["id"] for s in steps} and err == ""
    assert main(["traces", "--trace", run_id, "-n", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["metadata"]["step"] for line in out.splitlines()] == ["s25", "s24", "s23", "s22", "s21"]
    assert f"showing the newest 5 calls of trace {run_id}; it has more: use -n" in err


def _calls(db: Path, trace_id: str) -> list[Any]:
    from cloverleaf.gateway.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        return store.recent_calls(limit=10, trace_id=trace_id, oldest_first=True)
    finally:
        store.close()


# --------------------------------------------------------------------------- attachments and structure


@pytest.fixture
def image_server(loopback: Callable[[Handle], LoopbackServer]) -> LoopbackServer:
    """Serves one PNG on 127.0.0.1 (at ``/photo.png``) and records the requests."""
    photo = png("photo", 8, 8)
    return loopback(lambda request: Answer(200, photo, {"content-type": "image/png"}))


PHOTO_FLOW = {
    "name": "photo",
    "inputs": {"photo": {"type": "string"}},
    "steps": [
        {"id": "inspect", "type": "llm_call", "model": "fake/vision", "prompt": "What is in this photo?",
         "attachments": [{"type": "image", "source": "{state.photo}", "fetch": "local"}],
         "response_format": {"type": "object", "additionalProperties": False, "required": ["caption", "tags"],
                             "properties": {"caption": {"type": "string"},
                                            "tags": {"type": "array", "items": {"type": "string"}}}},
         "output": "seen"},
        {"id": "story", "type": "llm_call", "model": "fake/echo", "when": "state.seen.caption != ''",
         "prompt": "Caption: {state.seen.caption}; first tag: {state.seen.tags.0}", "output": "story"},
    ],
    "outputs": {"story": "{state.story}", "seen": "{state.seen}"},
}


def test_an_image_from_state_and_a_structured_step_feeding_the_next(tmp_path: Path, image_server: LoopbackServer) -> None:
    s = settings(tmp_path, attachments={"allow_hosts": ("127.0.0.1",)})   # the test image is on loopback
    with Client(s) as client:
        result = run_workflow(PHOTO_FLOW, {"photo": f"{image_server.url}/photo.png"}, client=client)
        first, second = chat_bodies(client)
    assert len(image_server.requests) == 1
    parts = first["messages"][0]["content"]
    image = next(p for p in parts if p["type"] == "image_url")["image_url"]["url"]
    assert image == "data:image/png;base64," + base64.b64encode(png("photo", 8, 8)).decode()
    assert first["response_format"]["type"] == "json_schema"
    seen = result.outputs["seen"]
    assert set(seen) == {"caption", "tags"}
    assert second["messages"][0]["content"] == f"Caption: {seen['caption']}; first tag: {seen['tags'][0]}"
    assert result.outputs["story"] == second["messages"][0]["content"]


def test_local_fetches_go_through_the_ssrf_guard(tmp_path: Path, image_server: LoopbackServer) -> None:
    with Client(settings(tmp_path)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(PHOTO_FLOW, {"photo": f"{image_server.url}/photo.png"}, client=client)
        assert chat_bodies(client) == []
    assert info.value.step == "inspect" and isinstance(info.value.cause, cloverleaf.AttachmentError)
    assert "loopback" in str(info.value) and len(image_server.requests) == 0


# --------------------------------------------------------------------------- validation before any call


def test_the_whole_file_is_checked_before_any_call(client: Client) -> None:
    flow = {
        "inputs": {"topic": "string"},
        "steps": [
            {"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "{inputs.topik}", "output": "a",
             "response_format": {"type": "object", "properties": {"x": {"type": "string"}}}},
            {"id": "b", "type": "llm_call", "model": "fake/chat", "prompt": "{state.a.y} {state.later}",
             "output": "b"},
            {"id": "later", "type": "llm_call", "model": "nosuch/model", "prompt": "hi", "output": "later"},
            {"id": "c", "type": "embed", "model": "simple", "input": "{state.b.field}"},
        ],
        "outputs": {"x": "{state.nothing}"},
    }
    with pytest.raises(WorkflowError) as info:
        run_workflow(flow, {"topic": "t"}, client=client)
    text = str(info.value)
    assert "steps[0] (a).prompt: {inputs.topik} names no declared input" in text
    assert "steps[1] (b).prompt: {state.a.y}: the response_format of state.a has no property 'y'" in text
    assert "steps[1] (b).prompt: {state.later}: no input or earlier step's output is named 'later'" in text
    assert "steps[3] (c).input: {state.b.field}: state.b is the step's text" in text
    assert "outputs.x: {state.nothing}" in text
    assert client.fake.requests == []


def test_models_and_capabilities_are_checked_before_any_call(tmp_path: Path) -> None:
    flow = {"steps": [
        {"id": "ok", "type": "llm_call", "model": "fake/chat", "prompt": "hi", "output": "x"},
        {"id": "listen", "type": "llm_call", "model": "groq/llama-3.1-8b-instant", "prompt": "transcribe",
         "attachments": [{"type": "audio", "source": "clip.wav"}]},
        {"id": "nokey", "type": "llm_call", "model": "anthropic/claude-haiku-4-5", "prompt": "hi"},
        {"id": "vec", "type": "embed", "model": "anthropic/claude-haiku-4-5", "input": "x"},
    ]}
    with Client(settings(tmp_path, env={"GROQ_API_KEY": "gsk_test"})) as client:
        with pytest.raises(WorkflowError) as info:
            run_workflow(flow, client=client)
        assert client.fake.requests == []
    text = str(info.value)
    assert "steps[1] (listen): target groq/llama-3.1-8b-instant" in text and "audio" in text
    assert "steps[2] (nokey).model: 'anthropic/claude-haiku-4-5'" in text and "ANTHROPIC_API_KEY" in text


@pytest.mark.parametrize(("flow", "message"), [
    ({"steps": []}, "steps: must be a non-empty list"),
    ({"steps": [{"id": "a", "type": "tool", "prompt": "x"}]}, "type: must be one of llm_call, embed"),
    ({"steps": [{"id": "a", "type": "llm_call"}]}, "steps[0] (a).prompt: is required"),
    ({"steps": [{"id": "a", "type": "llm_call", "prompt": "x", "when": "state.x = 1"}]}, "when: cannot read"),
    ({"steps": [{"id": "a", "type": "llm_call", "prompt": "x", "attachments": [{"source": "y"}]}]},
     "attachments[0].type: must be one of image, pdf, audio"),
    ({"steps": [{"id": "a", "type": "llm_call", "prompt": "x", "tempreature": 1}]}, "unknown key 'tempreature'"),
    ({"inputs": {"n": {"type": "integer", "default": "many"}}, "steps": [{"id": "a", "type": "llm_call",
                                                                          "prompt": "x"}]}, "expected an integer"),
    ({"privacy": "mostly", "steps": [{"id": "a", "type": "llm_call", "prompt": "x"}]}, "privacy: must be one of"),
])
def test_schema_errors_say_where_and_what(flow: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowError, match=_escape(message)):
        load_workflow(flow)


def test_files_and_inputs_that_used_to_end_in_a_traceback(tmp_path: Path, client: Client) -> None:
    """Each is a WorkflowError or ConfigError naming the problem, before any call."""
    on_key = tmp_path / "on.yaml"          # YAML 1.1 reads `on:` as True: sorting keys for the digest failed
    on_key.write_text("steps:\n  - {id: a, type: llm_call, model: fake/chat, prompt: x,\n"
                      "     response_format: {type: object, properties: {name: {type: string}, on: {type: boolean}}}}\n")
    with pytest.raises(WorkflowError, match="response_format: key True is not text.*quote it"):
        load_workflow(on_key)
    assert load_workflow({"steps": [{"id": "a", "type": "llm_call", "prompt": "x"}],
                          "outputs": {True: "yes", "name": "x"}}).digest
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"steps:\n  - {id: a, type: llm_call, prompt: caf\xe9}\n")
    with pytest.raises(WorkflowError, match="not UTF-8 text"):
        load_workflow(latin1)
    flow = {"inputs": {"n": "integer", "x": "number"},
            "steps": [{"id": "a", "type": "llm_call", "model": "fake/echo", "prompt": "{inputs.n} {inputs.x}"}]}
    for given in ({"n": "Infinity", "x": 1}, {"n": 1, "x": "NaN"}, {"n": 1, "x": float("inf")}):
        with pytest.raises(WorkflowError, match="expected a finite"):
            run_workflow(flow, given, client=client)
    (tmp_path / "afile").write_text("")
    with pytest.raises(cloverleaf.ConfigError, match="cannot keep run state in .*afile.*must be a folder"):
        run_workflow(flow, {"n": 1, "x": 2}, client=client, run_dir=tmp_path / "afile")
    assert client.fake.requests == []


def test_an_embed_step_takes_a_provider_name_alone_as_embed_does(tmp_path: Path) -> None:
    """README: `embed("openai", ...)` is OpenAI's default embedding model; so is `model: openai`."""
    flow = {"steps": [{"id": "v", "type": "embed", "model": "openai", "input": "hello", "output": "v"},
                      {"id": "w", "type": "embed", "model": "simple", "input": "hello", "output": "w"}],
            "outputs": {"v": "{state.v}"}}
    with Client(settings(tmp_path, backend="fake")) as client:
        plan = plan_workflow(flow, client=client)
        assert "1. v (embed) model openai/text-embedding-3-small" in plan
        assert "2. w (embed) model simple/default" in plan
        assert run_workflow(flow, client=client).outputs["v"]


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_inputs_are_typed_and_required(client: Client) -> None:
    flow = {"inputs": {"n": {"type": "integer"}, "loud": {"type": "boolean", "default": False}},
            "steps": [{"id": "a", "type": "llm_call", "model": "fake/echo", "prompt": "{inputs.n} {inputs.loud}",
                       "output": "a"}], "outputs": {"a": "{state.a}"}}
    with pytest.raises(WorkflowError, match="input 'n' \\(integer\\) is required"):
        run_workflow(flow, client=client)
    with pytest.raises(WorkflowError, match="input 'colour' is not declared"):
        run_workflow(flow, {"n": "2", "colour": "red"}, client=client)
    assert run_workflow(flow, {"n": "2", "loud": "true"}, client=client).outputs == {"a": "2 true"}


# --------------------------------------------------------------------------- failure and resume


RESUMABLE = {
    "name": "two-steps",
    "steps": [
        {"id": "first", "type": "llm_call", "model": "fake/chat", "prompt": "start",
         "response_format": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
         "output": "first"},
        {"id": "second", "type": "llm_call", "model": "fake/echo+fail-500x1", "prompt": "n was {state.first.n}",
         "output": "second"},
    ],
    "outputs": {"second": "{state.second}"},
}


def test_a_failed_step_is_named_and_the_run_resumes_from_it(tmp_path: Path, client: Client) -> None:
    with pytest.raises(WorkflowFailed) as info:
        run_workflow(RESUMABLE, client=client)
    failed = info.value
    assert failed.step == "second" and failed.run_id.startswith("run_")
    assert "failed at step 'second'" in str(failed) and f"resume={failed.run_id!r}" in str(failed)
    saved = json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{failed.run_id}.json").read_text())
    assert saved["status"] == "failed" and saved["failed_step"] == "second" and saved["done"] == ["first"]
    n = saved["state"]["first"]["n"]
    assert len(chat_bodies(client)) == 2

    plan = plan_workflow(RESUMABLE, resume=failed.run_id, client=client)   # --resume with --dry-run
    assert f"resuming run {failed.run_id}: steps finished and kept: first; it goes on from second" in plan
    assert len(chat_bodies(client)) == 2                                  # a plan sends nothing
    with pytest.raises(WorkflowError, match="keeps the inputs it started with"):
        plan_workflow(RESUMABLE, {"topic": "x"}, resume=failed.run_id, client=client)

    result = run_workflow(RESUMABLE, resume=failed.run_id, client=client)
    assert result.run_id == failed.run_id and result.resumed and not result.changed
    assert [s.status for s in result.steps] == ["earlier", "ok"]
    assert result.outputs == {"second": f"n was {n}"}                 # the state it had
    bodies = chat_bodies(client)
    assert len(bodies) == 3 and bodies[2]["model"] == "echo+fail-500x1"   # "first" did not run again
    trace = client.traces.get(failed.run_id)
    assert trace is not None and trace.completed
    assert [(c.metadata["step"], c.status) for c in trace.calls] == [("first", "ok"), ("second", "error"),
                                                                     ("second", "ok")]
    with pytest.raises(WorkflowError, match="already succeeded"):
        run_workflow(RESUMABLE, resume=failed.run_id, client=client)


def test_a_missing_key_at_run_time_names_the_step_template_and_key(client: Client) -> None:
    flow = {"inputs": {"o": {"type": "object", "default": {"k": 1}}}, "steps": [
        {"id": "uses", "type": "llm_call", "model": "fake/echo", "prompt": "about {inputs.o.z}", "output": "u"},
    ]}
    with pytest.raises(WorkflowFailed) as info:
        run_workflow(flow, client=client)
    assert info.value.step == "uses"
    assert "prompt (about {inputs.o.z}) {inputs.o.z}: key 'z' is not in inputs.o (it has: k)" in str(info.value)
    assert chat_bodies(client) == []


def test_a_skipped_steps_output_is_null_and_the_readme_example_runs_either_way(tmp_path: Path,
                                                                               client: Client) -> None:
    """The README's `describe` step may be skipped: later steps read its output as null (empty
    text), as `when:` does, instead of failing after earlier steps were paid for."""
    text = readme_section("Workflows").split("```yaml\n", 1)[1].split("```", 1)[0]
    skipping = text.replace('when: state.place.country != ""', 'when: state.place.country == "Atlantis"')
    assert skipping != text
    (tmp_path / "city.yaml").write_text(skipping, encoding="utf-8")
    result = run_workflow(str(tmp_path / "city.yaml"), client=client)
    assert [s.status for s in result.steps] == ["ok", "skipped", "skipped"]
    assert result.outputs["line"] is None and result.state["line"] is None and result.state["embedding"] is None
    flow = {"steps": [
        {"id": "maybe", "type": "llm_call", "model": "fake/chat", "prompt": "x", "when": "false", "output": "m",
         "response_format": {"type": "object", "properties": {"name": {"type": "string"}}}},
        {"id": "uses", "type": "llm_call", "model": "fake/echo", "prompt": "about [{state.m}] [{state.m.name}]",
         "output": "u"}], "outputs": {"u": "{state.u}", "m": "{state.m}"}}
    assert run_workflow(flow, client=client).outputs == {"u": "about [] []", "m": None}


def test_an_unexpected_error_in_a_step_fails_the_run_with_its_reason(tmp_path: Path, client: Client,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from cloverleaf.workflows.runner import Runner

    def broken(*_: Any) -> Any:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(Runner, "_chat_request", broken)
    with pytest.raises(WorkflowFailed, match="failed at step 'first'.*TypeError: unhashable") as info:
        run_workflow(RESUMABLE, client=client)
    assert isinstance(info.value.cause, TypeError)
    saved = json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{info.value.run_id}.json").read_text())
    assert saved["status"] == "failed" and "TypeError: unhashable" in saved["error"]


def test_a_resumed_run_reports_the_whole_runs_cost(tmp_path: Path) -> None:
    from cloverleaf._config import ModelEntry

    priced = [ModelEntry(name=name, provider="fake", identifier=ident, input_cost_per_1k=1.0, output_cost_per_1k=2.0)
              for name, ident in (("pricey", "echo"), ("pricey-flaky", "echo+fail-500x1"))]
    flow = {"name": "rc", "steps": [
        {"id": "a", "type": "llm_call", "model": "pricey", "prompt": "first step", "output": "a"},
        {"id": "b", "type": "llm_call", "model": "pricey-flaky", "prompt": "second {state.a}", "output": "b"}]}
    with Client(settings(tmp_path, models=priced)) as client:
        with pytest.raises(WorkflowFailed) as info:
            run_workflow(flow, client=client)
        result = run_workflow(flow, resume=info.value.run_id, client=client)
        client.gateway.store.flush()
        calls = client.traces.get(info.value.run_id).calls          # type: ignore[union-attr]
    earlier, resumed = result.steps
    assert (earlier.status, earlier.model, earlier.target) == ("earlier", "pricey", "pricey")
    assert earlier.cost and resumed.cost and result.cost == pytest.approx(earlier.cost + resumed.cost)
    assert result.cost == pytest.approx(sum(c.cost or 0.0 for c in calls))        # what the trace recorded
    assert result.as_dict()["cost"] == result.cost


def test_a_run_in_progress_cannot_be_resumed_from_another_process(tmp_path: Path, client: Client) -> None:
    """The run's lock is held while it runs (here: by this process, as another would hold it);
    a resume waits for nothing and runs nothing, and the lock goes with its holder."""
    import os

    from cloverleaf.workflows.runs import RunStore

    with pytest.raises(WorkflowFailed) as info:
        run_workflow(RESUMABLE, client=client)
    run_id = info.value.run_id
    runs = RunStore(tmp_path / "data" / "cloverleaf" / "runs")
    with runs.lock(run_id):
        with pytest.raises(cloverleaf.ConfigError, match=f"run {run_id} is in progress \\(pid {os.getpid()}\\)"):
            run_workflow(RESUMABLE, resume=run_id, client=client)
    assert len(chat_bodies(client)) == 2                                  # nothing ran twice
    assert run_workflow(RESUMABLE, resume=run_id, client=client).status == "succeeded"
    assert sorted(p.suffix for p in runs.directory.iterdir()) == [".json"]   # no lock file left behind


async def test_an_answer_that_arrived_as_the_run_was_interrupted_is_kept(tmp_path: Path) -> None:
    """A sync client's call cannot be stopped: it is waited for and its (paid) answer saved, so a
    resume goes on from the next step."""
    import asyncio

    from cloverleaf.workflows import workflow_runner

    flow = {"name": "slowish", "steps": [
        {"id": "paid", "type": "llm_call", "model": "fake/echo+slow-300ms", "prompt": "one", "output": "one"},
        {"id": "next", "type": "llm_call", "model": "fake/echo", "prompt": "two {state.one}", "output": "two"}]}
    with Client(settings(tmp_path)) as client:
        runner = workflow_runner(flow, client)
        task = asyncio.create_task(runner.run())
        for _ in range(2000):                       # until the first step's request is in flight
            if client.fake.requests or task.done():
                break
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        saved = json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{runner.run_id}.json").read_text())
        assert saved["status"] == "interrupted" and saved["done"] == ["paid"] and saved["failed_step"] == "next"
        assert saved["state"]["one"] == "one" and len(client.fake.requests) == 1
        result = await workflow_runner(flow, client).run(resume=runner.run_id)
        assert [s.status for s in result.steps] == ["earlier", "ok"] and len(client.fake.requests) == 2


async def test_the_async_twin_with_an_async_client(tmp_path: Path) -> None:
    async with cloverleaf.AsyncClient(settings(tmp_path)) as client:
        flow = {"steps": [RESUMABLE["steps"][0]], "outputs": {"n": "{state.first.n}"}}
        result = await cloverleaf.arun_workflow(flow, client=client)
    assert isinstance(result.outputs["n"], int) and result.status == "succeeded"


# --------------------------------------------------------------------------- privacy and YAML


def test_a_local_only_workflow_refuses_a_cloud_step_before_any_call(tmp_path: Path) -> None:
    cloud = CountingUpstream("cloud")
    try:
        s = settings(tmp_path, env={"OPENAI_API_KEY": "sk-test", "XDG_DATA_HOME": str(tmp_path / "d")},
                     providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)},
                     privacy={"classes": {"confidential": "local-only"}})
        flow = {"name": "diary", "privacy": "local-only", "steps": [
            {"id": "local", "type": "llm_call", "model": "fake/echo", "prompt": "x", "output": "a"},
            {"id": "cloud", "type": "llm_call", "model": "openai/gpt-4o-mini", "prompt": "{state.a}"}]}
        with Client(s) as client:
            with pytest.raises(PrivacyViolation) as info:
                run_workflow(flow, client=client)
            assert "workflow diary, steps[1] (cloud)" in str(info.value)
            assert chat_bodies(client) == []
            # the same file without the policy, then with it from the caller (--local-only)
            open_flow = {**flow, "privacy": None}
            with pytest.raises(PrivacyViolation, match="--local-only"):
                run_workflow(open_flow, client=client, privacy="local-only")
            labelled = {**open_flow, "data_class": "confidential"}      # mapped in [privacy.classes]
            with pytest.raises(PrivacyViolation, match="data class 'confidential'"):
                run_workflow(labelled, client=client)
            plan = plan_workflow(open_flow, client=client)
            assert "     targets: openai/gpt-4o-mini [openai]" in plan and not any("privacy" in line for line in plan)
        assert cloud.connections == 0
    finally:
        cloud.close()


def test_yaml_needs_its_extra_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("steps: []\n")
    monkeypatch.setitem(__import__("sys").modules, "yaml", None)
    with pytest.raises(ImportError, match=r"pip install 'cloverleaf\[workflows\]'"):
        load_workflow(path)
    (tmp_path / "w.json").write_text(json.dumps({"steps": [{"id": "a", "type": "llm_call", "prompt": "x"}]}))
    assert load_workflow(tmp_path / "w.json").name == "w"


def test_a_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Windows editors save UTF-8 with a BOM; json.loads refused it ("Unexpected UTF-8 BOM")."""
    body = json.dumps({"steps": [{"id": "a", "type": "llm_call", "prompt": "café"}]})
    for name in ("bom.json", "bom.yaml"):
        (tmp_path / name).write_text(body, encoding="utf-8-sig")
        assert load_workflow(tmp_path / name).steps[0].prompt.text == "café"     # type: ignore[union-attr]


async def test_a_run_cancelled_mid_step_is_saved_as_resumable(tmp_path: Path) -> None:
    import asyncio

    flow = {"name": "slow", "steps": [
        {"id": "quick", "type": "llm_call", "model": "fake/echo", "prompt": "one", "output": "one"},
        {"id": "stuck", "type": "llm_call", "model": "fake/echo+slow-30s", "prompt": "two", "output": "two"}]}
    async with cloverleaf.AsyncClient(settings(tmp_path, timeout=60.0)) as client:
        task = asyncio.create_task(cloverleaf.arun_workflow(flow, client=client))
        for _ in range(2000):                       # until the second step's request is in flight
            if len(client.fake.requests) == 2 or task.done():
                break
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [saved] = [json.loads(p.read_text()) for p in (tmp_path / "data" / "cloverleaf" / "runs").glob("*.json")]
    assert saved["status"] == "interrupted" and saved["failed_step"] == "stuck" and saved["done"] == ["quick"]
    assert saved["state"]["one"] == "one"


def test_a_relative_attachment_is_found_next_to_the_workflow_file(tmp_path: Path, client: Client,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`source: cat.png` in flows/r.json is flows/cat.png, wherever the run is started from."""
    import shutil

    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / "media" / "image.png", flows / "cat.png")
    (flows / "r.json").write_text(json.dumps({"steps": [
        {"id": "look", "type": "llm_call", "model": "fake/chat", "prompt": "what is it?", "output": "seen",
         "attachments": [{"type": "image", "source": "cat.png", "fetch": "local"}]}]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_workflow(str(flows / "r.json"), client=client)
    assert [s.status for s in result.steps] == ["ok"]
    sent = chat_bodies(client)[-1]["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
               for part in sent)


def test_attachment_paths_are_checked_first_and_only_next_to_the_workflow_file(
        tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed path that is not there fails before the first (paid) step; a relative one is
    never taken from the current directory instead."""
    import shutil

    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / "media" / "image.png", tmp_path / "dog.png")
    (flows / "w.json").write_text(json.dumps({"steps": [
        {"id": "paid", "type": "llm_call", "model": "fake/echo", "prompt": "first", "output": "a"},
        {"id": "look", "type": "llm_call", "model": "fake/chat", "prompt": "describe",
         "attachments": [{"type": "image", "source": "dog.png"}]},
        {"id": "abs", "type": "llm_call", "model": "fake/chat", "prompt": "describe",
         "attachments": [{"type": "image", "source": str(tmp_path / "missing.png")}]},
        {"id": "later", "type": "llm_call", "model": "fake/chat", "prompt": "describe",
         "attachments": [{"type": "image", "source": "{state.a}"}]}]}))      # from state: known at run time
    monkeypatch.chdir(tmp_path)                                          # ./dog.png is here, not in flows/
    for check in (plan_workflow, run_workflow):
        with pytest.raises(WorkflowError) as info:
            check(str(flows / "w.json"), client=client)
        assert info.value.problems == [
            f"steps[1] (look).attachments[0].source: no file {flows / 'dog.png'} (a relative path is a file next "
            "to the workflow file)",
            f"steps[2] (abs).attachments[0].source: no file {tmp_path / 'missing.png'}"]
    assert client.fake.requests == []


def test_a_run_whose_step_cost_is_unknown_has_no_total() -> None:
    """A step answered by a model with no price, or without reported usage, has cost None: the
    run's total is then unknown too, not the other steps' sum (which would understate it)."""
    from cloverleaf.workflows.runner import StepResult, WorkflowResult

    def run(*steps: StepResult) -> WorkflowResult:
        return WorkflowResult("r1", None, "w", "ok", {}, {}, list(steps))

    priced = StepResult("a", "chat", "ok", "m", "t/a", 1.0, 0.25)
    unknown = StepResult("b", "chat", "ok", "m", "t/b", 1.0, None)
    skipped = StepResult("c", "chat", "skipped", "m")
    assert run(priced, skipped).cost == 0.25
    assert run(priced, unknown, skipped).cost is None
    assert run(priced, unknown).as_dict()["cost"] is None


def test_a_failed_run_names_the_resume_command_with_its_own_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The failure's message names the file and the run id; a run with its own run folder (or
    config) is resumed only with those too, so the CLI prints the whole command (its privacy is
    in the run file)."""
    from cloverleaf.cli import main

    (tmp_path / "wf.yaml").write_text("name: breaks\nsteps:\n"
                                      "  - {id: a, type: llm_call, model: fake/fail-400, prompt: hi, output: a}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    runs = tmp_path / "runs"
    assert main(["run", "wf.yaml", "--run-dir", str(runs)]) == 1
    err = capsys.readouterr().err
    [record] = list(runs.glob("*.json"))
    run_id = json.loads(record.read_text())["run_id"]
    assert f"with this run's options: `cloverleaf run wf.yaml --resume {run_id} --run-dir {runs}`" in err
    assert main(["run", "wf.yaml"]) == 1          # the default run folder: the message's command is whole
    assert "with this run's options" not in capsys.readouterr().err


def test_a_toml_workflow_file_is_said_to_be_the_wrong_format(tmp_path: Path) -> None:
    """A .toml file was read as YAML and failed as "not valid YAML ... found '<scalar>'" at its
    first `=`, which named neither the format nor the ones that work."""
    path = tmp_path / "city.toml"
    path.write_text('name = "city"\n[[steps]]\nid = "a"\ntype = "llm_call"\nprompt = "x"\n')
    with pytest.raises(WorkflowError, match=r"YAML \(\.yaml, \.yml\) or JSON \(\.json\), not TOML") as info:
        load_workflow(path)
    assert "not valid YAML" not in str(info.value)
