"""The server's own OpenAPI 3.1 document, served at ``/openapi.json``.

It describes what *this* server accepts (a subset of OpenAI's and Anthropic's APIs, plus
the admin API), precisely enough for schemathesis to generate valid and invalid requests
against it in the test suite. The full OpenAI response schemas are not repeated here: the
tests validate responses against OpenAI's own published document instead.
"""

from __future__ import annotations

from typing import Any

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}
MODEL: dict[str, Any] = {"type": "string", "examples": ["fake/echo"]}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def _arr(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: str, *errors: int, schema: dict[str, Any] | None = None,
               stream: bool = False, error: str = "OpenAIError") -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema or OBJ}}
    if stream:
        content["text/event-stream"] = {"schema": STR}
    out: dict[str, Any] = {"200": {"description": ok, "content": content}}
    for status in errors:
        out[str(status)] = {"description": _STATUS[status], **_json(_ref(error))}
    return out


_STATUS = {400: "Malformed request", 401: "Missing or invalid key", 402: "Budget exhausted",
           403: "Model not allowed for this key", 404: "Unknown model or resource", 409: "Already exists",
           408: "Body not received in time", 413: "Body too large", 415: "Body not sent as application/json",
           422: "The provider cannot do this", 429: "Rate limited (Retry-After)",
           502: "Upstream failed", 503: "Unavailable (Retry-After)", 504: "Upstream timed out"}
_MODEL_ERRORS = (400, 401, 402, 403, 404, 408, 413, 415, 422, 429, 502, 503, 504)

_TEXT_PART = _obj({"type": {"const": "text"}, "text": STR}, ("type", "text"))
_IMAGE_PART = _obj({"type": {"const": "image_url"},
                    "image_url": _obj({"url": STR, "detail": {"enum": ["auto", "low", "high"]}}, ("url",))},
                   ("type", "image_url"))
_AUDIO_PART = _obj({"type": {"const": "input_audio"},
                    "input_audio": _obj({"data": STR, "format": STR}, ("data", "format"))}, ("type", "input_audio"))
_FILE_PART = _obj({"type": {"const": "file"}, "file": _obj({"file_data": STR, "filename": STR})}, ("type", "file"))
_CONTENT = {"anyOf": [STR, _arr({"anyOf": [_TEXT_PART, _IMAGE_PART, _AUDIO_PART, _FILE_PART]})]}
_TOOL_CALL = _obj({"id": STR, "type": {"const": "function"},
                   "function": _obj({"name": STR, "arguments": STR}, ("name", "arguments"))}, ("id", "function"))
_CHAT_MESSAGE = {"anyOf": [
    _obj({"role": {"enum": ["system", "developer"]}, "content": _CONTENT, "name": STR}, ("role", "content")),
    _obj({"role": {"const": "user"}, "content": _CONTENT, "name": STR}, ("role", "content")),
    _obj({"role": {"const": "assistant"}, "content": {"anyOf": [_CONTENT, {"type": "null"}]},
          "tool_calls": _arr(_TOOL_CALL), "reasoning_content": STR}, ("role",)),
    _obj({"role": {"const": "tool"}, "content": _CONTENT, "tool_call_id": STR}, ("role", "content", "tool_call_id")),
]}
_FUNCTION_TOOL = _obj({"type": {"const": "function"},
                       "function": _obj({"name": STR, "description": STR, "parameters": OBJ, "strict": BOOL},
                                        ("name",))}, ("type", "function"))

CHAT_REQUEST = _obj({
    "model": MODEL,
    "messages": _arr(_CHAT_MESSAGE, minItems=1),
    "tools": _arr(_FUNCTION_TOOL),
    "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]},
                              _obj({"type": {"const": "function"}, "function": _obj({"name": STR}, ("name",))},
                                   ("type", "function"))]},
    "response_format": {"anyOf": [
        _obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        _obj({"type": {"const": "json_schema"},
              "json_schema": _obj({"name": STR, "schema": OBJ, "strict": BOOL}, ("name",))}, ("type", "json_schema")),
    ]},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "max_tokens": {"type": "integer", "minimum": 1},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "stop": {"anyOf": [STR, _arr(STR)]},
    "seed": INT,
    "n": {"type": "integer", "minimum": 1, "maximum": 1},
    "stream": BOOL,
    "stream_options": _obj({"include_usage": BOOL}),
    "reasoning_effort": {"enum": ["none", "minimal", "low", "medium", "high"]},
    "parallel_tool_calls": BOOL,
    "user": STR,
}, ("model", "messages"))

