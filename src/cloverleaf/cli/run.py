"""``cloverleaf run WORKFLOW.yaml``: run a workflow, print its outputs, resume a failed run."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from typing import Any

from .common import LOCAL_ONLY_HELP


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("workflow", help="workflow file (.yaml, .yml or .json)")
    p.add_argument("-i", "--input", action="append", default=[], metavar="KEY=VALUE",
                   help="an input value (repeatable); numbers, booleans, objects and arrays are parsed by the "
                        "input's declared type")
    p.add_argument("--json", action="store_true", help="print the result (outputs, steps, cost, run id) as JSON")
    p.add_argument("--dry-run", action="store_true",
                   help="validate everything and print the plan (models, targets, privacy); send nothing")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a failed run from the step that failed")
    p.add_argument("--local-only", action="store_true", help=LOCAL_ONLY_HELP)
    p.add_argument("--data-class", metavar="CLASS", help="label the workflow's data (a class in [privacy.classes])")
    p.add_argument("--run-dir", help="where run state is kept (default $XDG_DATA_HOME/cloverleaf/runs)")


def _inputs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --input expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


class _Interrupted(Exception):
    """Ctrl-C stopped the run; ``run_id`` is what to resume (None: it had not started)."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def run(name: str, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .._client import Client
    from .._errors import WorkflowFailed
    from ..workflows import plan_workflow
    from .common import load_settings

    settings = replace(load_settings(args), gateway=True)
    privacy = "local-only" if args.local_only else None
    inputs = _inputs(args.input)
    if args.dry_run:
        with Client(settings) as client:
            for line in plan_workflow(args.workflow, inputs, client=client, privacy=privacy,
                                      data_class=args.data_class, resume=args.resume, run_dir=args.run_dir):
                print(line)
        return 0
    try:
        result = asyncio.run(_execute(args, settings, inputs, privacy))
    except WorkflowFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.run_id and _resume_options(args):        # the message names the file and the id only
            print(f"with this run's options: `{_resume_command(args, exc.run_id)}`", file=sys.stderr)
        if args.json:
            print(json.dumps({"status": "failed", "run_id": exc.run_id, "step": exc.step, "error": str(exc)}))
        return 1
    except _Interrupted as stop:
        return _interrupted(args, stop.run_id)
    if result.changed:
        print("note: the workflow file changed since this run started; finished steps were kept", file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        return 0
    _print(result)
    return 0


async def _execute(args: argparse.Namespace, settings: Any, inputs: dict[str, str], privacy: str | None) -> Any:
    """The run on an async client: Ctrl-C cancels the call in flight at once (a sync client's
    call runs in a thread that must be waited for)."""
    from .._client import AsyncClient
    from ..workflows import workflow_runner

    async with AsyncClient(settings) as client:
        runner = workflow_runner(args.workflow, client, privacy=privacy, data_class=args.data_class,
                                 run_dir=args.run_dir)
        try:
            return await runner.run(inputs or None, resume=args.resume)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise _Interrupted(runner.run_id) from None


def _interrupted(args: argparse.Namespace, run_id: str | None) -> int:
    if run_id is None:
        print("interrupted before the run started; nothing was sent", file=sys.stderr)
    else:
        print(f"interrupted; run {run_id} is saved (steps that finished are kept): resume it with "
              f"`{_resume_command(args, run_id)}`", file=sys.stderr)
    if args.json:
        print(json.dumps({"status": "interrupted", "run_id": run_id}))
    return 130


def _resume_command(args: argparse.Namespace, run_id: str) -> str:
    """The command that resumes ``run_id`` as this one ran: same file, config and run folder (its
    privacy and data class are in the run file, which holds the resume to them)."""
    return shlex.join(["cloverleaf", "run", args.workflow, "--resume", run_id, *_resume_options(args)])


def _resume_options(args: argparse.Namespace) -> list[str]:
    """The options without which ``--resume`` would not find this run, or not the same way."""
    words: list[str] = []
    for flag, value in (("--config", getattr(args, "config", None)), ("--run-dir", args.run_dir)):
        if value:
            words += [flag, value]
    return words


def _print(result: Any) -> None:
    for name, value in result.outputs.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        print(f"{name}: {text}")
    parts = []
    for s in result.steps:
        if s.target is not None:         # ok, or earlier: answered before a resume, and counted in the total
            cost = f", ${s.cost:.6f}" if s.cost is not None else ""
            latency = f", {s.latency_ms:.0f} ms" if s.latency_ms is not None else ""
            parts.append(f"{s.id} ({'earlier, ' if s.status == 'earlier' else ''}{s.target}{latency}{cost})")
        else:
            parts.append(f"{s.id} ({s.status})")
    print(f"[run {result.run_id}] {result.status}; steps: {'; '.join(parts)}; total {_total(result.cost)}; "
          f"details: cloverleaf traces --trace {result.trace_id}", file=sys.stderr)


def _total(cost: float | None) -> str:
    return f"${cost:.6f}" if cost is not None else "unknown (a step's cost is unknown)"
