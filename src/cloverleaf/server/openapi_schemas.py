"""The request schemas of the server's OpenAPI document, as strict as the parsers.

Every field the parsers (``openai_wire``, ``anthropic_wire``, ``admin_api``) check is here
with the same bounds, and the top-level objects are closed (``additionalProperties: false``)
with the fields documented as ignored listed, so that a schema-valid request is one the
server accepts and a schema-violating one is one it refuses: schemathesis ``--checks all``
holds the server to that in the test suite. The few rules JSON Schema cannot say here are
listed in ``DEVIATIONS`` (and in the document's description).
"""

from __future__ import annotations

from typing import Any

from ..providers.registry import provider_names
from .admin_text import ENTRY_NAME_CHARS, ENTRY_TEXT_CHARS, KEY_NAME_CHARS, NO_NUL_PATTERN
from .anthropic_wire import MESSAGES_IGNORED
from .key_fields import KEY_MODELS_MAX
from .openai_wire import CHAT_IGNORED, IMAGE_IGNORED, IMAGE_OPTIONS, IMAGE_QUALITIES
from .projects import PROJECT_PATTERN
from .responses.wire import RESPONSES_IGNORED

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}
#: a name the parsers require to hold something besides spaces (tool names, call ids)
NAME: dict[str, Any] = {"type": "string", "pattern": r"\S"}
MODEL: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": NO_NUL_PATTERN,
                         "examples": ["fake/echo"]}
TOKENS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_JSON_TYPES = {"string": STR, "number": NUM, "integer": INT, "boolean": BOOL, "object": OBJ,
               "array": {"type": "array"}, "any": {}}


