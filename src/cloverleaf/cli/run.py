"""``cloverleaf run WORKFLOW.yaml``: run a workflow, print its outputs, resume a failed run."""

from __future__ import annotations

import argparse
import json
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


def run(name: str, args: argparse.Namespace) -> int:
    from .._client import Client
    from .._errors import WorkflowFailed
    from ..workflows import plan_workflow, run_workflow
    from .common import load_settings

    settings = load_settings(args)
    from dataclasses import replace

    privacy = "local-only" if args.local_only else None
    inputs = _inputs(args.input)
    with Client(replace(settings, gateway=True)) as client:
        if args.dry_run:
            for line in plan_workflow(args.workflow, inputs, client=client, privacy=privacy,
                                      data_class=args.data_class, resume=args.resume, run_dir=args.run_dir):
                print(line)
            return 0
        try:
            result = run_workflow(args.workflow, inputs or None, client=client, privacy=privacy,
                                  data_class=args.data_class, resume=args.resume, run_dir=args.run_dir)
        except WorkflowFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"status": "failed", "run_id": exc.run_id, "step": exc.step, "error": str(exc)}))
            return 1
    if result.changed:
        print("note: the workflow file changed since this run started; finished steps were kept", file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        return 0
    _print(result)
    return 0


def _print(result: Any) -> None:
    for name, value in result.outputs.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        print(f"{name}: {text}")
    parts = []
    for s in result.steps:
        if s.status == "ok":
            cost = f", ${s.cost:.6f}" if s.cost is not None else ""
            parts.append(f"{s.id} ({s.target}, {s.latency_ms:.0f} ms{cost})")
        else:
            parts.append(f"{s.id} ({s.status})")
    print(f"[run {result.run_id}] {result.status}; steps: {'; '.join(parts)}; total ${result.cost:.6f}; "
          f"details: cloverleaf traces --trace {result.trace_id}", file=sys.stderr)
