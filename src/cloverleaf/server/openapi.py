"""The server's own OpenAPI 3.1 document, served at ``/openapi.json``.

It describes what *this* server accepts (a subset of OpenAI's and Anthropic's APIs, plus
the admin API), precisely enough for schemathesis to generate valid and invalid requests
against it in the test suite. The full OpenAI response schemas are not repeated here: the
tests validate responses against OpenAI's own published document instead.
"""

from __future__ import annotations

from typing import Any

from .. import _jsoncodec as jsoncodec
from .admin_text import NO_NUL_PATTERN
from .openapi_schemas import (
    CHAT_REQUEST,
    COUNT_TOKENS_REQUEST,
    DEVIATIONS,
    EMBEDDING_REQUEST,
    IMAGE_REQUEST,
    MESSAGES_REQUEST,
    MODEL_ENTRY,
    NUM,
    OBJ,
    RESPONSES_REQUEST,
    STR,
    TRACE_CREATE,
    VIRTUAL_KEY,
    obj,
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


#: what any operation that reads a JSON body may also answer
_BODY_ERRORS = (400, 408, 413, 415)


def _responses(ok: str, *errors: int, schema: dict[str, Any] | None = None, stream: bool = False,
               error: str = "OpenAIError", body: bool = False, created: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema or OBJ}}
    if stream:  # server-sent events: a stream of JSON events, not one JSON value
        content["text/event-stream"] = {}
    out: dict[str, Any] = {"201" if created else "200": {"description": ok, "content": content}}
    for status in sorted({*errors, *(_BODY_ERRORS if body else ())}):
        out[str(status)] = {"description": _STATUS[status], **_json(_ref(error))}
    return out


_STATUS = {400: "Malformed request", 401: "Missing or invalid key", 402: "Budget exhausted",
           403: "Model not allowed for this key", 404: "Unknown model or resource",
           409: "Conflict: already exists (a model entry: or is cloverleaf.toml's, read-only here), or a revoked "
                "key, which cannot be changed",
           408: "Body not received in time", 413: "Body too large", 415: "Body not sent as application/json",
           422: "The provider cannot do this", 429: "Rate limited (Retry-After)",
           502: "Upstream failed", 503: "Unavailable (Retry-After)", 504: "Upstream timed out"}
_MODEL_ERRORS = (401, 402, 403, 404, 422, 429, 502, 503, 504)


def _description() -> str:
    lines = ["OpenAI- and Anthropic-compatible LLM gateway with an admin API.", "",
             f"Every JSON body (and JSON inside a string field, such as tool-call arguments) may nest at most "
             f"{jsoncodec.MAX_DEPTH} levels of arrays and objects; deeper is a 400 `json_too_deep`. Request "
             "bodies are closed: a top-level field not listed here is a 400.", "",
             "Rules this document cannot express (a request that breaks one is a 400 naming the field):"]
    lines += [f"- {', '.join(item['operations'])}: {item['reason']}." for item in DEVIATIONS if "spec" not in item]
    lines += ["", "Where the server departs from OpenAI's published document (paths there are under /v1):"]
    lines += [f"- {', '.join(item['operations'])}: {item['reason']}." for item in DEVIATIONS if "spec" in item]
    return "\n".join(lines)


#: A listing's ``after``: the ``next`` its previous page answered (``gateway/store/keyset.py``)
CURSOR = {"type": "string", "pattern": r"^[0-9]{1,17}(\.[0-9]{1,17})?~[!-~]{1,64}$",
          "description": "the 'next' of the previous page, as it was given"}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, security: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
        # a path or query holding NUL is refused before any route (fast_path): a 400 wherever
        # a parameter is text
        if any(p["schema"] is TEXT for p in params):
            responses.setdefault("400", {"description": _STATUS[400], **_json(_ref("OpenAIError"))})
    if not security:
        op["security"] = []
    return op


#: A path or query parameter's text: anything but NUL (``%00``), which no name, id or value the
#: server keeps can hold (PostgreSQL refuses it in text); refused at the door with a 400.
TEXT: dict[str, Any] = {"type": "string", "pattern": NO_NUL_PATTERN}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": TEXT}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": TEXT if schema is STR else schema}


