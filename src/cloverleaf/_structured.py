"""Structured output: pydantic model or JSON Schema in, validated object out.

``to_response_format`` accepts what users already have (a pydantic class, a JSON Schema
dict, OpenAI's ``{"type": "json_schema", ...}``/``{"type": "json_object"}`` shapes, or
``"json"``). ``parse_output`` validates the final text. ``PartialJSON`` turns a growing
JSON text into the best-effort object so far, for streaming partial objects. pydantic is
imported only here, only when a pydantic model is involved.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import ConfigError, StructuredOutputError
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
    if isinstance(value, dict):
        if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), dict):
            js = value["json_schema"]
            if not isinstance(js.get("schema"), dict):
                raise ConfigError("response_format json_schema needs a 'schema' object")
            return ResponseFormat(type="json_schema", schema=js["schema"], name=_schema_name(js.get("name", "response")),
                                  strict=bool(js.get("strict", True)))
        if "type" in value or "properties" in value or "$ref" in value or "anyOf" in value:
            return ResponseFormat(type="json_schema", schema=value,
                                  name=_schema_name(str(value.get("title", "response"))), strict=True)
    raise ConfigError(
        "response_format must be a pydantic model class, a JSON Schema dict, "
        "{'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {...}}"
    )


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
    response, so nothing is lost) when the text is not valid JSON or fails the model."""
    text = resp.content.strip()
    if text.startswith("```"):  # some models wrap JSON in a fence despite being asked not to
        text = text.strip("`")
        text = text[text.find("\n") + 1:] if "\n" in text else text
    if fmt.model is not None:
        try:
            return fmt.model.model_validate_json(text)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            raise _structured_error(resp, f"does not match {fmt.model.__name__}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _structured_error(resp, f"is not valid JSON ({exc})") from exc


def _structured_error(resp: ChatResponse, why: str) -> StructuredOutputError:
    hint = ""
    if resp.finish_reason == "length":
        hint = "; the output was cut off by max_tokens (finish_reason=length): raise max_tokens"
    return StructuredOutputError(f"the model's structured output {why}{hint}", response=resp)


class PartialJSON:
    """Incrementally parse a JSON document that is still arriving.

    ``feed(text)`` returns the most complete value that the text so far describes (open
    strings, arrays and objects closed provisionally), or None before anything parses.
    It re-parses the whole buffer each time it is asked, which is linear per call; the
    stream wrapper only asks when a delta arrives.
    """

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, delta: str) -> Any:
        self.buffer += delta
        return complete_partial_json(self.buffer)


def complete_partial_json(text: str) -> Any:
    """Best-effort value of a JSON prefix: complete members are kept, an unfinished string
    *value* is kept as far as it has arrived, and anything else unfinished (a key, a
    literal, a dangling comma) is dropped; open containers are closed."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    # stack entries: "{k" (object, expecting key), "{v" (object, expecting value), "[" (array)
    stack: list[str] = []
    safe = -1                 # index just after the last complete member
    safe_stack: list[str] = []
    in_string = escaped = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if not (stack and stack[-1] == "{k"):
                    safe, safe_stack = i + 1, list(stack)
            i += 1
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("{k" if ch == "{" else "[")
            safe, safe_stack = i + 1, list(stack)
        elif ch in "}]":
            if stack:
                stack.pop()
            safe, safe_stack = i + 1, list(stack)
        elif ch == ":" and stack and stack[-1] == "{k":
            stack[-1] = "{v"
        elif ch == "," and stack:
            if stack[-1] == "{v":
                stack[-1] = "{k"
        elif not ch.isspace():
            j = i
            while j < n and text[j] not in ",}] \t\r\n":
                j += 1
            if j < n:  # a literal or number followed by a delimiter is complete
                safe, safe_stack = j, list(stack)
            i = j
            continue
        i += 1
    if in_string and not (stack and stack[-1] == "{k"):
        head = text[:n - 1] if escaped else text
        candidate, closers = head + '"', stack
    elif safe >= 0:
        candidate, closers = text[:safe], safe_stack
    else:
        return None
    candidate = candidate.rstrip().rstrip(",")
    if candidate.endswith(":"):
        return None
    for state in reversed(closers):
        candidate += "}" if state.startswith("{") else "]"
    try:
        return json.loads(candidate)
    except ValueError:
        return None


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
        self.key = _array_key(fmt.schema or {})
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
        out = [self._validate(item) for item in items[self.emitted:ready]]
        self.emitted = max(self.emitted, ready)
        return out


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

    field = fmt.model.model_fields.get(key) if key else None
    if field is None:
        return lambda item: item
    from typing import get_args

    args = get_args(field.annotation)
    adapter = TypeAdapter(args[0] if args else Any)
    return adapter.validate_python
