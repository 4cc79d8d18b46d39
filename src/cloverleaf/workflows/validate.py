"""Everything that can be checked before a workflow makes its first call.

Three passes, all run before any request: :func:`check_references` needs only the file
(every ``{inputs.x}`` is a declared input, every ``{state.x}`` an input or the output of an
*earlier* step, every field path exists in the producing step's JSON Schema);
:func:`attachment_file_problems` the disk (every attachment written as a fixed path is a file);
:func:`check_targets` the configuration (every model or route resolves, every target can do
what the step asks — images, audio, PDFs, structured output, URLs handed to the provider,
embeddings — and, under ``local-only``, at least one target is local). The runner calls all
three, reporting the last two's problems together, so a typo in step five fails before step one
spends a cent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._capabilities import Capability
from .._errors import AttachmentError, CloverleafError, PrivacyViolation, UnsupportedCapability, WorkflowError
from .._json_schema import local_target
from .._privacy import Decision
from .._resolve import embedding_model
from .._types import Attachment, ChatRequest, Message, Role
from ..attachments.sources import classify
from .schema import Step, Workflow
from .template import Ref

#: What a state key holds, statically: an input's type, a step's JSON Schema, "text" or "vector".
Shape = Any


def _where(index: int, step: Step) -> str:
    return f"steps[{index}] ({step.id})"


def check_references(wf: Workflow) -> None:
    problems: list[str] = []
    inputs = {i.name: i for i in wf.inputs}
    state: dict[str, Shape] = {name: {"input": spec.type} for name, spec in inputs.items()}
    for index, step in enumerate(wf.steps):
        where = _where(index, step)
        for field, template in step.templates():
            for ref in template.refs:
                _check_ref(ref, inputs, state, f"{where}.{field}", problems, strict=True)
        if step.when is not None:
            for ref in step.when.refs:
                _check_ref(ref, inputs, state, f"{where}.when", problems, strict=False)
        if step.output is not None:
            if step.output in inputs:
                problems.append(f"{where}.output: {step.output!r} is an input's name; choose another state key")
            state[step.output] = _shape(step)
    for name, template in wf.outputs.items():
        for ref in template.refs:
            _check_ref(ref, inputs, state, f"outputs.{name}", problems, strict=True)
    if problems:
        raise WorkflowError(wf.source, problems)


def _shape(step: Step) -> Shape:
    if step.type == "embed":
        return "vectors" if not step.single_input else "vector"
    return step.response_format if step.response_format is not None else "text"


def _check_ref(ref: Ref, inputs: Mapping[str, Any], state: Mapping[str, Shape], where: str,
               problems: list[str], *, strict: bool) -> None:
    if not ref.path:
        problems.append(f"{where}: {{{ref}}} needs a key ({ref.root}.NAME)")
        return
    key, *rest = ref.path
    if ref.root == "inputs":
        if key not in inputs:
            problems.append(f"{where}: {{{ref}}} names no declared input; inputs: {', '.join(inputs) or 'none'}")
        elif strict and (problem := _path_problem({"input": inputs[key].type}, rest, f"inputs.{key}")):
            problems.append(f"{where}: {{{ref}}}: {problem}")
        return
    if key not in state:
        known = ", ".join(state) or "none"
        problems.append(f"{where}: {{{ref}}}: no input or earlier step's output is named {key!r} "
                        f"(state keys so far: {known})")
        return
    if strict:
        problem = _path_problem(state[key], rest, f"state.{key}")
        if problem:
            problems.append(f"{where}: {{{ref}}}: {problem}")


#: JSON Schema (and input) types whose values have no fields.
_SCALARS = ("string", "number", "integer", "boolean")


def _path_problem(shape: Shape, path: list[str], walked: str) -> str | None:
    """Why ``path`` cannot exist in a value of ``shape`` (None when it can, or cannot be known).
    A response_format is walked through its ``properties``, ``items``, local ``$ref`` and a
    schema-valued ``additionalProperties`` (an open map: any key, with that schema)."""
    root = shape if isinstance(shape, Mapping) and "input" not in shape else None
    origin = walked
    for key in path:
        if shape == "text":
            return f"{walked} is the step's text (no response_format), so it has no field {key!r}"
        if shape in ("vector", "vectors"):
            if not key.isdigit():
                return f"{walked} is an embedding (a list of numbers), so it has no field {key!r}"
            shape = "vector" if shape == "vectors" else None
        elif isinstance(shape, Mapping) and "input" in shape:
            kind = shape["input"]
            if kind in _SCALARS:
                return f"{walked} is {_a(kind)} input, so it has no field {key!r}"
            if kind == "array" and not key.isdigit():
                return f"{walked} is a list input; use an index ({walked}.0), not {key!r}"
            return None                                        # an object input: unknown shape
        elif isinstance(shape, Mapping):
            shape = _referenced(shape, root)
            props = shape.get("properties")
            extra = shape.get("additionalProperties")
            if _is_scalar(shape):
                return f"the response_format of {origin} makes {walked} {_a(_type_words(shape))}, so it has no field {key!r}"
            if shape.get("type") == "array" or "items" in shape:
                if not key.isdigit():
                    return f"{walked} is a list; use an index ({walked}.0), not {key!r}"
                shape = shape.get("items") or None
            elif isinstance(props, Mapping) and key in props:
                shape = props[key]
            elif isinstance(extra, Mapping):                   # an open map: any key, with this schema
                shape = extra
            elif isinstance(props, Mapping) and extra is not True and "patternProperties" not in shape:
                return f"the response_format of {walked} has no property {key!r} (it has: {', '.join(props)})"
            else:
                return None
        else:
            return None
        walked = f"{walked}.{key}"
    return None


def _referenced(schema: Mapping[str, Any], root: Any, hops: int = 32) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` followed (to what it names, its own keys over it); a
    reference that names nothing, or a chain longer than ``hops``, is left as it is."""
    while hops and isinstance(schema.get("$ref"), str):
        target = local_target(root, schema["$ref"])
        if not isinstance(target, Mapping):
            break
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        hops -= 1
    return schema


