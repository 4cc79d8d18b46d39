"""Traces over HTTP (issue 12 item 10): create, read with calls (the header's too), complete."""

from __future__ import annotations

from .conftest import MASTER, Live

HELLO = [{"role": "user", "content": "hello"}]


def _chat(live: Live, trace_id: str, model: str = "fake/echo") -> None:
    live.openai(MASTER).chat.completions.create(model=model, messages=HELLO,
                                                extra_headers={"x-cloverleaf-trace-id": trace_id})


def test_create_call_read_complete(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        created = http.post("/admin/traces", json={"metadata": {"job": "nightly"}})
        assert created.status_code == 201, created.text
        trace = created.json()
        assert trace["id"].startswith("tr_") and trace["metadata"] == {"job": "nightly"}
        assert trace["completed_at"] is None and trace["calls"] == []
        _chat(secured_server, trace["id"])
        _chat(secured_server, trace["id"])
        read = http.get(f"/admin/traces/{trace['id']}").json()
        assert [c["requested_model"] for c in read["calls"]] == ["fake/echo", "fake/echo"]
        assert {c["trace_id"] for c in read["calls"]} == {trace["id"]}
        done = http.post(f"/admin/traces/{trace['id']}/complete")
        assert done.status_code == 200 and done.json()["completed_at"] is not None
        first = done.json()["completed_at"]
        again = http.post(f"/admin/traces/{trace['id']}/complete").json()
        assert again["completed_at"] == first  # completing twice keeps the first time
        assert http.get(f"/admin/traces/{trace['id']}").json()["completed_at"] == first


def test_a_trace_only_sent_as_a_header_is_a_trace(secured_server: Live) -> None:
    _chat(secured_server, "header-only-trace")
    with secured_server.http(MASTER) as http:
        read = http.get("/admin/traces/header-only-trace")
        assert read.status_code == 200, read.text
        body = read.json()
        assert body["id"] == "header-only-trace" and body["metadata"] == {} and body["completed_at"] is None
        assert [c["requested_model"] for c in body["calls"]] == ["fake/echo"]
        assert body["created_at"] == body["calls"][0]["created_at"]
        done = http.post("/admin/traces/header-only-trace/complete").json()
        assert done["completed_at"] is not None and len(done["calls"]) == 1


def test_chosen_id_conflicts_and_bad_input(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        assert http.post("/admin/traces", json={"id": "my-trace-1"}).status_code == 201
        conflict = http.post("/admin/traces", json={"id": "my-trace-1"})
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "trace_exists"
        for body in ({"id": "has space"}, {"id": "x" * 65}, {"metadata": [1]}, {"colour": "red"},
                     {"metadata": {"k": "v" * 20_000}}):
            r = http.post("/admin/traces", json=body)
            assert r.status_code == 400, (body, r.text)
        missing = http.get("/admin/traces/never-seen")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "trace_not_found"
        assert http.post("/admin/traces/never-seen/complete").status_code == 404
        assert http.get("/admin/traces", params={"limit": 5000}).status_code == 400


def test_trace_header_must_fit_the_store(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo", "messages": HELLO},
                      headers={"x-cloverleaf-trace-id": "t" * 65})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_trace_id"


def test_traces_are_in_the_openapi_document(secured_server: Live) -> None:
    with secured_server.http() as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/admin/traces"])
    assert "get" in paths["/admin/traces/{trace_id}"] and "post" in paths["/admin/traces/{trace_id}/complete"]