EMBEDDING_REQUEST = _obj({
    "model": MODEL,
    "input": {"anyOf": [{"type": "string", "minLength": 1}, _arr({"type": "string", "minLength": 1}, minItems=1)]},
    "encoding_format": {"enum": ["float", "base64"]},
    "dimensions": {"type": "integer", "minimum": 1},
    "user": STR,
}, ("model", "input"))

IMAGE_REQUEST = _obj({
    "model": MODEL, "prompt": {"type": "string", "minLength": 1}, "n": {"type": "integer", "minimum": 1, "maximum": 10},
    "size": STR, "quality": STR, "response_format": {"enum": ["url", "b64_json"]}, "user": STR,
}, ("model", "prompt"))

_A_SOURCE = {"anyOf": [_obj({"type": {"const": "base64"}, "media_type": STR, "data": STR},
                            ("type", "media_type", "data")),
                       _obj({"type": {"const": "url"}, "url": STR}, ("type", "url"))]}
_A_BLOCK = {"anyOf": [
    _obj({"type": {"const": "text"}, "text": STR}, ("type", "text")),
    _obj({"type": {"const": "image"}, "source": _A_SOURCE}, ("type", "source")),
    _obj({"type": {"const": "document"}, "source": _A_SOURCE}, ("type", "source")),
    _obj({"type": {"const": "tool_use"}, "id": STR, "name": STR, "input": OBJ}, ("type", "id", "name", "input")),
    _obj({"type": {"const": "tool_result"}, "tool_use_id": STR, "content": {"anyOf": [STR, _arr(OBJ)]},
          "is_error": BOOL}, ("type", "tool_use_id")),
    _obj({"type": {"const": "thinking"}, "thinking": STR, "signature": STR}, ("type", "thinking")),
]}
MESSAGES_REQUEST = _obj({
    "model": MODEL,
    "max_tokens": {"type": "integer", "minimum": 1},
    "messages": _arr(_obj({"role": {"enum": ["user", "assistant"]}, "content": {"anyOf": [STR, _arr(_A_BLOCK)]}},
                          ("role", "content")), minItems=1),
    "system": {"anyOf": [STR, _arr(_obj({"type": {"const": "text"}, "text": STR}, ("type", "text")))]},
    "tools": _arr(_obj({"name": STR, "description": STR, "input_schema": OBJ}, ("name", "input_schema"))),
    "tool_choice": _obj({"type": {"enum": ["auto", "any", "tool", "none"]}, "name": STR,
                         "disable_parallel_tool_use": BOOL}, ("type",)),
    "thinking": _obj({"type": {"enum": ["enabled", "disabled", "adaptive"]},
                      "budget_tokens": {"type": "integer", "minimum": 1}}, ("type",)),
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "stop_sequences": _arr(STR),
    "stream": BOOL,
    "metadata": _obj({"user_id": STR}),
}, ("model", "max_tokens", "messages"))

_R_INPUT_PART = {"anyOf": [
    _obj({"type": {"const": "input_text"}, "text": STR}, ("type", "text")),
    _obj({"type": {"const": "input_image"}, "image_url": STR, "detail": {"enum": ["auto", "low", "high"]}},
         ("type", "image_url")),
    _obj({"type": {"const": "input_file"}, "file_data": STR, "file_url": STR, "filename": STR}, ("type",)),
]}
_R_ITEM = {"anyOf": [
    _obj({"type": {"const": "message"}, "role": {"enum": ["user", "system", "developer", "assistant"]},
          "content": {"anyOf": [STR, _arr(OBJ)]}}, ("role", "content")),
    _obj({"type": {"const": "function_call"}, "call_id": STR, "name": STR, "arguments": STR},
         ("type", "call_id", "name", "arguments")),
    _obj({"type": {"const": "function_call_output"}, "call_id": STR,
          "output": {"anyOf": [STR, _arr(_R_INPUT_PART)]}}, ("type", "call_id", "output")),
    _obj({"type": {"const": "reasoning"}, "id": STR, "summary": _arr(_obj({"type": STR, "text": STR})),
          "encrypted_content": STR}, ("type", "summary")),
]}
RESPONSES_REQUEST = _obj({
    "model": MODEL,
    "input": {"anyOf": [{"type": "string", "minLength": 1}, _arr(_R_ITEM, minItems=1)]},
    "instructions": STR,
    "previous_response_id": STR,
    "store": BOOL,
    "stream": BOOL,
    "tools": _arr(_obj({"type": STR, "name": STR, "description": STR, "parameters": OBJ, "strict": BOOL},
                       ("type",))),
    "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]},
                              _obj({"type": {"const": "function"}, "name": STR}, ("type", "name"))]},
    "parallel_tool_calls": BOOL,
    "text": _obj({"format": {"anyOf": [
        _obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        _obj({"type": {"const": "json_schema"}, "name": STR, "schema": OBJ, "strict": BOOL}, ("type", "schema")),
    ]}}),
    "reasoning": _obj({"effort": {"enum": ["none", "minimal", "low", "medium", "high"]},
                       "summary": {"enum": ["auto", "concise", "detailed"]}}),
    "max_output_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 512}, "maxProperties": 16},
    "user": STR,
}, ("model", "input"))