def _is_scalar(schema: Mapping[str, Any]) -> bool:
    """Whether every value ``schema`` allows is a string, number or boolean (or null): a type,
    or a list of them, with no way around it (anyOf, $ref) left unfollowed."""
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if not kinds or any(k in schema for k in ("anyOf", "oneOf", "allOf", "$ref")):
        return False
    return all(k in (*_SCALARS, "null") for k in kinds) and any(k != "null" for k in kinds)


def _type_words(schema: Mapping[str, Any]) -> str:
    kind = schema["type"]
    return kind if isinstance(kind, str) else " or ".join(k for k in kind if k != "null")


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


@dataclass(slots=True)
class Planned:
    """A step as it will run: its model, the route's targets that may be tried, and why others may not."""

    step: Step
    model: str
    targets: list[Any]                   # gateway ResolvedTarget
    refused: list[tuple[str, str]]


def check_targets(wf: Workflow, client: Any, decision: Decision, decide_route: Any) -> list[Planned]:
    """Resolve and check every step's model against the configuration; returns the plan.

    ``decide_route(route) -> Decision`` tightens ``decision`` with a route's own privacy.
    """
    problems: list[str] = []
    plan: list[Planned] = []
    gateway = client.gateway
    privacy_failures: list[PrivacyViolation] = []
    for index, step in enumerate(wf.steps):
        where = _where(index, step)
        model = step_model(step, client)
        if model is None:
            what = "embedding" if step.type == "embed" else "chat"
            problems.append(f"{where}.model: no model given and no default {what} model is configured")
            continue
        try:
            route = gateway.router.route(model)
            targets = list(gateway.router.targets(route))
        except CloverleafError as exc:
            problems.append(f"{where}.model: {model!r}: {exc}")
            continue
        allowed, refused = list(targets), []
        step_decision = decide_route(route, decision)
        if step_decision.local_only:
            guard = client.engine.privacy
            allowed = [t for t in targets if guard.locality(t.target).local]
            refused = [(t.key, guard.locality(t.target).reason) for t in targets if t not in allowed]
            if not allowed:
                privacy_failures.append(PrivacyViolation(step_decision.policy, step_decision.rule, refused,
                                                         route=model, where=f"workflow {wf.name}, {where}"))
        # every target that may be tried must manage the step: the gateway never reroutes
        # UnsupportedCapability (the same request gets the same answer); refused ones never run
        for t in allowed:
            problem = _capability_problem(step, t.target, client.engine)
            # a missing key/base_url/region is kept on the target and raised after the capability check
            fault = getattr(t.target, "problem", None)
            if problem and (fault is None or problem != str(fault)):
                problems.append(f"{where}: target {t.key} of {model!r}: {problem}")
            elif fault is not None:
                problems.append(f"{where}.model: {model!r}: {fault}")
        plan.append(Planned(step, model, allowed, refused))
    if problems:
        raise WorkflowError(wf.source, problems)
    if privacy_failures:
        raise privacy_failures[0]
    return plan


