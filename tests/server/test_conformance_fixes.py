"""The schemathesis findings of issue 12 item 9, each pinned by a direct test: 415 documented
on every body, query bounds enforced, ``user: {}`` refused, 405 with the full ``Allow``
list, the SSE response not typed as one JSON string; and the document's deviations are
stated in its description."""

from __future__ import annotations

from cloverleaf.server.openapi import document

from .conftest import MASTER, Live


def test_every_operation_with_a_body_documents_415_408_413() -> None:
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                assert {"400", "408", "413", "415"} <= set(op["responses"]), (method, path)


def test_event_stream_responses_are_not_typed_as_a_string() -> None:
    for path in ("/v1/chat/completions", "/v1/messages"):
        content = document()["paths"][path]["post"]["responses"]["200"]["content"]
        assert content["text/event-stream"] == {}


def test_request_bodies_are_closed_and_bounded() -> None:
    schemas = {path: ops["post"]["requestBody"]["content"]["application/json"]["schema"]
               for path, ops in document()["paths"].items() if "post" in ops and "requestBody" in ops["post"]}
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/images/generations",
                 "/admin/keys", "/admin/models", "/admin/traces"):
        assert schemas[path]["additionalProperties"] is False, path
    assert schemas["/admin/keys"]["properties"]["expires_in_days"]["anyOf"][0]["maximum"] == 3_650_000


def test_405_lists_every_method_of_the_path(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        r = http.request("OPTIONS", "/admin/keys/key_x")
        assert r.status_code == 405
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
        hot = http.get("/v1/chat/completions")
        assert hot.status_code == 405 and hot.headers["allow"] == "POST"


def test_query_and_body_bounds(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        assert http.get("/admin/keys", params={"include_revoked": "null"}).status_code == 400
        assert http.get("/admin/keys", params={"include_revoked": "false"}).status_code == 200
        assert http.get("/admin/traces", params={"limit": 1001}).status_code == 400
        assert http.get("/admin/traces", params={"limit": "1.5"}).status_code == 400
        assert http.post("/admin/keys", json={"expires_in_days": 5e16}).status_code == 400
        assert http.post("/admin/keys", json={"colour": "red"}).json()["error"]["code"] == "unknown_field"
        for path, body in (("/v1/embeddings", {"model": "fake/embed", "input": "x", "user": {}}),
                           ("/v1/images/generations", {"model": "fake/image", "prompt": "x", "user": {}})):
            r = http.post(path, json=body)
            assert r.status_code == 400 and r.json()["error"]["param"] == "user", r.text
        entry = {"name": "needs-key", "identifier": "grok-4", "provider": "xai"}
        r = http.post("/admin/models", json=entry)  # no XAI key on this server: refused now, not 503 later
        assert r.status_code == 400 and "XAI_API_KEY" in r.json()["error"]["message"]
        r = http.post("/v1/chat/completions", json={"model": "xai/grok-4", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_deviations_are_described() -> None:
    info = document()["info"]
    assert info["x-cloverleaf-deviations"]
    for item in info["x-cloverleaf-deviations"]:
        assert item["reason"] in info["description"]
    assert "128 levels" in info["description"]