ERROR_OPENAI = _obj({"error": _obj({"message": STR, "type": STR, "param": {"type": ["string", "null"]},
                                    "code": {"type": ["string", "null"]}}, ("message", "type"))}, ("error",))
ERROR_ANTHROPIC = _obj({"type": {"const": "error"}, "error": _obj({"type": STR, "message": STR}, ("type", "message"))},
                       ("type", "error"))

MODEL_ENTRY = _obj({
    "name": {"type": "string", "minLength": 1}, "identifier": STR, "provider": {"type": "string", "examples": ["fake"]},
    "base_url": STR, "api_key": {"type": "string", "writeOnly": True}, "api_key_env": STR, "is_public": BOOL,
    "input_cost_per_1k": {"type": "number", "minimum": 0}, "output_cost_per_1k": {"type": "number", "minimum": 0},
    "cached_input_cost_per_1k": {"type": "number", "minimum": 0}, "context_window": {"type": "integer", "minimum": 1},
    "additional_config": OBJ, "data_retention_days": {"type": "integer", "minimum": 0},
})
VIRTUAL_KEY = _obj({
    "name": STR, "allowed_models": _arr(STR), "budget": {"type": ["number", "null"], "minimum": 0},
    "budget_period": {"enum": ["day", "month", "total", None]}, "rpm": {"type": ["integer", "null"], "minimum": 1},
    "tpm": {"type": ["integer", "null"], "minimum": 1}, "expires_at": {"type": ["number", "null"], "minimum": 0},
    "expires_in_seconds": {"type": "number", "minimum": 0}, "expires_in_days": {"type": "number", "minimum": 0},
    "metadata": OBJ, "privacy": {"enum": ["any", "local-only", None]},
})

