"""Run a workflow: validate everything, then each step in order, one trace per run.

Every call goes through the client's gateway with the run's trace id, so each step is a
call record (target, attempts, tokens, cost, latency) under one trace: ``cloverleaf traces
--trace RUN_ID``. The workflow's privacy (``privacy:``/``data_class:`` in the file, tightened
by the caller's: a caller's data class replaces the file's only when its policy is stricter)
travels on every call's context, where the gateway combines it with the route's, the key's
and ``[privacy] default`` — the strictest wins — and it is checked up front too, so a step
that could only reach the cloud fails validation, not halfway through the run. The run file
keeps that privacy, so a resume is held to it with no flag repeated (a run started
``--local-only`` stays local-only).

After each step the run's state is saved (:mod:`.runs`); a failed run raises
:class:`~cloverleaf.WorkflowFailed` naming the step and the run id, and ``resume=RUN_ID``
starts again at that step with the state it had. Any error in a step — ours included — fails
the run that way; only cancellation (Ctrl-C) marks it ``interrupted``, and an answer that had
already arrived is kept first (:class:`_Caller`). A step skipped by ``when:`` sets its output
to null, which later templates read as empty text.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .._context import CallContext
from .._errors import CloverleafError, WorkflowError, WorkflowFailed
from .._privacy import Decision, PrivacyConfig, stricter
from .._types import Attachment, EmbeddingRequest
from .condition import ConditionError
from .runs import RunRecord, RunStore, new_run_id
from .schema import Step, Workflow, coerce
from .template import TemplateError
from .validate import (
    Planned,
    attachment_file_problems,
    attachment_path,
    check_references,
    check_targets,
    describe,
    step_model,
)


@dataclass(slots=True)
class StepResult:
    id: str
    type: str
    status: str                          # ok | skipped | failed | earlier (done before a resume)
    model: str | None = None
    target: str | None = None
    latency_ms: float | None = None
    cost: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


@dataclass(slots=True)
class WorkflowResult:
    run_id: str
    trace_id: str | None
    workflow: str
    status: str
    outputs: dict[str, Any]
    state: dict[str, Any]
    steps: list[StepResult] = field(default_factory=list)
    resumed: bool = False
    #: The file changed since the run being resumed started (its steps may not line up).
    changed: bool = False

    @property
    def cost(self) -> float | None:
        """What the answered steps cost (those done before a resume included); None when one of
        them has no known cost (no price, no usage reported): a total without it would understate
        the run."""
        total = 0.0
        for s in self.steps:
            if s.target is not None:
                if s.cost is None:
                    return None
                total += s.cost
        return total

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost"] = self.cost
        return out


class _Caller:
    """The client's gateway, awaited the same way whether the client is sync or async.

    When the run is interrupted (Ctrl-C, a cancelled task) during a call, an async call is
    cancelled at once; a sync call runs in a thread that cannot be stopped, so its answer is
    waited for. An answer that arrives either way is kept — it is paid for — and
    :attr:`interrupted` holds the interruption for the runner to raise once the step is saved.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.gateway = client.gateway
        self.is_async = hasattr(client, "__aenter__")
        self.interrupted: BaseException | None = None

    async def chat(self, model: str, req: Any, ctx: CallContext) -> Any:
        if self.is_async:
            return await self._settle(self.gateway.achat(model, req, ctx))
        return await self._settle(asyncio.to_thread(self.gateway.chat, model, req, ctx))

    async def embed(self, model: str, req: Any, ctx: CallContext) -> Any:
        if self.is_async:
            return await self._settle(self.gateway.aembed(model, req, ctx))
        return await self._settle(asyncio.to_thread(self.gateway.embed, model, req, ctx))

    async def _settle(self, call: Any) -> Any:
        task = asyncio.ensure_future(call)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if self.is_async and not task.done():
                task.cancel()
            try:
                answer = await task
            except BaseException:  # noqa: BLE001 - cancelled, or failed: nothing to keep
                raise exc from None
            self.interrupted = exc
            return answer


