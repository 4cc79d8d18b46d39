"""The workflow file's shape, parsed once into typed values; every problem is reported at once.

::

    name: city-brief                      # optional; defaults to the file name
    privacy: local-only                   # optional: every step's calls stay local
    data_class: confidential              # optional: a class from [privacy.classes]
    inputs:
      city: {type: string, default: Lisbon}
      photo: {type: string, description: a path or URL}
    steps:
      - id: facts                         # unique; "name" is accepted too
        type: llm_call
        model: fake/chat                  # a model id or a route
        system: You are a geographer.
        prompt: "Facts about {inputs.city}."
        attachments:
          - {type: image, source: "{state.photo}", fetch: local, media_type: image/png}
        response_format: {type: object, properties: {...}, required: [...]}   # a JSON Schema
        max_tokens: 300
        temperature: 0.2
        when: inputs.city != ""           # see condition.py
        output: city                      # the result lands in state.city
      - {id: vector, type: embed, model: simple, input: "{state.city.name}", output: vec}
    outputs:
      name: "{state.city.name}"

State starts as a copy of the inputs (so ``{state.photo}`` works, as in AgentLoom) and each
step's ``output`` adds a key; ``{inputs.x}`` always reads the original input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import WorkflowError
from .._privacy import POLICIES
from .condition import Condition, ConditionError
from .template import Template, suggestion

INPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array")
STEP_TYPES = ("llm_call", "embed")
ATTACHMENT_TYPES = ("image", "pdf", "audio")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_TOP_KEYS = {"name", "description", "version", "privacy", "data_class", "inputs", "steps", "outputs"}
_INPUT_KEYS = {"type", "default", "description", "required"}
_COMMON_STEP_KEYS = {"id", "name", "type", "model", "when", "output", "description"}
_LLM_KEYS = _COMMON_STEP_KEYS | {"prompt", "system", "attachments", "response_format", "max_tokens", "temperature"}
_EMBED_KEYS = _COMMON_STEP_KEYS | {"input", "dimensions"}
_ATTACHMENT_KEYS = {"type", "source", "media_type", "fetch", "filename"}


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    type: str = "string"
    default: Any = None
    required: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    type: str
    source: Template
    media_type: str | None = None
    fetch: str = "local"
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: str
    model: str | None
    output: str | None = None
    when: Condition | None = None
    # llm_call
    prompt: Template | None = None
    system: Template | None = None
    attachments: tuple[AttachmentSpec, ...] = ()
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    # embed
    inputs: tuple[Template, ...] = ()
    single_input: bool = True
    dimensions: int | None = None

    def templates(self) -> list[tuple[str, Template]]:
        """Every template of the step, with the field it is in (for error messages)."""
        out: list[tuple[str, Template]] = []
        if self.system is not None:
            out.append(("system", self.system))
        if self.prompt is not None:
            out.append(("prompt", self.prompt))
        out.extend((f"attachments[{i}].source", a.source) for i, a in enumerate(self.attachments))
        out.extend((f"input[{i}]" if not self.single_input else "input", t) for i, t in enumerate(self.inputs))
        return out


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    inputs: tuple[InputSpec, ...]
    steps: tuple[Step, ...]
    outputs: Mapping[str, Template]
    privacy: str | None = None
    data_class: str | None = None
    description: str = ""
    source: str = "<mapping>"
    #: A digest of the definition: a resumed run says when the file changed since.
    digest: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def parse(data: Any, source: str = "<mapping>", *, default_name: str = "workflow") -> Workflow:
    """Check ``data`` (the loaded YAML) and build a :class:`Workflow`; a :class:`WorkflowError`
    lists every problem found, each with where it is (``steps[1].prompt``)."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise WorkflowError(source, [f"the file must hold a mapping (name, inputs, steps, outputs), "
                                     f"not {type(data).__name__}"])
    _unknown("", data, _TOP_KEYS, problems)
    privacy = data.get("privacy")
    if privacy is not None and privacy not in POLICIES:
        problems.append(f"privacy: must be one of {', '.join(POLICIES)}, got {privacy!r}")
    data_class = data.get("data_class")
    if data_class is not None and not isinstance(data_class, str):
        problems.append("data_class: must be a string naming a class in [privacy.classes]")
    inputs = _inputs(data.get("inputs"), problems)
    steps = _steps(data.get("steps"), problems)
    outputs = _outputs(data.get("outputs"), problems)
    if problems:
        raise WorkflowError(source, problems)
    return Workflow(name=str(data.get("name") or default_name), inputs=inputs, steps=steps, outputs=outputs,
                    privacy=privacy, data_class=data_class, description=str(data.get("description") or ""),
                    source=source, digest=_digest(data), raw=data)


