"""Small typed readers for request JSON that fail with a 400 naming the exact field.

Both wire translations use these instead of a schema library: a request body is parsed
once, checked field by field as it is translated, and a mistake comes back as
``messages[2].content[0].image_url.url: expected a string`` rather than a 500 or a
generic "invalid request". No pydantic on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from .._errors import clipped
from .._types import IMAGE_DETAILS, Attachment, AttachmentKind, ImageDetail, Tool
from .errors import BadRequest

_MISSING: Any = object()
MAX_MODEL_CHARS = 256
#: Bounds for counts of tokens (and the like): far above any model's, inside every int column.
MAX_TOKENS = 2**31 - 1


def bad(where: str, problem: str) -> BadRequest:
    return BadRequest(f"{where}: {problem}" if where else problem, param=where or None)


def query_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """A bounded whole number from a query parameter (``limit=``), ``default`` when absent.
    Only ASCII digits, at most as many as ``high`` has: ``str.isdigit`` also takes ``²`` and
    ``int`` refuses 4,300 digits and more, each a ValueError that would have been a 500."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)) and low <= int(raw) <= high):
        raise bad(name, f"expected an integer from {low} to {high}")
    return int(raw)


def too_deep(what: str, limit: int) -> BadRequest:
    """JSON (a body, or JSON inside a string field) nested past ``jsoncodec.MAX_DEPTH``."""
    return BadRequest(f"{what} is JSON nested more than {limit} levels deep (arrays and objects); "
                      f"the server accepts at most {limit}", code="json_too_deep")


#: what an ignored field must look like (``check_fields``): the check a client's own API would do
_SHAPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                        "boolean": (bool,), "object": (dict,), "array": (list,), "any": (object,)}


#: an ignored field's shape: a JSON type name, ``(type, minimum, maximum)``, or a tuple of allowed values
Shape = str | tuple[Any, ...]


def check_fields(body: dict[str, Any], known: frozenset[str], ignored: Mapping[str, Shape],
                 refused: dict[str, str] | None = None, where: str = "") -> None:
    """Refuse top-level fields the server neither reads nor documents as ignored.

    ``known`` are read by the parser; ``ignored`` (name -> :data:`Shape`) are accepted,
    checked as the API itself would and dropped (each documented in the wire module's
    docstring); ``refused`` (name -> reason) get that reason. Anything else is a 400
    ``unknown_field`` naming the field: a client that sends a field expects it to mean
    something, and an answer without it would be wrong. ``null`` is taken as absent, and so is an
    empty list for a refused field (``"mcp_servers": []`` asks for nothing the gateway lacks; an
    empty object can still ask for something, as ``web_search_options: {}`` does)."""
    extra = body.keys() - known
    if not extra:
        return
    for name in sorted(extra):
        value = body[name]
        if refused and name in refused and value is not None and value != []:
            raise bad(_join(where, name), refused[name])
        shape = ignored.get(name)
        if shape is None:
            if name in (refused or ()):
                continue
            err = bad(_join(where, name), "unknown field; remove it (the gateway does not pass fields it does not "
                                          "know to providers)")
            err.code = "unknown_field"
            raise err
        if value is not None:
            _check_shape(value, shape, _join(where, name))