def step_model(step: Step, client: Any) -> str | None:
    """The model a step calls: its own, else the configured default. For an embed step a provider
    name alone (``openai``, ``simple``) is that provider's default embedding model, resolved as
    ``client.embed`` resolves it."""
    if step.type == "embed":
        model = step.model or client.settings.embedding_model
        return embedding_model(model, client.engine.resolver.known, client.engine.registry) if model else None
    model = step.model or client.settings.default_model
    return str(model) if model else None


def attachment_path(source: str, folder: str | None) -> str | None:
    """The file ``source`` names when it is a local path, else None (a URL, data URL or base64).
    A relative path is next to the workflow file (in ``folder``), wherever the run starts from;
    only a workflow that is not from a file reads it from the current directory."""
    try:
        if classify(source).kind != "path":
            return None
    except AttachmentError:                        # empty: the loader says so at run time
        return None
    path = os.path.expanduser(source)
    return path if folder is None or os.path.isabs(path) else os.path.join(folder, path)


def attachment_file_problems(wf: Workflow, folder: str | None) -> list[str]:
    """Every attachment written as a fixed local path names a file (one from state or inputs is
    known only at run time), so a typo fails before the first step is paid for."""
    problems = []
    for index, step in enumerate(wf.steps):
        for j, spec in enumerate(step.attachments):
            source = spec.source.render({}) if not spec.source.refs else ""
            path = attachment_path(source, folder) if source else None
            if path is not None and not os.path.isfile(path):
                relative = folder is not None and not os.path.isabs(os.path.expanduser(source))
                problems.append(f"{_where(index, step)}.attachments[{j}].source: no file {path}"
                                + (" (a relative path is a file next to the workflow file)" if relative else ""))
    return problems


def _capability_problem(step: Step, target: Any, engine: Any) -> str | None:
    try:
        if step.type == "embed":
            if not target.adapter.capabilities.supports(Capability.EMBEDDINGS):
                raise UnsupportedCapability(target.provider, "embeddings")
            return None
        from .._structured import to_response_format

        parts: list[Any] = ["placeholder"]
        parts.extend(Attachment(source="placeholder", type=a.type, fetch=a.fetch)  # type: ignore[arg-type]
                     for a in step.attachments)
        req = ChatRequest(model=target.model, messages=[Message(Role.USER, parts=parts)],
                          response_format=to_response_format(step.response_format))
        engine.check(target, req)
    except UnsupportedCapability as exc:
        return str(exc)
    except CloverleafError as exc:
        return str(exc)
    return None


def describe(plan: Iterable[Planned], decision: Decision) -> list[str]:
    """The dry-run plan, one block per step."""
    lines = []
    for n, p in enumerate(plan, 1):
        step = p.step
        lines.append(f"{n}. {step.id} ({step.type}) model {p.model}")
        lines.append(f"     targets: {', '.join(f'{t.key} [{t.provider}]' for t in p.targets) or '-'}")
        for key, why in p.refused:
            lines.append(f"     refused by privacy: {key} ({why})")
        if step.when is not None:
            lines.append(f"     when: {step.when.text}")
        for a in step.attachments:
            lines.append(f"     attachment: {a.type} from {a.source.text} (fetch: {a.fetch})")
        if step.response_format is not None:
            props = step.response_format.get("properties")
            lines.append("     response_format: JSON Schema" + (f" ({', '.join(props)})" if isinstance(props, Mapping)
                                                                 else ""))
        if step.output:
            lines.append(f"     output: state.{step.output}")
    if decision.local_only:
        lines.append(f"privacy: {decision.policy} (set by {decision.rule})")
    return lines