def _digest(data: Mapping[str, Any]) -> str:
    """A stable digest of the definition. Keys are compared as text: YAML reads an unquoted
    ``on:`` or ``yes:`` as a boolean, and ``sort_keys`` cannot order True beside "name"."""
    import hashlib

    def text_keys(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): text_keys(v) for k, v in value.items()}
        if isinstance(value, list):
            return [text_keys(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(text_keys(data), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unknown(where: str, table: Mapping[str, Any], allowed: set[str], problems: list[str]) -> None:
    for key in sorted(set(map(str, table)) - allowed):
        problems.append(f"{where or 'top level'}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")


def _inputs(raw: Any, problems: list[str]) -> tuple[InputSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        problems.append("inputs: must be a mapping of name: {type, default, description}")
        return ()
    out = []
    for name, spec in raw.items():
        where = f"inputs.{name}"
        if not isinstance(name, str) or not _KEY.match(name):
            problems.append(f"{where}: input names are letters, digits, _ and - (not starting with a digit)")
            continue
        if isinstance(spec, str):                          # shorthand: city: string
            spec = {"type": spec}
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: must be a mapping {{type, default, description}} or a type name")
            continue
        _unknown(where, spec, _INPUT_KEYS, problems)
        kind = spec.get("type", "string")
        if kind not in INPUT_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(INPUT_TYPES)}, got {kind!r}")
            continue
        has_default = "default" in spec
        default = spec.get("default")
        if has_default and default is not None:
            try:
                default = coerce(kind, default)
            except ValueError as exc:
                problems.append(f"{where}.default: {exc}")
            problems.extend(_not_json(*odd) for odd in list(_non_json_values(default, f"{where}.default"))[:1])
        required = bool(spec.get("required", not has_default))
        out.append(InputSpec(name, kind, default, required, str(spec.get("description") or "")))
    return tuple(out)


def coerce(kind: str, value: Any) -> Any:
    """A value (from YAML, Python or a ``--input key=value`` string) as the input's type."""
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if kind in ("number", "integer"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"expected {_a(kind)}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected {_a(kind)}, got {value!r}")
        if not math.isfinite(value):             # JSON has no NaN or Infinity: `run --json` could not print it
            raise ValueError(f"expected a finite {kind}, got {value!r}")
        if kind == "integer":
            if int(value) != value:
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ValueError(f"expected true or false, got {value!r}")
    expected = dict if kind == "object" else list
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"expected JSON for an {kind}, got {value[:40]!r}") from None
    if not isinstance(value, expected):
        raise ValueError(f"expected an {kind}, got {type(value).__name__}")
    return value


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _steps(raw: Any, problems: list[str]) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("steps: must be a non-empty list of steps")
        return ()
    out: list[Step] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"steps[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a mapping with type, model, ...")
            continue
        step_id = item.get("id", item.get("name"))
        if not isinstance(step_id, str) or not _KEY.match(step_id):
            problems.append(f"{where}: needs an id (letters, digits, _ and -), e.g. id: summarize")
            step_id = f"#{i}"
        elif step_id in seen:
            problems.append(f"{where}: id {step_id!r} is used twice")
        seen.add(step_id)
        where = f"steps[{i}] ({step_id})"
        kind = item.get("type")
        if kind not in STEP_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(STEP_TYPES)}, got {kind!r}")
            continue
        step = _step(item, str(step_id), str(kind), where, problems)
        if step is not None:
            out.append(step)
    return tuple(out)


def _template(value: Any, where: str, problems: list[str], *, required: bool = False) -> Template | None:
    if value is None:
        if required:
            problems.append(f"{where}: is required")
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string (a template), got {type(value).__name__}")
        return None
    template = Template.parse(value)
    for fragment in template.unparsed:
        meant = suggestion(fragment)
        problems.append(f"{where}: {_clipped(fragment)} looks like a reference but is not one, so it would be sent "
                        "as text: " + (f"write {meant}" if meant else "a reference is {state.NAME.FIELD...} or "
                                       "{inputs.NAME...}, with no spaces inside the braces")
                        + "; to send the braces as text, double them: {{state.x}} is the text {state.x}")
    return template