TRACE_CREATE = {**_obj({"id": {"type": "string", "pattern": "^[!-~]{1,64}$"}, "metadata": OBJ}),
                "additionalProperties": False}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, security: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    if not security:
        op["security"] = []
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document() -> dict[str, Any]:
    admin = (401, 404)
    name, key_id = [_path_param("name")], [_path_param("key_id")]
    response_id = [_path_param("response_id")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloverleaf gateway", "version": "1",
                 "description": "OpenAI- and Anthropic-compatible LLM gateway with an admin API."},
        "security": [{"bearer": []}, {"x-api-key": []}],
        "paths": {
            "/health": {"get": _op("Liveness", _responses("alive"), security=False)},
            "/ready": {"get": _op("Readiness (store reachable)",
                                  {**_responses("ready"), "503": {"description": "store unreachable"}},
                                  security=False)},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                                 "responses": {"200": {"description": "text format 0.0.4",
                                                       "content": {"text/plain": {"schema": STR}}}}}},
            "/v1/chat/completions": {"post": _op("Chat completion (JSON or SSE)",
                                                 _responses("completion", *_MODEL_ERRORS, stream=True), CHAT_REQUEST)},
            "/v1/embeddings": {"post": _op("Embeddings", _responses("vectors", *_MODEL_ERRORS), EMBEDDING_REQUEST)},
            "/v1/images/generations": {"post": _op("Image generation", _responses("images", *_MODEL_ERRORS),
                                                   IMAGE_REQUEST)},
            "/v1/models": {"get": _op("Models and routes served", _responses("list", 401))},
            "/v1/models/{model}": {"get": _op("One model", _responses("model", 401, 403, 404),
                                              params=[_path_param("model")])},
            "/v1/messages": {"post": _op("Anthropic Messages (JSON or SSE)",
                                         _responses("message", *_MODEL_ERRORS, stream=True, error="AnthropicError"),
                                         MESSAGES_REQUEST)},
            "/v1/messages/count_tokens": {"post": _op("Estimated input tokens",
                                                      _responses("count", 400, 401, 403, 404, 413,
                                                                 error="AnthropicError"), MESSAGES_REQUEST)},
            "/v1/responses": {"post": _op("OpenAI Responses (JSON or SSE), any provider",
                                          _responses("response", *_MODEL_ERRORS, stream=True), RESPONSES_REQUEST)},
            "/v1/responses/{response_id}": {
                "get": _op("A stored response", _responses("response", 400, 401, 404), params=response_id),
                "delete": _op("Delete a stored response", _responses("deleted", 401, 404), params=response_id),
            },
            "/v1/responses/{response_id}/input_items": {"get": _op(
                "The items a stored response was generated from", _responses("items", 400, 401, 404),
                params=[*response_id, _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                        _query("order", {"enum": ["asc", "desc"]}), _query("after", STR)])},
            "/admin/models": {
                "get": _op("List model entries", _responses("entries", *admin)),
                "post": _op("Create a model entry", {**_responses("unused", 400, 409, *admin),
                                                     "201": {"description": "created", **_json(OBJ)}},
                            {**MODEL_ENTRY, "required": ["name", "identifier", "provider"]}),
            },
            "/admin/models/{name}": {
                "get": _op("One model entry", _responses("entry", *admin), params=name),
                "put": _op("Replace a model entry", _responses("entry", 400, *admin),
                           {**MODEL_ENTRY, "required": ["identifier", "provider"]}, params=name),
                "patch": _op("Update a model entry", _responses("entry", 400, *admin), MODEL_ENTRY, params=name),
                "delete": _op("Delete a model entry", _responses("deleted", *admin), params=name),
            },
            "/admin/keys": {
                "get": _op("List virtual keys", _responses("keys", *admin),
                           params=[_query("include_revoked", {"enum": ["true", "false"]})]),
                "post": _op("Create a virtual key (secret shown once)",
                            {**_responses("unused", 400, *admin), "201": {"description": "created", **_json(OBJ)}},
                            VIRTUAL_KEY),
            },
            "/admin/keys/{key_id}": {
                "get": _op("One virtual key", _responses("key", *admin), params=key_id),
                "patch": _op("Update a virtual key", _responses("key", 400, *admin), VIRTUAL_KEY, params=key_id),
                "delete": _op("Revoke a virtual key", _responses("key", *admin), params=key_id),
            },
            "/admin/keys/{key_id}/revoke": {"post": _op("Revoke a virtual key", _responses("key", *admin),
                                                        params=key_id)},
            "/admin/traces": {"get": _op("Recent calls", _responses("calls", 400, *admin), params=[
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}), _query("model", STR),
                _query("status", STR), _query("trace_id", STR)]),
                              "post": _op("Create a trace (send its id as x-cloverleaf-trace-id)",
                                          {**_responses("unused", 400, 409, *admin),
                                           "201": {"description": "created", **_json(OBJ)}}, TRACE_CREATE)},
            "/admin/traces/{trace_id}": {"get": _op("One trace with its calls (also one only sent as "
                                                    "x-cloverleaf-trace-id)", _responses("trace", *admin),
                                                    params=[_path_param("trace_id")])},
            "/admin/traces/{trace_id}/complete": {"post": _op("Complete a trace", _responses("trace", *admin),
                                                              params=[_path_param("trace_id")])},
            "/admin/spend": {"get": _op("Spend grouped", _responses("rows", 400, *admin), params=[
                _query("by", {"enum": ["model", "provider", "route", "day", "key", "project"]}),
                _query("since", NUM), _query("until", NUM)])},
            "/admin/breakers": {"get": _op("Circuit breaker states", _responses("states", *admin))},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": {"OpenAIError": ERROR_OPENAI, "AnthropicError": ERROR_ANTHROPIC},
        },
    }
