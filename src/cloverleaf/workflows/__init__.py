"""Workflows: files of LLM steps (``llm_call``, ``embed``) run as one traced, resumable run.

    >>> from cloverleaf.workflows import run_workflow
    >>> result = run_workflow("city.yaml", inputs={"city": "Lisbon"})      # doctest: +SKIP
    >>> result.outputs, result.run_id, result.cost                          # doctest: +SKIP

Modules: ``schema`` (the file's shape), ``template`` (``{inputs.x}``/``{state.x.y}``),
``condition`` (``when:``), ``validate`` (everything checked before the first call),
``runs`` (run state on disk, for ``resume``), ``runner`` (the steps). YAML needs PyYAML
(``pip install 'cloverleaf[workflows]'``); a mapping or a ``.json`` file needs nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigError, WorkflowError
from .runner import Runner, StepResult, WorkflowResult
from .runs import RunStore, default_run_dir
from .schema import Workflow, parse

__all__ = ["StepResult", "Workflow", "WorkflowResult", "arun_workflow", "load_workflow", "plan_workflow",
           "run_workflow"]

WorkflowSource = str | os.PathLike[str] | Mapping[str, Any] | Workflow


def load_workflow(source: WorkflowSource) -> Workflow:
    """Parse a workflow from a mapping, a ``.yaml``/``.yml`` file or a ``.json`` file."""
    if isinstance(source, Workflow):
        return source
    if isinstance(source, Mapping):
        return parse(source, "<mapping>", default_name=str(source.get("name") or "workflow"))
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")     # -sig: a byte-order mark (Windows editors) is not JSON
    except FileNotFoundError:
        raise ConfigError(f"workflow file {str(path)!r} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read workflow file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise WorkflowError(str(path), [f"not UTF-8 text (byte {exc.start}): save the file as UTF-8"]) from None
    if path.suffix.lower() == ".toml":   # read as YAML, it failed as "not valid YAML" at its first `=`
        raise WorkflowError(str(path), ["a workflow file is YAML (.yaml, .yml) or JSON (.json), not TOML: "
                                        "write it in one of those (the README's Workflows section has an example)"])
    if path.suffix.lower() == ".json":
        import json

        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorkflowError(str(path), [f"not valid JSON: {exc}"]) from None
    else:
        data = _yaml(text, str(path))
    return parse(data, str(path), default_name=path.stem)


def _yaml(text: str, where: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError("workflow files in YAML need PyYAML: pip install 'cloverleaf[workflows]' "
                          "(or pass the workflow as a dict, or as a .json file)") from None
    try:
        return yaml.safe_load(text)          # safe_load: a workflow file can never construct objects
    except yaml.YAMLError as exc:
        raise WorkflowError(where, [f"not valid YAML: {exc}"]) from None


def workflow_runner(workflow: WorkflowSource, client: Any, *, privacy: str | None = None,
                    data_class: str | None = None, run_dir: str | os.PathLike[str] | None = None) -> Runner:
    """The :class:`Runner` the functions below use, for a caller that needs its ``run_id`` while
    it runs (the CLI names the run to resume when Ctrl-C interrupts it)."""
    runs = RunStore(run_dir if run_dir is not None else default_run_dir(client.settings.env))
    return Runner(load_workflow(workflow), client, runs, privacy=privacy, data_class=data_class)


def _own_client(config: Any, asynchronous: bool) -> Any:
    """A client whose calls go through the gateway, so each run is recorded as one trace."""
    from .._client import AsyncClient, Client, _settings

    settings = _settings(config, {})
    from dataclasses import replace

    settings = replace(settings, gateway=True)
    return AsyncClient(settings) if asynchronous else Client(settings)


async def arun_workflow(workflow: WorkflowSource, inputs: Mapping[str, Any] | None = None, *, client: Any = None,
                        config: Any = None, privacy: str | None = None, data_class: str | None = None,
                        resume: str | None = None, run_dir: str | os.PathLike[str] | None = None) -> WorkflowResult:
    """Run ``workflow`` (a path, a mapping or a :class:`Workflow`) and return its outputs.

    ``client``: an ``AsyncClient`` or ``Client`` to call through (default: one built from
    ``config``/``cloverleaf.toml`` with the gateway on). ``privacy="local-only"`` and
    ``data_class`` tighten the file's own settings (never loosen them). ``resume=RUN_ID``
    continues a failed run from the step that failed, with the state it had. Raises
    :class:`~cloverleaf.WorkflowError` (invalid file; nothing sent),
    :class:`~cloverleaf.PrivacyViolation` or :class:`~cloverleaf.WorkflowFailed`.
    """
    wf = load_workflow(workflow)
    own = client is None
    client = _own_client(config, True) if own else client
    try:
        runner = workflow_runner(wf, client, privacy=privacy, data_class=data_class, run_dir=run_dir)
        return await runner.run(inputs, resume=resume)
    finally:
        if own:
            await client.aclose()


def run_workflow(workflow: WorkflowSource, inputs: Mapping[str, Any] | None = None, *, client: Any = None,
                 config: Any = None, privacy: str | None = None, data_class: str | None = None,
                 resume: str | None = None, run_dir: str | os.PathLike[str] | None = None) -> WorkflowResult:
    """The sync twin of :func:`arun_workflow` (not from inside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("run_workflow() was called from a running event loop; use `await arun_workflow(...)`")
    if client is not None and hasattr(client, "__aenter__"):
        raise TypeError("run_workflow() takes a sync Client; with an AsyncClient use `await arun_workflow(...)`")
    wf = load_workflow(workflow)
    own = client is None
    client = _own_client(config, False) if own else client
    try:
        runner = workflow_runner(wf, client, privacy=privacy, data_class=data_class, run_dir=run_dir)
        return asyncio.run(runner.run(inputs, resume=resume))
    finally:
        if own:
            client.close()


def plan_workflow(workflow: WorkflowSource, inputs: Mapping[str, Any] | None = None, *, client: Any = None,
                  config: Any = None, privacy: str | None = None, data_class: str | None = None,
                  resume: str | None = None, run_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Validate everything and describe what a run would do (``--dry-run``), or what resuming
    the run ``resume`` would do; sends nothing."""
    wf = load_workflow(workflow)
    own = client is None
    client = _own_client(config, False) if own else client
    try:
        planner = workflow_runner(wf, client, privacy=privacy, data_class=data_class, run_dir=run_dir)
        return planner.plan(inputs, resume)
    finally:
        if own:
            client.close()
