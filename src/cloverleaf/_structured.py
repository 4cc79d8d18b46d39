"""Structured output: pydantic model or JSON Schema in, validated object out.

``to_response_format`` accepts what users already have (a pydantic class, a dataclass or a
TypedDict (validated through a pydantic TypeAdapter), a JSON Schema dict, OpenAI's
``{"type": "json_schema", ...}``/``{"type": "json_object"}`` shapes, or ``"json"``). ``parse_output`` validates the final text
(a JSON Schema dict by :mod:`._schema_validator`). ``PartialJSON`` turns a growing
JSON text into the best-effort object so far, for streaming partial objects. pydantic is
imported only here, only when a pydantic model is involved.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from ._errors import ConfigError, StructuredOutputError
from ._schema_validator import schema_problems
from ._types import ChatResponse, ResponseFormat


def is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def to_response_format(value: Any) -> ResponseFormat | None:
    if value is None or isinstance(value, ResponseFormat):
        return value
    if value == "json" or value == {"type": "json_object"}:
        return ResponseFormat(type="json_object")
    if value == "text" or value == {"type": "text"}:
        return None
    if is_pydantic_model(value):
        return ResponseFormat(type="json_schema", schema=strict_schema(value.model_json_schema()),
                              name=_schema_name(value.__name__), strict=True, model=value)
    if _is_dataclass_or_typeddict(value):  # validated through a TypeAdapter, as list[...] is
        try:
            schema = _type_adapter(value).json_schema()
        except Exception as exc:  # pydantic's refusal (typing.TypedDict before Python 3.12) says what to use
            raise ConfigError(f"response_format {value.__name__} cannot be validated: {exc}") from exc
        return ResponseFormat(type="json_schema", schema=strict_schema(schema), name=_schema_name(value.__name__),
                              strict=True, model=value)
    if _is_sequence_type(value):
        return _array_format(value)
    if isinstance(value, dict) and value.get("type") == "array":
        return _wrapped(value, _schema_name(str(value.get("title", "response"))), strict=True, model=None)
    if isinstance(value, dict):
        if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), dict):
            js = value["json_schema"]
            if not isinstance(js.get("schema"), dict):
                raise ConfigError("response_format json_schema needs a 'schema' object")
            name, strict = _schema_name(js.get("name", "response")), bool(js.get("strict", True))
            if js["schema"].get("type") == "array":
                return _wrapped(js["schema"], name, strict=strict, model=None)
            return ResponseFormat(type="json_schema", schema=js["schema"], name=name, strict=strict)
        if "type" in value or "properties" in value or "$ref" in value or "anyOf" in value:
            return ResponseFormat(type="json_schema", schema=value,
                                  name=_schema_name(str(value.get("title", "response"))), strict=True)
    raise ConfigError(
        "response_format must be a pydantic model class, a dataclass or TypedDict, list[Model] (or another list "
        "type), a JSON Schema dict, {'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {...}}"
    )


def _is_dataclass_or_typeddict(value: Any) -> bool:
    """A dataclass, or a TypedDict from ``typing`` or ``typing_extensions`` (whose classes
    ``typing.is_typeddict`` does not know before Python 3.12): a dict class with required keys."""
    import dataclasses

    if not isinstance(value, type):
        return False
    return dataclasses.is_dataclass(value) or (issubclass(value, dict) and hasattr(value, "__required_keys__"))


#: The property a top-level array travels under on the wire.
WRAP_KEY = "items"


def _is_sequence_type(value: Any) -> bool:
    from typing import get_origin

    return get_origin(value) in (list, tuple, set, frozenset) or value in (list, tuple)


def _array_format(value: Any) -> ResponseFormat:
    """``list[City]`` and friends: the schema from pydantic; ``model`` keeps the type itself."""
    from typing import get_args

    item = get_args(value)[0] if get_args(value) else None
    name = f"{getattr(item, '__name__', 'item')}_list"
    return _wrapped(strict_schema(_type_adapter(value).json_schema()), _schema_name(name), strict=True, model=value)


@lru_cache(maxsize=256)
def _type_adapter(tp: Any) -> Any:
    """One pydantic TypeAdapter per type (building one costs far more than validating)."""
    from pydantic import TypeAdapter

    return TypeAdapter(tp)


def _wrapped(schema: dict[str, Any], name: str, *, strict: bool, model: Any) -> ResponseFormat:
    """An array schema as the one property of an object (``$defs`` stay at the root, where
    ``#/$defs/...`` references point). The array's own schema is kept as given: a user's dict
    says which fields are optional, and making it strict (or sending it non-strict when it
    cannot be) is the adapter's business, as for an object schema."""
    inner = {k: v for k, v in schema.items() if k != "$defs"}
    root: dict[str, Any] = {"type": "object", "properties": {WRAP_KEY: inner}, "required": [WRAP_KEY],
                            "additionalProperties": False}
    if "$defs" in schema:
        root["$defs"] = schema["$defs"]
    return ResponseFormat(type="json_schema", schema=root, name=name, strict=strict, model=model,
                          wrapped_key=WRAP_KEY)


def unwrap(value: Any, fmt: ResponseFormat | None) -> Any:
    """The caller's value from the wire's: ``{"items": [...]}`` → ``[...]`` for a wrapped array
    (a provider that answered with the bare array is accepted as well); None while a partial
    object has not reached the key yet."""
    if fmt is not None and fmt.wrapped_key and isinstance(value, dict):
        return value.get(fmt.wrapped_key)
    return value


def _schema_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    return cleaned or "response"


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Make a pydantic schema acceptable to strict mode: every object closed and every
    property required (OpenAI's rule), recursively; the caller's dict is not modified."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if out.get("type") == "object" and "properties" in out:
                out.setdefault("additionalProperties", False)
                out["required"] = list(out["properties"])
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def parse_output(resp: ChatResponse, fmt: ResponseFormat) -> Any:
    """The validated object for ``resp``; raises StructuredOutputError (holding the
    response, so nothing is lost) when the text is not valid JSON or fails the model (a
    pydantic type, or a JSON Schema dict: :mod:`._schema_validator`), or the model refused
    (its text is then the refusal, which no JSON error would explain)."""
    if resp.refusal is not None:
        raise StructuredOutputError(f"the model refused to give the structured output: {resp.refusal!r}",
                                    response=resp)
    text = output_text(resp)
    if fmt.model is not None and fmt.wrapped_key is None:
        try:
            if is_pydantic_model(fmt.model):
                return fmt.model.model_validate_json(text)
            return _type_adapter(fmt.model).validate_json(text)  # a dataclass or TypedDict
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            name = getattr(fmt.model, "__name__", fmt.name)
            raise _structured_error(resp, f"does not match {name}: {_problems(exc)}") from exc
    try:
        value = unwrap(json.loads(text), fmt)
    except ValueError as exc:
        raise _structured_error(resp, f"is not valid JSON ({exc})") from exc
    if fmt.model is None:
        problems = _schema_mismatch(value, fmt)
        if problems:
            raise _structured_error(resp, f"does not match its JSON Schema: {'; '.join(problems)}")
        return value
    try:
        return _type_adapter(fmt.model).validate_python(value)
    except Exception as exc:  # pydantic.ValidationError
        raise _structured_error(resp, f"does not match {fmt.name}: {_problems(exc)}") from exc


def _schema_mismatch(value: Any, fmt: ResponseFormat) -> list[str]:
    """Why ``value`` (already unwrapped) breaks ``fmt``'s JSON Schema dict: a pydantic model
    checks its own answers, a plain schema is checked here (``json_object`` has none). A wrapped
    array is checked against the array's schema, with ``$defs`` found at the wire root."""
    schema = fmt.schema
    if not isinstance(schema, dict):
        return []
    if fmt.wrapped_key is not None:
        props = schema.get("properties")
        inner = props.get(fmt.wrapped_key) if isinstance(props, dict) else None
        return schema_problems(value, inner, root=schema) if isinstance(inner, dict) else []
    return schema_problems(value, schema)


def output_text(resp: ChatResponse) -> str:
    """The JSON text of a structured answer: its content, without the code fence some models
    wrap JSON in despite being asked not to."""
    text = resp.content.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("\n") + 1:] if "\n" in text else text
    return text


def _problems(exc: Exception, shown: int = 5) -> str:
    """What failed validation, by field, without the values: pydantic's own text quotes the
    model's answer (``input_value='...'``), and this message reaches logs, call records and
    spans, where the answer may not go. The answer itself stays on the error's ``response``."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return type(exc).__name__
    try:
        found = errors(include_input=False, include_url=False)
    except Exception:  # noqa: BLE001 - not pydantic's ValidationError after all
        return type(exc).__name__
    parts = [f"{'.'.join(map(str, e.get('loc') or ())) or '(the whole value)'}: {e.get('msg')}" for e in found[:shown]]
    more = f" (and {len(found) - shown} more)" if len(found) > shown else ""
    return "; ".join(parts) + more


def _structured_error(resp: ChatResponse, why: str) -> StructuredOutputError:
    hint = ""
    if resp.finish_reason == "length":
        hint = "; the output was cut off by max_tokens (finish_reason=length): raise max_tokens"
    return StructuredOutputError(f"the model's structured output {why}{hint}", response=resp)


class PartialJSON:
    """Incrementally parse a JSON document that is still arriving.

    ``feed(text)`` returns the most complete value that the text so far describes (open
    strings, arrays and objects closed provisionally), or None before anything parses.

    The scanner keeps its state between feeds (open containers, whether it is inside a
    string, the end of the last complete member), so each character is scanned once:
    ``scanned`` counts them, and over a whole stream it equals the length of the text, however
    finely the text was split. What is built per feed is the provisional document (the
    complete prefix plus closing brackets), decoded by the C JSON decoder.
    """

    __slots__ = ("buffer", "scanned", "_pos", "_stack", "_safe", "_safe_stack", "_in_string", "_escaped",
                 "_in_literal", "_last")

    def __init__(self) -> None:
        self.buffer = ""
        #: Characters the scanner has examined (each once): the measure of its work.
        self.scanned = 0
        self._pos = 0
        # stack entries: "{k" (object, expecting key), "{v" (object, expecting value), "[" (array)
        self._stack: list[str] = []
        self._safe = -1                       # index just after the last complete member
        self._safe_stack: tuple[str, ...] = ()
        self._in_string = False
        self._escaped = False
        self._in_literal = False
        #: (safe index, value) of the last provisional document built from the complete prefix
        self._last: tuple[int, Any] = (-1, None)

    def feed(self, delta: str) -> Any:
        self.buffer += delta
        self._scan()
        return self._value()

    def _scan(self) -> None:
        text, n, i = self.buffer, len(self.buffer), self._pos
        stack = self._stack
        start = i
        while i < n:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                    i += 1
                    continue
                m = _STRING_SPECIAL.search(text, i)
                if m is None:
                    i = n
                    break
                i = m.start()
                if text[i] == "\\":
                    self._escaped = True
                else:
                    self._in_string = False
                    if not (stack and stack[-1] == "{k"):
                        self._mark(i + 1)
                i += 1
                continue
            if self._in_literal:
                m = _LITERAL_END.search(text, i)
                if m is None:
                    i = n
                    break
                i = m.start()
                self._in_literal = False
                self._mark(i)  # a literal or number followed by a delimiter is complete
                continue
            ch = text[i]
            if ch == '"':
                self._in_string = True
            elif ch in "{[":
                stack.append("{k" if ch == "{" else "[")
                self._mark(i + 1)
            elif ch in "}]":
                if stack:
                    stack.pop()
                self._mark(i + 1)
            elif ch == ":" and stack and stack[-1] == "{k":
                stack[-1] = "{v"
            elif ch == ",":
                if stack and stack[-1] == "{v":
                    stack[-1] = "{k"
            elif not ch.isspace():
                self._in_literal = True
                continue
            i += 1
        self.scanned += i - start
        self._pos = i

    def _mark(self, index: int) -> None:
        self._safe, self._safe_stack = index, tuple(self._stack)

    def _value(self) -> Any:
        text, stack = self.buffer, self._stack
        if not stack and not self._in_string:  # before the document, or a complete (scalar) one
            try:
                return json.loads(text) if text.strip() else None
            except ValueError:
                if self._safe < 0:
                    return None
        if self._in_string and not (stack and stack[-1] == "{k"):
            head = _without_partial_escape(text[:-1] if self._escaped else text)
            candidate, closers = head + '"', tuple(stack)
        elif self._safe >= 0:
            if self._last[0] == self._safe:  # nothing completed since: the same document
                return self._last[1]
            candidate, closers = text[:self._safe], self._safe_stack
        else:
            return None
        candidate = candidate.rstrip().rstrip(",")
        if candidate.endswith(":"):
            return None
        candidate += "".join("}" if state.startswith("{") else "]" for state in reversed(closers))
        try:
            value = json.loads(candidate)
        except ValueError:
            value = None
        if not self._in_string:
            self._last = (self._safe, value)
        return value


_STRING_SPECIAL = re.compile(r'["\\]')
_LITERAL_END = re.compile(r"[,}\]\s]")
#: A ``\\uXXXX`` escape cut off at the end, or a high surrogate whose low half (the second
#: escape of the pair, complete or not) has not arrived.
_PARTIAL_UNICODE_ESCAPE = re.compile(r"\\u(?:[dD][89abAB][0-9a-fA-F]{2}(?:\\u[0-9a-fA-F]{0,3})?|[0-9a-fA-F]{0,3})$")


def _without_partial_escape(text: str) -> str:
    """``text`` without an escape it cannot decode yet at its end: a cut-off ``\\uXXXX``, or half
    a surrogate pair (decoded alone it is a lone surrogate, which no UTF-8 encoder takes)."""
    m = _PARTIAL_UNICODE_ESCAPE.search(text, max(0, len(text) - 12))
    if m is None:
        return text
    backslashes = len(text[:m.start() + 1]) - len(text[:m.start() + 1].rstrip("\\"))
    return text[:m.start()] if backslashes % 2 == 1 else text


def complete_partial_json(text: str) -> Any:
    """Best-effort value of a JSON prefix: complete members are kept, an unfinished string
    *value* is kept as far as it has arrived, and anything else unfinished (a key, a
    literal, a dangling comma) is dropped; open containers are closed."""
    return PartialJSON().feed(text)


class ItemStream:
    """Yield each element of a streamed JSON array once it is complete and validated.

    Works when the schema's top level is an array, or an object whose single array
    property holds the items (``{"cities": [...]}``, the usual shape since providers want
    an object at the top). An element is complete when the next one starts or the array
    closes; it is validated with pydantic against the item type of ``fmt.model`` when one
    was given, else returned as parsed JSON.
    """

    def __init__(self, fmt: ResponseFormat) -> None:
        self.partial = PartialJSON()
        self.key = fmt.wrapped_key or _array_key(fmt.schema or {})
        self.emitted = 0
        self._validate = _item_validator(fmt, self.key)

    def feed(self, delta: str) -> list[Any]:
        return self._take(self.partial.feed(delta), final=False)

    def finish(self, value: Any) -> list[Any]:
        """Emit what remains from the final, complete value."""
        return self._take(value, final=True)

    def _take(self, value: Any, *, final: bool) -> list[Any]:
        items = value.get(self.key) if isinstance(value, dict) and self.key else value
        if not isinstance(items, list):
            return []
        ready = len(items) if final else len(items) - 1  # the last one may still be growing
        out = [self._checked(i, items[i]) for i in range(self.emitted, ready)]
        self.emitted = max(self.emitted, ready)
        return out

    def _checked(self, index: int, item: Any) -> Any:
        """The validated item, or a StructuredOutputError naming what failed (not the values:
        see :func:`_problems`)."""
        try:
            return self._validate(item)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            raise StructuredOutputError(
                f"the model's structured output item {index} does not match its type: {_problems(exc)}") from exc


def _array_key(schema: dict[str, Any]) -> str | None:
    if schema.get("type") == "array":
        return None
    props = schema.get("properties") or {}
    arrays: list[str] = [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "array"]
    if len(arrays) != 1:
        raise ConfigError("items() needs a response_format whose top level is an array, or an object with exactly "
                          "one array property; use partial_objects() for other shapes")
    return arrays[0]


def _item_validator(fmt: ResponseFormat, key: str | None) -> Any:
    if fmt.model is None:
        return lambda item: item
    from pydantic import TypeAdapter

    if fmt.wrapped_key is not None:  # list[City]: the list's item type
        from typing import get_args

        item_args = get_args(fmt.model)
        return _type_adapter(item_args[0]).validate_python if item_args else (lambda item: item)

    annotation = _property_type(fmt.model, key) if key else None
    if annotation is None:
        return lambda item: item
    from typing import get_args

    args = get_args(annotation)
    adapter = TypeAdapter(args[0] if args else Any)
    return adapter.validate_python


def _property_type(model: Any, key: str) -> Any:
    """The declared type of the field a schema property stands for, or None. A pydantic model's
    schema names a field by its alias (``Field(alias="Cities")``) when it has one, by its name
    otherwise; a dataclass's or TypedDict's by its name."""
    fields = getattr(model, "model_fields", None)
    if fields is None:
        from typing import get_type_hints

        try:
            return get_type_hints(model).get(key)
        except Exception:  # noqa: BLE001 - unresolvable annotations: items go unvalidated
            return None
    for field in fields.values():
        if key in (field.alias, field.validation_alias):
            return field.annotation
    field = fields.get(key)
    return field.annotation if field is not None else None