class Runner:
    def __init__(self, workflow: Workflow, client: Any, runs: RunStore, *, privacy: str | None = None,
                 data_class: str | None = None) -> None:
        self.wf = workflow
        self.client = client
        self.runs = runs
        self.privacy = _stricter(workflow.privacy, privacy)
        self.privacy_rule = (f"the run's privacy option (--local-only) on workflow {workflow.name!r}"
                             if privacy == "local-only" else f"workflow {workflow.name!r} (privacy: in the file)")
        try:
            self.data_class = _stricter_class(client.engine.privacy.config, workflow.data_class, data_class)
        except CloverleafError as exc:
            raise WorkflowError(workflow.source, [f"data_class: {exc}"]) from None
        self.caller = _Caller(client)
        self._cause: BaseException | None = None
        #: The run's id once it has started (its state is saved): what to resume after an interruption.
        self.run_id: str | None = None
        #: the workflow file's folder, where relative attachment paths are found (None: not from a file)
        self._folder = os.path.dirname(os.path.abspath(workflow.source)) if os.path.isfile(workflow.source) else None

    # -- before any call ----------------------------------------------------------------
    def decision(self) -> Decision:
        config = self.client.engine.privacy.config
        try:
            decided: Decision = config.decide(privacy=self.privacy, data_class=self.data_class,
                                              privacy_rule=self.privacy_rule)
            return decided
        except CloverleafError as exc:
            raise WorkflowError(self.wf.source, [f"data_class: {exc}"]) from None

    def validate(self) -> list[Planned]:
        check_references(self.wf)
        missing = attachment_file_problems(self.wf, self._folder)
        decision = self.decision()
        try:
            planned = check_targets(self.wf, self.client, decision,
                                    lambda route, d: d.tighten(route.privacy, f"route {route.name!r}"))
        except WorkflowError as exc:
            raise WorkflowError(self.wf.source, missing + exc.problems) from None
        if missing:
            raise WorkflowError(self.wf.source, missing)
        return planned

    def plan(self, inputs: Mapping[str, Any] | None, resume: str | None = None) -> list[str]:
        """What a run would do; with ``resume``, what resuming that run would do (its own
        inputs, the steps it finished kept), checked as the resume itself checks it."""
        record = self._resumed(resume, inputs)[0] if resume is not None else None   # its privacy first
        planned = self.validate()
        head = [f"workflow {self.wf.name} ({self.wf.source}): {len(self.wf.steps)} steps; nothing will be sent"]
        if record is not None:
            values = record.inputs
            head.append(f"resuming run {record.run_id}: steps finished and kept: {', '.join(record.done) or 'none'}; "
                        f"it goes on from {record.failed_step or 'the first step not finished'}")
        else:
            values = self.inputs(inputs)
        head.append("inputs: " + (", ".join(f"{k}={_short(v)}" for k, v in values.items()) or "none"))
        outputs = [f"outputs: {', '.join(f'{k} = {t.text}' for k, t in self.wf.outputs.items()) or 'none'}"]
        return head + describe(planned, self.decision()) + outputs

    def inputs(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        given = dict(given or {})
        problems: list[str] = []
        declared = {spec.name for spec in self.wf.inputs}
        for name in sorted(set(given) - declared):
            problems.append(f"input {name!r} is not declared; inputs: {', '.join(sorted(declared)) or 'none'}")
        values: dict[str, Any] = {}
        for spec in self.wf.inputs:
            if spec.name in given:
                try:
                    values[spec.name] = coerce(spec.type, given[spec.name])
                except ValueError as exc:
                    problems.append(f"input {spec.name!r}: {exc}")
            elif spec.default is not None or not spec.required:
                values[spec.name] = spec.default
            else:
                problems.append(f"input {spec.name!r} ({spec.type}) is required: pass --input {spec.name}=...")
        if problems:
            raise WorkflowError(self.wf.source, problems)
        return values

    # -- running ------------------------------------------------------------------------
    async def run(self, inputs: Mapping[str, Any] | None = None, *, resume: str | None = None) -> WorkflowResult:
        if resume is not None:
            with self.runs.lock(resume):            # before loading: no other process is writing it
                record, changed = self._resumed(resume, inputs)
                await asyncio.to_thread(self.validate)      # under the run's own privacy, off the event loop
                return await self._run(record, resumed=True, changed=changed)
        await asyncio.to_thread(self.validate)      # may look up hosts (privacy): off the event loop
        values = self.inputs(inputs)
        record = RunRecord(new_run_id(), self.wf.name, self.wf.source, self.wf.digest, inputs=values,
                           state=dict(values), created_at=time.time(), privacy=self.privacy,
                           data_class=self.data_class)
        with self.runs.lock(record.run_id):
            record.trace_id = record.run_id
            self.caller.gateway.traces.create({"workflow": self.wf.name, "source": self.wf.source}, id=record.trace_id)
            return await self._run(record, resumed=False, changed=False)

    async def _run(self, record: RunRecord, *, resumed: bool, changed: bool) -> WorkflowResult:
        result = WorkflowResult(record.run_id, record.trace_id, self.wf.name, "running", {}, record.state,
                                resumed=resumed, changed=changed)
        record.status, record.failed_step, record.error = "running", None, None
        self.runs.save(record)
        self.run_id = record.run_id
        for step in self.wf.steps:
            if step.id in record.done:
                result.steps.append(_earlier(step, record))
                continue
            self._stop_if_interrupted(record, step.id)
            try:
                outcome = await self._step(step, record)
            except BaseException:           # cancelled or interrupted mid-step: resumable from here
                self._fail(record, step.id, "interrupted", status="interrupted")
                raise
            result.steps.append(outcome)
            if outcome.status == "failed":
                self._fail(record, step.id, outcome.error or "")
                raise WorkflowFailed(self._failure(record, step, outcome.error), run_id=record.run_id, step=step.id,
                                     cause=self._cause)
            record.done.append(step.id)
            record.steps.append(asdict(outcome))
            self.runs.save(record)
        self._stop_if_interrupted(record, "outputs")
        result.outputs = self._outputs(record)
        record.status = result.status = "succeeded"
        self.runs.save(record)
        self.caller.gateway.traces.complete(record.trace_id)
        return result

    def _stop_if_interrupted(self, record: RunRecord, where: str) -> None:
        """Raise an interruption that came while the last step's answer was arriving, now that the
        answer is saved: the run is resumable from ``where`` and that step is not paid for twice."""
        interrupted = self.caller.interrupted
        if interrupted is not None:
            self._fail(record, where, "interrupted", status="interrupted")
            raise interrupted

    def _resumed(self, run_id: str, inputs: Mapping[str, Any] | None) -> tuple[RunRecord, bool]:
        record = self.runs.load(run_id)
        if record.workflow != self.wf.name:
            raise WorkflowError(self.wf.source, [f"run {run_id} is of workflow {record.workflow!r}, "
                                                 f"not {self.wf.name!r}"])
        if record.status == "succeeded":
            raise WorkflowError(self.wf.source, [f"run {run_id} already succeeded; start a new run instead"])
        if inputs:
            raise WorkflowError(self.wf.source, [f"a resumed run keeps the inputs it started with "
                                                 f"({', '.join(record.inputs) or 'none'}); do not pass inputs"])
        missing = [s for s in record.done if self.wf.step(s) is None]
        if missing:
            raise WorkflowError(self.wf.source, [f"run {run_id} finished step(s) {', '.join(missing)}, which the "
                                                 "workflow no longer has; start a new run"])
        self._hold_to(record)
        self._add_new_inputs(record)
        record.resumes += 1
        return record, record.digest != self.wf.digest

    def _hold_to(self, record: RunRecord) -> None:
        """Tighten this resume with the privacy and data class the run started with: its state holds
        data that was only ever allowed where they allowed (a run file from before they were saved
        has neither, and is held to what this resume was given, as it always was)."""
        if record.privacy == "local-only" and self.privacy != "local-only":
            self.privacy = "local-only"
            self.privacy_rule = f"run {record.run_id} of workflow {self.wf.name!r}, which started local-only"
        try:
            self.data_class = _stricter_class(self.client.engine.privacy.config, record.data_class, self.data_class)
        except CloverleafError as exc:
            raise WorkflowError(self.wf.source, [f"run {record.run_id} started with data_class "
                                                 f"{record.data_class!r}: {exc}"]) from None
        record.privacy, record.data_class = self.privacy, self.data_class

    def _add_new_inputs(self, record: RunRecord) -> None:
        """An input declared since the run started takes its default (inputs cannot be passed to a
        resume); one that has none cannot be resumed into: said now, before any call."""
        problems = []
        for spec in self.wf.inputs:
            if spec.name in record.inputs:
                continue
            if spec.default is not None or not spec.required:
                record.inputs[spec.name] = spec.default
                record.state.setdefault(spec.name, spec.default)     # state starts as the inputs
            else:
                problems.append(f"input {spec.name!r} ({spec.type}) was declared after run {record.run_id} started "
                                "and has no default; a resumed run keeps its inputs, so give it a default in the "
                                "file, or start a new run")
        if problems:
            raise WorkflowError(self.wf.source, problems)

    async def _step(self, step: Step, record: RunRecord) -> StepResult:
        self._cause = None
        scopes = {"inputs": record.inputs, "state": record.state}
        model = self._model(step)
        try:
            if step.when is not None and not step.when.evaluate(scopes):
                if step.output is not None:     # null, as when: reads it: later steps render it as empty text
                    record.state[step.output] = None
                return StepResult(step.id, step.type, "skipped", model)
            ctx = CallContext(trace_id=record.trace_id, privacy=self.privacy, data_class=self.data_class,
                              metadata={"workflow": self.wf.name, "run_id": record.run_id, "step": step.id})
            if step.type == "embed":
                texts = [t.render(scopes) for t in step.inputs]
                resp = await self.caller.embed(model, EmbeddingRequest(model=model, inputs=texts,
                                                                       dimensions=step.dimensions), ctx)
                value: Any = resp.vectors[0] if step.single_input else resp.vectors
            else:
                resp = await self.caller.chat(model, self._chat_request(step, model, scopes), ctx)
                value = resp.parsed if step.response_format is not None else resp.content
        except TemplateError as exc:
            self._cause = exc
            return StepResult(step.id, step.type, "failed", model, error=f"a template refers to a missing key: {exc}")
        except ConditionError as exc:
            self._cause = exc
            return StepResult(step.id, step.type, "failed", model, error=f"when: {exc}")
        except Exception as exc:  # noqa: BLE001 - a CloverleafError, or a fault of ours: the run fails, resumable
            self._cause = exc
            return StepResult(step.id, step.type, "failed", model, error=f"{type(exc).__name__}: {exc}")
        if step.output is not None:
            record.state[step.output] = value
        usage = resp.usage
        return StepResult(step.id, step.type, "ok", model, resp.metadata.target, resp.metadata.latency_ms, resp.cost,
                          usage.input_tokens if usage else 0, usage.output_tokens if usage else 0)

    def _chat_request(self, step: Step, model: str, scopes: Mapping[str, Any]) -> Any:
        from .._options import build_request

        options: dict[str, Any] = {}
        if step.system is not None:
            options["system"] = _rendered(step.system, "system", scopes)
        attachments = []
        for i, spec in enumerate(step.attachments):
            source = _value(spec.source, f"attachments[{i}].source", scopes)
            if not isinstance(source, str) or not source:
                raise CloverleafError(f"attachments[{i}].source ({spec.source.text}) must be text — a path, URL, "
                                      f"data URL or base64 — got {type(source).__name__}")
            attachments.append(Attachment(
                source=attachment_path(source, self._folder) or source, type=spec.type,  # type: ignore[arg-type]
                media_type=spec.media_type, fetch=spec.fetch, filename=spec.filename))  # type: ignore[arg-type]
        if attachments:
            options["attachments"] = attachments
        if step.response_format is not None:
            options["response_format"] = step.response_format
        if step.max_tokens is not None:
            options["max_tokens"] = step.max_tokens
        if step.temperature is not None:
            options["temperature"] = step.temperature
        prompt = _rendered(step.prompt, "prompt", scopes) if step.prompt is not None else ""
        return build_request(model, prompt, options)

    def _model(self, step: Step) -> str:
        return step_model(step, self.client) or ""

    def _outputs(self, record: RunRecord) -> dict[str, Any]:
        scopes = {"inputs": record.inputs, "state": record.state}
        out = {}
        for name, template in self.wf.outputs.items():
            try:
                out[name] = template.value(scopes)
            except TemplateError as exc:
                self._fail(record, "outputs", str(exc))
                raise WorkflowFailed(
                    f"workflow {self.wf.name!r} failed at outputs.{name} ({template.text}): it refers to a missing "
                    f"key: {exc}. The run's state is saved and every step is done: fix outputs.{name} in the file, "
                    f"then resume (no step runs again) with {self._resume_hint(record)}",
                    run_id=record.run_id, step="outputs", cause=exc) from None
        return out

    def _fail(self, record: RunRecord, step_id: str, error: str, status: str = "failed") -> None:
        record.status, record.failed_step, record.error = status, step_id, error
        self.runs.save(record)

    def _failure(self, record: RunRecord, step: Step, error: str | None) -> str:
        return (f"workflow {self.wf.name!r} failed at step {step.id!r} ({step.type}, model {self._model(step)}): "
                f"{(error or '').rstrip('.')}. The run's state is saved: resume from this step with "
                f"{self._resume_hint(record)}")

    def _resume_hint(self, record: RunRecord) -> str:
        """The command (its path quoted, to paste as it is) and the SDK call that resume ``record``;
        its privacy and data class are in the run file, so neither needs repeating. A workflow
        given as a mapping has no file for the command to name: only the SDK call can resume it."""
        if self._folder is None:
            return f"run_workflow(<the same workflow>, resume={record.run_id!r})"
        command = shlex.join(["cloverleaf", "run", self.wf.source, "--resume", record.run_id])
        return f"`{command}` (or run_workflow(..., resume={record.run_id!r}))"


def _earlier(step: Step, record: RunRecord) -> StepResult:
    """A step finished before a resume, as it was saved (its cost and target count in the run's)."""
    saved = next((s for s in record.steps if s.get("id") == step.id), {})
    fields = {k: v for k, v in saved.items() if k in StepResult.__dataclass_fields__}
    return StepResult(**{**fields, "id": step.id, "type": step.type, "status": "earlier"})


def _rendered(template: Any, field_name: str, scopes: Mapping[str, Any]) -> str:
    try:
        return str(template.render(scopes))
    except TemplateError as exc:
        raise TemplateError(f"{field_name} ({_short(template.text)}) {exc}", ref=exc.ref, key=exc.key) from None


def _value(template: Any, field_name: str, scopes: Mapping[str, Any]) -> Any:
    try:
        return template.value(scopes)
    except TemplateError as exc:
        raise TemplateError(f"{field_name} ({_short(template.text)}) {exc}", ref=exc.ref, key=exc.key) from None


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _stricter_class(config: PrivacyConfig, first: str | None, second: str | None) -> str | None:
    """Of two data classes, the one whose policy in ``[privacy.classes]`` is stricter (``first`` on a
    tie): a caller's class tightens the file's (or a resumed run's), never loosens it. An unknown
    class is a ConfigError, as everywhere."""
    if first is None or second is None:
        return second if first is None else first
    return second if stricter(config.class_policy(first), config.class_policy(second)) else first


def _stricter(a: str | None, b: str | None) -> str | None:
    if "local-only" in (a, b):
        return "local-only"
    return a or b