#: Azure's key header, besides the two every route takes (:mod:`.azure_api`).
_AZURE_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"x-api-key": []}, {"api-key": []}]
#: The Azure operations: (path under /openai/deployments/{deployment}/ and /openai/v1/, summary,
#: what a 200 holds, the OpenAI route's body, whether it may stream).
_AZURE_OPERATIONS = (("chat/completions", "Chat completion (JSON or SSE)", "completion", CHAT_REQUEST, True),
                     ("embeddings", "Embeddings", "vectors", EMBEDDING_REQUEST, False),
                     ("images/generations", "Image generation", "images", IMAGE_REQUEST, False))


def _azure_paths() -> dict[str, Any]:
    """Azure OpenAI's paths (:mod:`.azure_api`), for ``openai.AzureOpenAI``: the deployment in the
    path is the model (a ``model`` in the body is replaced by it, so the body need not name one)
    and ``api-version`` is required; ``/openai/v1/...`` are the OpenAI routes as they are. Every
    one takes the key in ``api-key`` too."""
    deployment = _path_param("deployment")
    version = {"name": "api-version", "in": "query", "required": True, "schema": {**TEXT, "minLength": 1},
               "description": "required, as Azure requires it; any version is accepted"}
    paths: dict[str, Any] = {}
    for operation, summary, ok, body, stream in _AZURE_OPERATIONS:
        in_path = {**body, "required": [field for field in body.get("required", ()) if field != "model"]}
        paths[f"/openai/deployments/{{deployment}}/{operation}"] = {"post": {
            **_op(f"Azure OpenAI: {summary}, the deployment naming the model",
                  _responses(ok, *_MODEL_ERRORS, stream=stream, body=True), in_path,
                  params=[deployment, version]), "security": _AZURE_SECURITY}}
        paths[f"/openai/v1/{operation}"] = {"post": {
            **_op(f"Azure OpenAI v1: {summary}", _responses(ok, *_MODEL_ERRORS, stream=stream, body=True), body),
            "security": _AZURE_SECURITY}}
    return paths