def _clipped(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _step(item: Mapping[str, Any], step_id: str, kind: str, where: str, problems: list[str]) -> Step | None:
    _unknown(where, item, _LLM_KEYS if kind == "llm_call" else _EMBED_KEYS, problems)
    model = item.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        problems.append(f"{where}.model: must be a model id (provider/model) or a route name")
        model = None
    output = item.get("output")
    if output is not None and (not isinstance(output, str) or not _KEY.match(output)):
        problems.append(f"{where}.output: must be a state key (letters, digits, _ and -)")
        output = None
    when = None
    if item.get("when") is not None:
        try:
            when = Condition.parse(str(item["when"]) if not isinstance(item["when"], bool) else
                                   ("true" if item["when"] else "false"))
        except ConditionError as exc:
            problems.append(f"{where}.when: {exc}")
    if kind == "embed":
        raw = item.get("input")
        single = not isinstance(raw, list)
        items: list[Any] = raw if isinstance(raw, list) else [raw]
        if not items:
            problems.append(f"{where}.input: needs at least one text to embed")
        templates = tuple(t for j, v in enumerate(items)
                          if (t := _template(v, f"{where}.input" + ("" if single else f"[{j}]"), problems,
                                             required=True)) is not None)
        dims = item.get("dimensions")
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
            problems.append(f"{where}.dimensions: must be a positive integer")
        return Step(step_id, kind, model, output, when, inputs=templates, single_input=single, dimensions=dims)
    prompt = _template(item.get("prompt"), f"{where}.prompt", problems, required=True)
    system = _template(item.get("system"), f"{where}.system", problems)
    attachments = _attachments(item.get("attachments"), where, problems)
    fmt = item.get("response_format")
    if fmt is not None and not (isinstance(fmt, Mapping) and ("type" in fmt or "properties" in fmt
                                                             or "anyOf" in fmt or "$ref" in fmt)):
        problems.append(f"{where}.response_format: must be a JSON Schema (a mapping with type/properties)")
        fmt = None
    elif fmt is not None and (keys := list(_non_text_keys(fmt))):
        problems.append(f"{where}.response_format: key {keys[0]!r} is not text (YAML reads an unquoted on, off, yes, "
                        f"no, a number or null as such): quote it, e.g. 'on':")
        fmt = None
    elif fmt is not None and (odd := next(_non_json_values(fmt, f"{where}.response_format"), None)):
        problems.append(_not_json(*odd))
        fmt = None
    max_tokens = item.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        problems.append(f"{where}.max_tokens: must be a positive integer")
    temperature = item.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not 0 <= temperature <= 2):
        problems.append(f"{where}.temperature: must be a number from 0 to 2")
    return Step(step_id, kind, model, output, when, prompt=prompt, system=system, attachments=attachments,
                response_format=dict(fmt) if fmt is not None else None, max_tokens=max_tokens,
                temperature=float(temperature) if temperature is not None else None)


def _non_text_keys(value: Any) -> Iterator[Any]:
    """The mapping keys in ``value`` that are not strings (JSON Schema property names are text)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                yield key
            yield from _non_text_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _non_text_keys(item)


def _non_json_values(value: Any, at: str) -> Iterator[tuple[str, Any]]:
    """Where ``value`` holds something JSON has no form for (a date or datetime YAML read from an
    unquoted ``2024-01-31``, a set, NaN), with the value: found when the file is loaded, not
    when the step that sends the schema is reached, after the steps before it were paid for."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_json_values(item, f"{at}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _non_json_values(item, f"{at}[{index}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield at, value
    elif not (value is None or isinstance(value, str | int | bool)):
        yield at, value


def _not_json(at: str, value: Any) -> str:
    """The problem for a value JSON cannot hold (the schema is sent as JSON, an input is saved
    with the run as JSON), with what to write instead."""
    import datetime

    text = _clipped(str(value))
    if isinstance(value, datetime.date | datetime.time):
        fix = f"YAML reads an unquoted date or time as one: quote it, e.g. '{text}'"
    elif isinstance(value, set | frozenset):
        fix = "write a list instead"
    elif isinstance(value, float):
        fix = "JSON has no NaN or infinity: write a finite number"
    else:
        fix = "write it as text, a number, true/false, null, a list or a mapping"
    return f"{at}: {type(value).__name__} {text} is not a JSON value ({fix})"


def _attachments(raw: Any, where: str, problems: list[str]) -> tuple[AttachmentSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{where}.attachments: must be a list of {{type, source, fetch, media_type}}")
        return ()
    out = []
    for j, item in enumerate(raw):
        at = f"{where}.attachments[{j}]"
        if isinstance(item, str):
            item = {"source": item}
        if not isinstance(item, Mapping):
            problems.append(f"{at}: must be a mapping {{type, source, fetch, media_type}}")
            continue
        _unknown(at, item, _ATTACHMENT_KEYS, problems)
        kind = item.get("type")
        if kind not in ATTACHMENT_TYPES:
            problems.append(f"{at}.type: must be one of {', '.join(ATTACHMENT_TYPES)} (it decides which "
                            f"capability the model needs), got {kind!r}")
            continue
        fetch = item.get("fetch", "local")
        if fetch not in ("local", "provider"):
            problems.append(f"{at}.fetch: must be 'local' (cloverleaf downloads it, through the SSRF guard) or "
                            f"'provider' (the provider fetches the URL), got {fetch!r}")
            continue
        source = _template(item.get("source"), f"{at}.source", problems, required=True)
        if source is None:
            continue
        media_type = item.get("media_type")
        out.append(AttachmentSpec(kind, source, str(media_type) if media_type else None, fetch,
                                  str(item["filename"]) if item.get("filename") else None))
    return tuple(out)


def _outputs(raw: Any, problems: list[str]) -> dict[str, Template]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("outputs: must be a mapping of name: template (e.g. summary: \"{state.summary}\")")
        return {}
    out = {}
    for name, value in raw.items():
        template = _template(value, f"outputs.{name}", problems, required=True)
        if template is not None:
            out[str(name)] = template
    return out