def _check_shape(value: Any, shape: Shape, where: str) -> None:
    if isinstance(shape, tuple) and not (shape and shape[0] in _SHAPES):  # allowed values
        if isinstance(value, bool) or value not in shape:
            raise bad(where, f"expected one of {', '.join(map(repr, shape))}, got {value!r}")
        return
    kind, low, high = shape if isinstance(shape, tuple) else (shape, None, None)
    if kind == "any":
        return
    types = _SHAPES[kind]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # 2.0 is an integer to JSON
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise bad(where, f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {_kind(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad(where, f"must be from {low} to {high}")


def get_str(obj: dict[str, Any], key: str, where: str, *, required: bool = False, default: Any = None) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad(_join(where, key), "required string is missing")
        return default
    if not isinstance(value, str):
        raise bad(_join(where, key), f"expected a string, got {_kind(value)}")
    return value


def get_name(obj: dict[str, Any], key: str, where: str) -> str:
    """A required, non-empty identifier (a tool name, a call id)."""
    value: str = get_str(obj, key, where, required=True)
    if not value.strip():
        raise bad(_join(where, key), "must not be empty")
    return value


def check_tool_choice(tools: list[Any] | None, mode: str | None, name: str | None, where: str) -> None:
    """A forced tool must be one of the request's tools; 'required' needs some tool."""
    if mode in ("required", "tool") and not tools:
        raise bad(where, "forces a tool call but the request defines no tools")
    if mode == "tool" and name not in {t.name for t in tools or ()}:
        raise bad(where, f"names tool {name!r}, which is not among the request's tools")


def get_int(obj: dict[str, Any], key: str, where: str, *, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # 3.0 is an integer to most JSON encoders; accept it, refuse 3.5
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise bad(_join(where, key), f"expected an integer, got {_kind(value)}")
    if minimum is not None and value < minimum:
        raise bad(_join(where, key), f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise bad(_join(where, key), f"must be at most {maximum}")
    return value


def get_number(obj: dict[str, Any], key: str, where: str, *, minimum: float | None = None,
               maximum: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(_join(where, key), f"expected a number, got {_kind(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise bad(_join(where, key), "must be a finite number")
    if minimum is not None and value < minimum:
        raise bad(_join(where, key), f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise bad(_join(where, key), f"must be at most {maximum}")
    return float(value)


def get_bool(obj: dict[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(_join(where, key), f"expected true or false, got {_kind(value)}")
    return value


def get_dict(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(_join(where, key), "required object is missing")
        return None
    if not isinstance(value, dict):
        raise bad(_join(where, key), f"expected an object, got {_kind(value)}")
    return value


def get_list(obj: dict[str, Any], key: str, where: str, *, required: bool = False,
             non_empty: bool = False) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(_join(where, key), "required array is missing")
        return None
    if not isinstance(value, list):
        raise bad(_join(where, key), f"expected an array, got {_kind(value)}")
    if non_empty and not value:
        raise bad(_join(where, key), "must not be empty")
    return value


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(where, f"expected an object, got {_kind(value)}")
    return value


def get_stop(obj: dict[str, Any], key: str, where: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value) or None
    raise bad(_join(where, key), "expected a string or an array of strings")


def json_schema_object(value: Any, where: str) -> dict[str, Any]:
    """A tool's parameters / a response schema: must be a JSON object (a JSON Schema)."""
    if not isinstance(value, dict):
        raise bad(where, f"expected a JSON Schema object, got {_kind(value)}")
    return value


# --------------------------------------------------------------------------- tools


def tool_objects(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The request's ``tools`` array, entry by entry: its path for errors (``tools[2]``) and the
    entry, which must be an object. Every wire reads its tools this way."""
    for i, item in enumerate(get_list(body, "tools", "") or ()):
        at = f"tools[{i}]"
        yield at, as_dict(item, at)


def function_tool(fn: dict[str, Any], where: str) -> Tool:
    """A function tool as both OpenAI APIs define one (Chat Completions nests it under
    ``function``, the Responses API has it flat; ``where`` is that object's path): ``parameters``
    left out is a function without arguments, an empty object schema, as OpenAI takes it."""
    params = fn.get("parameters")
    return Tool(name=get_name(fn, "name", where), description=get_str(fn, "description", where),
                parameters=json_schema_object(params, f"{where}.parameters") if params is not None
                else {"type": "object", "properties": {}},
                strict=get_bool(fn, "strict", where))


# --------------------------------------------------------------------------- attachments


def remote_or_inline(url: str, kind: AttachmentKind | None, where: str) -> Attachment:
    """An attachment from a client: a ``data:`` URL or an http(s) URL, left unread. The
    engine resolves it with the server's attachment policy: base64 size-checked before it is
    decoded, the type sniffed from the bytes, a URL fetched only through the SSRF guard.
    Anything else — a local path, ``file://`` — is refused here: the server never reads its
    own disk for a client."""
    if url[:8].lower().startswith(("data:", "http://", "https://")):
        return Attachment(source=url, type=kind)
    raise bad(where, "must be an http(s) URL or a data: URL (the server does not read local files)")


def image_detail(image: dict[str, Any], where: str) -> ImageDetail | None:
    """An image part's optional ``detail`` (OpenAI's low/high/auto), checked."""
    detail = get_str(image, "detail", where)
    if detail is None:
        return None
    if detail not in IMAGE_DETAILS:
        raise bad(f"{where}.detail", f"must be 'low', 'high' or 'auto', not {clipped(detail)}")
    return cast(ImageDetail, detail)


def base64_attachment(data: str, media_type: str | None, kind: AttachmentKind | None) -> Attachment:
    """Bare base64 with a stated media type, as a ``data:`` URL (unambiguous, unlike bare
    text, and decoded within the size cap by :mod:`cloverleaf.attachments`)."""
    return Attachment(source=f"data:{media_type or ''};base64,{data}", type=kind)


def get_model(obj: dict[str, Any]) -> str:
    """The required ``model``: a non-empty name of at most ``MAX_MODEL_CHARS`` characters
    (model names become metric labels and trace fields, so their size is bounded), with no NUL
    character: PostgreSQL refuses one in text, so the call's record was lost after the
    provider had been called (and billed), and a stored Response failed with a 500."""
    model: str = get_str(obj, "model", "", required=True)
    if not model:
        raise bad("model", "must not be empty")
    if "\x00" in model:
        raise bad("model", "must not contain NUL characters (\\u0000): no model is named so; remove them")
    if len(model) > MAX_MODEL_CHARS:
        raise bad("model", f"must be at most {MAX_MODEL_CHARS} characters")
    return model


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