def obj(props: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


def arr(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def ignored(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields accepted, checked and dropped (see ``fields.check_fields``), as their schemas (null allowed)."""
    out: dict[str, Any] = {}
    for name, shape in fields.items():
        if shape == "any":
            out[name] = {}
        elif isinstance(shape, tuple) and shape and shape[0] in _JSON_TYPES:
            out[name] = nullable({**_JSON_TYPES[shape[0]], "minimum": shape[1], "maximum": shape[2]})
        elif isinstance(shape, tuple):
            out[name] = nullable({"enum": list(shape)})
        else:
            out[name] = nullable(_JSON_TYPES[shape])
    return out


# --------------------------------------------------------------------------- OpenAI

_TEXT_PART = obj({"type": {"const": "text"}, "text": STR}, ("type", "text"))
#: what the parsers take as an attachment URL (anything else is a local path or file:// URL, refused)
URL = {"type": "string", "pattern": "^([dD][aA][tT][aA]:|[hH][tT][tT][pP][sS]?://)"}
_IMAGE_PART = obj({"type": {"const": "image_url"}, "image_url": obj({"url": URL}, ("url",))}, ("type", "image_url"))
_AUDIO_PART = obj({"type": {"const": "input_audio"},
                   "input_audio": obj({"data": STR, "format": STR}, ("data", "format"))}, ("type", "input_audio"))
_FILE_PART = obj({"type": {"const": "file"}, "file": obj({"file_data": STR, "filename": nullable(STR)},
                                                         ("file_data",))}, ("type", "file"))
_TEXT_CONTENT = {"anyOf": [STR, arr(_TEXT_PART)]}
_USER_CONTENT = {"anyOf": [STR, arr({"anyOf": [_TEXT_PART, _IMAGE_PART, _AUDIO_PART, _FILE_PART]})]}
_TOOL_CALL = obj({"id": NAME, "function": obj({"name": NAME, "arguments": STR}, ("name",))}, ("id", "function"))
_CHAT_MESSAGE = {"anyOf": [
    obj({"role": {"enum": ["system", "developer"]}, "content": _TEXT_CONTENT, "name": nullable(STR)},
        ("role", "content")),
    obj({"role": {"const": "user"}, "content": _USER_CONTENT, "name": nullable(STR)}, ("role", "content")),
    obj({"role": {"const": "assistant"}, "content": nullable(_TEXT_CONTENT), "tool_calls": nullable(arr(_TOOL_CALL)),
         "reasoning_content": nullable(STR), "name": nullable(STR)}, ("role",)),
    obj({"role": {"const": "tool"}, "content": _TEXT_CONTENT, "tool_call_id": NAME}, ("role", "content", "tool_call_id")),
    obj({"role": {"const": "function"}, "content": nullable(_TEXT_CONTENT), "name": NAME}, ("role", "name")),
]}
_FUNCTION_TOOL = obj({"type": {"const": "function"},
                      "function": obj({"name": NAME, "description": nullable(STR), "parameters": nullable(OBJ),
                                       "strict": nullable(BOOL)}, ("name",))}, ("function",))

CHAT_REQUEST = obj({
    "model": MODEL,
    "messages": arr(_CHAT_MESSAGE, minItems=1),
    "tools": nullable(arr(_FUNCTION_TOOL)),
    "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "null"},
                              obj({"type": {"const": "function"}, "function": obj({"name": NAME}, ("name",))},
                                  ("type", "function"))]},
    "response_format": {"anyOf": [
        {"type": "null"},
        obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        obj({"type": {"const": "json_schema"},
             "json_schema": obj({"name": nullable(STR), "schema": OBJ, "strict": nullable(BOOL)})},
            ("type", "json_schema")),
    ]},
    "temperature": nullable({"type": "number", "minimum": 0, "maximum": 2}),
    "top_p": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "max_tokens": nullable(TOKENS),
    "max_completion_tokens": nullable(TOKENS),
    "stop": {"anyOf": [STR, arr(STR), {"type": "null"}]},
    "seed": nullable({"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}),
    "n": nullable({"type": "integer", "minimum": 1, "maximum": 1}),
    "logprobs": {"enum": [False, None]},
    "top_logprobs": {"enum": [0, None]},
    "stream": nullable(BOOL),
    "stream_options": nullable(obj({"include_usage": nullable(BOOL)})),
    "reasoning_effort": nullable({"enum": ["none", "minimal", "low", "medium", "high", "xhigh", "max"]}),
    "thinking": nullable(obj({"type": nullable({"enum": ["enabled", "disabled"]}), "budget_tokens": nullable(TOKENS)})),
    "parallel_tool_calls": nullable(BOOL),
    "user": nullable(STR),
    **ignored(CHAT_IGNORED),
    # ignored as long as it asks for no audio answer, which is refused as 'audio' is
    "modalities": nullable({"type": "array", "items": {"not": {"const": "audio"}}}),
}, ("model", "messages"), closed=True)

EMBEDDING_REQUEST = obj({
    "model": MODEL,
    "input": {"anyOf": [{"type": "string", "minLength": 1}, arr({"type": "string", "minLength": 1}, minItems=1),
                        arr({"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, minItems=1),
                        arr(arr({"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, minItems=1), minItems=1)]},
    "encoding_format": nullable({"enum": ["float", "base64"]}),
    "dimensions": nullable({"type": "integer", "minimum": 1, "maximum": 65536}),
    "user": nullable(STR),
}, ("model", "input"), closed=True)

IMAGE_REQUEST = obj({
    "model": nullable(MODEL), "prompt": {"type": "string", "pattern": r"\S"},
    "n": nullable({"type": "integer", "minimum": 1, "maximum": 10}), "size": nullable(STR),
    "quality": nullable({"enum": list(IMAGE_QUALITIES)}), "response_format": nullable({"enum": ["url", "b64_json"]}), "user": nullable(STR),
    "stream": {"enum": [False, None]}, **ignored(IMAGE_IGNORED), **ignored(IMAGE_OPTIONS),
}, ("prompt",), closed=True)

# --------------------------------------------------------------------------- Anthropic

_A_SOURCE = {"anyOf": [obj({"type": {"const": "base64"}, "media_type": STR, "data": STR},
                           ("type", "media_type", "data")),
                       obj({"type": {"const": "url"}, "url": URL}, ("type", "url"))]}
_A_TEXT = obj({"type": {"const": "text"}, "text": STR}, ("type", "text"))
_A_BLOCK = {"anyOf": [
    _A_TEXT,
    obj({"type": {"const": "image"}, "source": _A_SOURCE}, ("type", "source")),
    obj({"type": {"const": "document"}, "source": _A_SOURCE}, ("type", "source")),
    obj({"type": {"const": "tool_result"}, "tool_use_id": NAME,
         "content": {"anyOf": [STR, arr(_A_TEXT), {"type": "null"}]}, "is_error": nullable(BOOL)},
        ("type", "tool_use_id")),
]}
_A_ASSISTANT_BLOCK = {"anyOf": [
    _A_TEXT,
    obj({"type": {"const": "tool_use"}, "id": NAME, "name": NAME, "input": OBJ}, ("type", "id", "name")),
    obj({"type": {"const": "thinking"}, "thinking": nullable(STR), "signature": nullable(STR)}, ("type",)),
    obj({"type": {"const": "redacted_thinking"}, "data": STR}, ("type", "data")),
]}
_A_FORMAT = obj({"type": {"const": "json_schema"}, "schema": OBJ}, ("type", "schema"))
MESSAGES_REQUEST = obj({
    "model": MODEL,
    "max_tokens": TOKENS,
    "messages": arr({"anyOf": [
        obj({"role": {"const": "user"}, "content": {"anyOf": [STR, arr(_A_BLOCK)]}}, ("role", "content")),
        obj({"role": {"const": "assistant"}, "content": {"anyOf": [STR, arr(_A_ASSISTANT_BLOCK)]}},
            ("role", "content")),
        obj({"role": {"const": "system"}, "content": {"anyOf": [STR, arr(_A_TEXT)]}}, ("role", "content")),
    ]}, minItems=1),
    "system": {"anyOf": [STR, arr(_A_TEXT), {"type": "null"}]},
    "tools": nullable(arr(obj({"name": NAME, "description": nullable(STR), "input_schema": OBJ,
                               "type": {"enum": ["custom", None]}, "cache_control": nullable(OBJ)},
                              ("name", "input_schema")))),
    "tool_choice": nullable(obj({"type": {"enum": ["auto", "any", "tool", "none"]}, "name": nullable(NAME),
                                 "disable_parallel_tool_use": nullable(BOOL)}, ("type",))),
    "output_config": nullable(obj({"format": nullable(_A_FORMAT),
                                   "effort": nullable({"enum": ["low", "medium", "high", "xhigh", "max"]})})),
    "output_format": nullable(_A_FORMAT),
    "thinking": {"anyOf": [
        {"type": "null"},
        obj({"type": {"const": "enabled"}, "budget_tokens": TOKENS}, ("type", "budget_tokens")),
        obj({"type": {"enum": ["disabled", "adaptive"]}}, ("type",)),
    ]},
    "temperature": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "top_p": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "stop_sequences": nullable(arr(STR)),
    "stream": nullable(BOOL),
    "metadata": nullable(obj({"user_id": nullable(STR)})),
    "cache_control": nullable(OBJ),
    "context_management": nullable(obj({"edits": nullable(arr(obj({"type": STR}, ("type",))))})),
    **ignored(MESSAGES_IGNORED),
}, ("model", "max_tokens", "messages"), closed=True)
COUNT_TOKENS_REQUEST = {**MESSAGES_REQUEST, "required": ["model", "messages"]}

# --------------------------------------------------------------------------- OpenAI Responses
# (the Responses routes' own schema, as their module wrote it)

_R_INPUT_PART = {"anyOf": [
    obj({"type": {"const": "input_text"}, "text": STR}, ("type", "text")),
    obj({"type": {"const": "input_image"}, "image_url": STR, "detail": {"enum": ["auto", "low", "high"]}},
        ("type", "image_url")),
    obj({"type": {"const": "input_file"}, "file_data": STR, "file_url": STR, "filename": STR}, ("type",)),
]}
_R_ITEM = {"anyOf": [
    obj({"type": {"const": "message"}, "role": {"enum": ["user", "system", "developer", "assistant"]},
         "content": {"anyOf": [STR, arr(OBJ)]}}, ("role", "content")),
    obj({"type": {"const": "function_call"}, "call_id": STR, "name": STR, "arguments": STR},
        ("type", "call_id", "name", "arguments")),
    obj({"type": {"const": "function_call_output"}, "call_id": STR,
         "output": {"anyOf": [STR, arr(_R_INPUT_PART)]}}, ("type", "call_id", "output")),
    obj({"type": {"const": "reasoning"}, "id": STR, "summary": arr(obj({"type": STR, "text": STR})),
         "encrypted_content": STR}, ("type", "summary")),
]}
RESPONSES_REQUEST = obj({
    "model": MODEL,
    "input": {"anyOf": [{"type": "string", "minLength": 1}, arr(_R_ITEM, minItems=1)]},
    "instructions": STR,
    "previous_response_id": {"type": "string", "pattern": NO_NUL_PATTERN},
    "store": BOOL,
    "stream": BOOL,
    "tools": arr(obj({"type": STR, "name": STR, "description": STR, "parameters": OBJ, "strict": BOOL}, ("type",))),
    "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]},
                              obj({"type": {"const": "function"}, "name": STR}, ("type", "name"))]},
    "parallel_tool_calls": BOOL,
    "text": obj({"format": {"anyOf": [
        obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        obj({"type": {"const": "json_schema"}, "name": STR, "schema": OBJ, "strict": BOOL}, ("type", "schema")),
    ]}}),
    "reasoning": obj({"effort": {"enum": ["none", "minimal", "low", "medium", "high", "xhigh", "max"]},
                      "summary": {"enum": ["auto", "concise", "detailed"]}}),
    "max_output_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 512}, "maxProperties": 16},
    "user": STR,
    "safety_identifier": STR,
    "truncation": nullable({"enum": ["auto", "disabled"]}),
    "background": {"enum": [False, None]},
    "conversation": {"type": "null"},
    "prompt": {"type": "null"},
    "context_management": {"type": "null"},
    "top_logprobs": {"enum": [0, None]},
    **ignored(RESPONSES_IGNORED),
    "include": nullable(arr(STR)),
}, ("model", "input"), closed=True)

# --------------------------------------------------------------------------- admin

_BIG = 1_000_000_000
_FAR = 10_000 * 365 * 86400.0
_PRICE = nullable({"type": "number", "minimum": 0, "maximum": 1e9})


#: A name: no NUL, and not blank (one character at least that is not a space).
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


def stored_text(chars: int | None, **extra: Any) -> dict[str, Any]:
    """An admin text field: what its column keeps (``admin_text``), at most ``chars`` and no NUL."""
    return {"type": "string", "pattern": NO_NUL_PATTERN, **({"maxLength": chars} if chars else {}), **extra}


MODEL_ENTRY = obj({
    "name": {"type": "string", "pattern": NOT_BLANK_PATTERN, "maxLength": ENTRY_NAME_CHARS},
    "identifier": stored_text(ENTRY_TEXT_CHARS["identifier"], minLength=1),
    "provider": {"enum": sorted(provider_names()),
                 "description": "a built-in provider (listed), or one defined under [providers] in the server's "
                                "cloverleaf.toml"},
    "base_url": nullable(stored_text(ENTRY_TEXT_CHARS["base_url"])),
    "api_key": nullable(stored_text(None, writeOnly=True,
                                    description="write-only; on PUT, leave it out to keep the stored key, "
                                                "send \"\" or null to remove it")),
    "api_key_env": nullable(stored_text(ENTRY_TEXT_CHARS["api_key_env"])), "is_public": nullable(BOOL),
    "input_cost_per_1k": _PRICE, "output_cost_per_1k": _PRICE, "cached_input_cost_per_1k": _PRICE,
    "cache_write_cost_per_1k": _PRICE, "cache_write_1h_cost_per_1k": _PRICE,
    "context_window": nullable({"type": "integer", "minimum": 1, "maximum": _BIG}),
    "additional_config": nullable(OBJ),
    "data_retention_days": nullable({"type": "integer", "minimum": 0, "maximum": 1_000_000}),
    # what GET answers beside the fields, accepted back (a GET-then-PUT round trip) and ignored
    "has_api_key": nullable({**BOOL, "readOnly": True, "description": "answered by GET; ignored when sent"}),
    "source": nullable({"enum": ["admin", "config"], "readOnly": True,
                        "description": "answered by GET; ignored when sent"}),
}, closed=True)
VIRTUAL_KEY = obj({
    "name": stored_text(KEY_NAME_CHARS, pattern=NOT_BLANK_PATTERN,
                        description="leave it out for a key without a name; null is refused (a name is changed, "
                                    "never removed)"),
    "allowed_models": nullable(arr(MODEL, maxItems=KEY_MODELS_MAX)),
    "budget": nullable({"type": "number", "minimum": 0, "maximum": 1e12}),
    "budget_period": {"enum": ["day", "month", "total", None]},
    "rpm": nullable({"type": "integer", "minimum": 1, "maximum": _BIG}),
    "tpm": nullable({"type": "integer", "minimum": 1, "maximum": _BIG}),
    "expires_at": nullable({"type": "number", "minimum": 0, "maximum": _FAR}),
    "expires_in_seconds": nullable({"type": "number", "exclusiveMinimum": 0, "maximum": _FAR}),
    "expires_in_days": nullable({"type": "number", "exclusiveMinimum": 0, "maximum": _FAR / 86400.0}),
    "metadata": nullable(OBJ),
    "privacy": {"enum": ["any", "local-only", None]},
    "project": nullable({"type": "string", "pattern": PROJECT_PATTERN,
                         "description": "every call made with the key runs as this project (its budgets, spend "
                                        "by project); null: none"}),
}, closed=True)
TRACE_CREATE = obj({"id": nullable({"type": "string", "pattern": "^[!-~]{1,64}$"}), "metadata": nullable(OBJ)},
                   closed=True)

_OPENAI_OPERATIONS = ["POST /chat/completions", "POST /embeddings", "POST /images/generations", "GET /models",
                      "GET /models/{model}"]
#: What the document cannot express, each with its reason (also in ``info.description``).
#: The schemathesis test accepts a finding only when it matches one of these: the
#: operation, the check, and the ``param`` the server's 400 names.
DEVIATIONS: list[dict[str, Any]] = [
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages", "POST /v1/messages/count_tokens"],
     "check": "positive_data_acceptance", "param": r"tool_choice(\..*)?",
     "reason": "a tool_choice that forces a tool ('required', 'any', or a named tool) needs tools, and a named "
               "tool must be one of them: a rule across two fields"},
    {"operations": ["POST /admin/models", "PUT /admin/models/{name}", "PATCH /admin/models/{name}"],
     "check": "positive_data_acceptance", "param": "provider",
     "reason": "a model entry must be one the gateway can call: a key for its provider (api_key, api_key_env "
               "or the provider's usual variable set on the server) and a base_url where the provider needs one"},
    {"operations": ["POST /admin/models", "PUT /admin/models/{name}", "PATCH /admin/models/{name}"],
     "check": "positive_data_acceptance", "param": "additional_config",
     "reason": "additional_config may hold only the keys its provider's adapter reads (the error names them), "
               "as for a [[models]] entry in cloverleaf.toml: a typo is refused, not silently ignored"},
    {"operations": ["POST /admin/keys"], "check": "positive_data_acceptance", "param": "expires_at",
     "reason": "a new key's expires_at must be later than the server's clock (a key expired at birth would never "
               "work); on PATCH an earlier time expires the key now"},
    {"operations": ["POST /admin/keys", "PATCH /admin/keys/{key_id}"], "check": "positive_data_acceptance",
     "param": "expires_in_seconds|expires_in_days",
     "reason": "a key's expiry is given one way per request: expires_at, expires_in_seconds or expires_in_days"},
    {"operations": ["POST /v1/chat/completions"], "check": "positive_data_acceptance",
     "param": r"messages\[\d+\]\.tool_calls\[\d+\]\.function\.arguments",
     "reason": "a tool call's arguments are a string that must hold a JSON object"},
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages"], "check": "positive_data_acceptance",
     "code": "attachment_",
     "reason": "an attachment must be a real image, PDF or audio file (read from its bytes) at a URL the server "
               "may fetch (public addresses only; the test server resolves no host name)"},
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages", "POST /v1/embeddings",
                    "POST /v1/images/generations"], "check": "positive_data_acceptance", "upstream": True,
     "reason": "the provider refused the request (its own 400: e.g. a tool's parameters or a response schema "
               "that is no JSON Schema it accepts); the gateway passes such schemas on unchanged"},
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages", "POST /v1/embeddings",
                    "POST /v1/images/generations"], "check": "positive_data_acceptance",
     "code": "unsupported_capability",
     "reason": "a model entry created through the admin API may name a provider that cannot do the operation "
               "(422 unsupported_capability, with the providers that can)"},
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages", "POST /v1/embeddings",
                    "POST /v1/images/generations"], "check": "not_a_server_error", "code": "upstream_unreachable",
     "reason": "a model entry created through the admin API may point at an upstream that is not running (a "
               "local vLLM or Ollama at its default address): calling it is 502 upstream_unreachable, an "
               "upstream failure reported as such"},
    {"operations": ["POST /v1/chat/completions", "POST /v1/messages", "POST /v1/embeddings",
                    "POST /v1/images/generations"], "check": "not_a_server_error", "code": "circuit_open",
     "reason": "such an upstream, once it has failed calls enough in a row, has its circuit opened: calls to it "
               "are then 503 circuit_open with Retry-After until it may be tried again, the gateway's own "
               "protection reported as such"},
    {"operations": ["POST /v1/responses", "GET /v1/responses/{response_id}", "DELETE /v1/responses/{response_id}",
                    "GET /v1/responses/{response_id}/input_items"],
     "check": ["positive_data_acceptance", "negative_data_rejection", "status_code_conformance"],
     "reason": "the Responses routes' request schema is still looser than their parser (which refuses, with a "
               "400 naming the field, e.g. an empty call_id or tool name); it is to be made as strict as the "
               "other routes'"},
    {"operations": ["POST /v1/responses/{response_id}/cancel"],
     "check": ["positive_data_acceptance", "status_code_conformance"],
     "reason": "only a background response can be cancelled, and the gateway runs none: cancelling a stored "
               "response is a 400 that says so (an unknown one a 404)"},
    # -- against OpenAI's published document (its operation names, paths under /v1)
    {"spec": "openai", "operations": _OPENAI_OPERATIONS, "check": "status_code_conformance", "status": "4",
     "reason": "OpenAI's document declares only the 200 (and 429) answers of these operations; the gateway's "
               "other client errors (400, 401, 404, 415...) come in OpenAI's error shape, as OpenAI's API sends "
               "them, but are not declared there"},
    {"spec": "openai", "operations": ["POST /chat/completions"], "check": "positive_data_acceptance",
     "param": r"n|logprobs|top_logprobs|functions|function_call|audio|modalities|web_search_options|tools\[\d+\]\.type"
              r"|messages\[\d+\]\.content\[\d+\]\.(type|file\.file_id)",
     "reason": "what the gateway refuses rather than silently drop (see the chat request above): several choices "
               "(n > 1), log probabilities, legacy functions, audio output ('audio', or \"audio\" in 'modalities'), "
               "web search, tools other than "
               "functions, file ids and content parts it cannot pass to every provider"},
    {"spec": "openai", "operations": ["POST /chat/completions"], "check": "positive_data_acceptance",
     "param": r"tool_choice(\..*)?|messages\[\d+\]\.tool_calls\[\d+\]\.function\.arguments",
     "reason": "as for the server's own document: a forced tool must be among the tools, and a tool call's "
               "arguments must hold a JSON object"},
    {"spec": "openai", "operations": ["POST /chat/completions"], "check": "positive_data_acceptance",
     "code": "attachment_", "reason": "as for the server's own document: attachments must be real files at "
                                      "addresses the server may fetch"},
    {"spec": "openai", "operations": ["POST /chat/completions", "POST /images/generations", "POST /embeddings"],
     "check": "positive_data_acceptance", "code": "unknown_field",
     "reason": "OpenAI's document leaves request objects open, so any extra field is valid there; the gateway "
               "refuses a top-level field it does not know rather than drop it"},
    {"spec": "openai", "operations": ["POST /chat/completions"], "check": "positive_data_acceptance",
     "param": r"messages\[\d+\]\.(tool_call_id|name|tool_calls\[\d+\]\.(id|function\.name))",
     "reason": "tool call ids and tool names must hold a character other than a space"},
    {"spec": "openai", "operations": ["POST /embeddings"], "check": "positive_data_acceptance",
     "param": "dimensions", "reason": "at most 65,536 dimensions (no embedding model has more)"},
    {"spec": "openai", "operations": ["POST /images/generations"], "check": "positive_data_acceptance",
     "param": "stream", "reason": "streamed image generation is refused (not every provider has it)"},
    {"spec": "openai", "operations": _OPENAI_OPERATIONS, "check": "negative_data_rejection", "null": True,
     "reason": "null for an optional field is taken as the field left out, as OpenAI's API does (its document "
               "does not allow null there)"},
    {"spec": "openai", "operations": ["POST /embeddings"], "check": "response_schema_conformance",
     "request": {"encoding_format": "base64"},
     "reason": "with encoding_format base64 each embedding is a base64 string, as OpenAI's API sends it (its "
               "document types it as an array of numbers only)"},
    {"spec": "openai", "operations": ["POST /chat/completions", "GET /models/{model}"],
     "check": "allow_header_conformance",
     "reason": "OpenAI's document has more methods on these paths (stored completions, deleting fine-tuned "
               "models) than the gateway serves; Allow lists the ones it serves"},
    {"spec": "openai", "operations": _OPENAI_OPERATIONS, "check": "positive_data_acceptance",
     "param": r"model|prompt|input(\[\d+\])?",
     "reason": "an empty model name, prompt or embedding input is refused (OpenAI's document allows the empty "
               "string there; its API refuses it too)"},
]

#: Azure OpenAI's paths run the OpenAI routes' code (:mod:`.azure_api`): what the document cannot
#: express of an OpenAI route holds of its Azure aliases too.
_AZURE_ALIASES = {f"POST /v1/{op}": [f"POST /openai/deployments/{{deployment}}/{op}", f"POST /openai/v1/{op}"]
                  for op in ("chat/completions", "embeddings", "images/generations")}
for _item in DEVIATIONS:
    if "spec" not in _item:
        _item["operations"] = [alias for op in _item["operations"] for alias in (op, *_AZURE_ALIASES.get(op, ()))]