def document() -> dict[str, Any]:
    admin = (401, 404)
    name, key_id = [_path_param("name")], [_path_param("key_id")]
    trace_id = [_path_param("trace_id")]
    response_id = [_path_param("response_id")]
    model_body = {**MODEL_ENTRY, "required": ["identifier", "provider"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloverleaf gateway", "version": "1", "description": _description(),
                 "x-cloverleaf-deviations": DEVIATIONS},
        "security": [{"bearer": []}, {"x-api-key": []}],
        "paths": {
            "/health": {"get": _op("Liveness", _responses("alive"), security=False)},
            "/ready": {"get": _op("Readiness (store reachable)",
                                  {**_responses("ready"), "503": {"description": "store unreachable"}},
                                  security=False)},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                                 "responses": {"200": {"description": "text format 0.0.4",
                                                       "content": {"text/plain": {"schema": STR}}}}}},
            "/v1/chat/completions": {"post": _op("Chat completion (JSON or SSE)", _responses(
                "completion", *_MODEL_ERRORS, stream=True, body=True), CHAT_REQUEST)},
            "/v1/embeddings": {"post": _op("Embeddings", _responses("vectors", *_MODEL_ERRORS, body=True),
                                           EMBEDDING_REQUEST)},
            "/v1/images/generations": {"post": _op("Image generation (model: the server's image_model when left out)",
                                                   _responses("images", *_MODEL_ERRORS, body=True), IMAGE_REQUEST)},
            "/v1/models": {"get": _op("Models and routes served (Anthropic's shape with anthropic-version)",
                                      _responses("list", 401))},
            "/v1/models/{model}": {"get": _op("One model", _responses("model", 401, 403, 404),
                                              params=[_path_param("model")])},
            "/v1/messages": {"post": _op("Anthropic Messages (JSON or SSE)", _responses(
                "message", *_MODEL_ERRORS, stream=True, error="AnthropicError", body=True), MESSAGES_REQUEST)},
            "/v1/messages/count_tokens": {"post": _op("Estimated input tokens", _responses(
                "count", *_MODEL_ERRORS, error="AnthropicError", body=True), COUNT_TOKENS_REQUEST)},
            "/v1/responses": {"post": _op("OpenAI Responses (JSON or SSE), any provider", _responses(
                "response", *_MODEL_ERRORS, stream=True, body=True), RESPONSES_REQUEST)},
            "/v1/responses/{response_id}": {
                "get": _op("A stored response", _responses("response", 400, 401, 404), params=response_id),
                "delete": _op("Delete a stored response", _responses("deleted", 401, 404), params=response_id),
            },
            "/v1/responses/{response_id}/cancel": {"post": _op(
                "Cancel a background response (the gateway runs none: a stored response is a 400)",
                _responses("response", 400, 401, 404), params=response_id)},
            "/v1/responses/{response_id}/input_items": {"get": _op(
                "The items a stored response was generated from", _responses("items", 400, 401, 404),
                params=[*response_id, _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                        _query("order", {"enum": ["asc", "desc"]}), _query("after", STR)])},
            "/admin/models": {
                "get": _op("List model entries", _responses("entries", 400, *admin)),
                "post": _op("Create a model entry", _responses("created", 409, *admin, body=True, created=True),
                            {**MODEL_ENTRY, "required": ["name", "identifier", "provider"]}),
            },
            "/admin/models/{name}": {
                "get": _op("One model entry", _responses("entry", *admin), params=name),
                "put": _op("Replace a model entry", _responses("entry", 409, *admin, body=True), model_body,
                           params=name),
                "patch": _op("Update a model entry", _responses("entry", 409, *admin, body=True), MODEL_ENTRY,
                             params=name),
                "delete": _op("Delete a model entry", _responses("deleted", 400, 409, *admin), params=name),
            },
            "/admin/keys": {
                "get": _op("List virtual keys, oldest first, a page at a time: 'next' is the 'after' of the next "
                           "page (null on the last)", _responses("keys", 400, *admin),
                           params=[_query("include_revoked", {"enum": ["true", "false"]}),
                                   _query("limit", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 1000}),
                                   _query("after", CURSOR)]),
                "post": _op("Create a virtual key (secret shown once)",
                            _responses("created", *admin, body=True, created=True), VIRTUAL_KEY),
            },
            "/admin/keys/{key_id}": {
                "get": _op("One virtual key", _responses("key", *admin), params=key_id),
                "patch": _op("Update a virtual key", _responses("key", 409, *admin, body=True), VIRTUAL_KEY,
                             params=key_id),
                "delete": _op("Revoke a virtual key", _responses("key", *admin), params=key_id),
            },
            "/admin/keys/{key_id}/revoke": {"post": _op("Revoke a virtual key", _responses("key", *admin),
                                                        params=key_id)},
            "/admin/traces": {
                "get": _op("Recent calls, newest first, a page at a time: 'next' is the 'after' of the next page "
                           "(null on the last); 'model' lists every call /admin/spend?by=model counts under the "
                           "model that name means, and those that asked for the name",
                           _responses("calls", 400, *admin), params=[
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
                    _query("model", STR), _query("status", STR), _query("trace_id", STR), _query("after", CURSOR)]),
                "post": _op("Create a trace (send its id as x-cloverleaf-trace-id)",
                            _responses("created", 409, *admin, body=True, created=True), TRACE_CREATE),
            },
            "/admin/traces/{trace_id}": {"get": _op("One trace with its calls (also one only sent as "
                                                    "x-cloverleaf-trace-id)", _responses("trace", *admin),
                                                    params=trace_id)},
            "/admin/traces/{trace_id}/complete": {"post": _op("Complete a trace", _responses("trace", *admin),
                                                              params=trace_id)},
            "/admin/spend": {"get": _op("Spend grouped", _responses("rows", 400, *admin), params=[
                _query("by", {"enum": ["model", "provider", "route", "day", "key", "project"]}),
                _query("since", NUM), _query("until", NUM)])},
            "/admin/breakers": {"get": _op("Circuit breaker states: open and failing ones first", _responses(
                "states", 400, *admin), params=[_query("state", {"enum": ["open", "half_open", "closed"]}),
                                                _query("limit", {"type": "integer", "minimum": 1,
                                                                 "maximum": 10_000})])},
            **_azure_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                                "api-key": {"type": "apiKey", "in": "header", "name": "api-key",
                                            "description": "Azure OpenAI's key header (AzureOpenAI's api_key), "
                                                           "taken on the /openai/ paths"}},
            "schemas": {"OpenAIError": ERROR_OPENAI, "AnthropicError": ERROR_ANTHROPIC},
        },
    }


ERROR_OPENAI = obj({"error": obj({"message": STR, "type": STR, "param": {"type": ["string", "null"]},
                                  "code": {"type": ["string", "null"]}}, ("message", "type"))}, ("error",))
ERROR_ANTHROPIC = obj({"type": {"const": "error"}, "error": obj({"type": STR, "message": STR}, ("type", "message"))},
                      ("type", "error"))
