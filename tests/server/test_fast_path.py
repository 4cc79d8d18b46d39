"""The hot routes' dispatcher (``fast_path``) against the Starlette routes beside it: the
same answers, headers and metrics whichever side serves a request."""

from __future__ import annotations

import httpx

from .conftest import MASTER, Live

CHAT = {"model": "fake/echo", "messages": [{"role": "user", "content": "same either way"}]}


def test_hot_and_starlette_routes_agree_on_a_repeated_authorization_header(secured_server: Live) -> None:
    """The first value of a repeated header is the one checked, on both paths."""
    good_first = [("authorization", f"Bearer {MASTER}"), ("authorization", "Bearer wrong-key")]
    bad_first = list(reversed(good_first))
    with httpx.Client(base_url=secured_server.url, timeout=30) as http:
        answers = {(path, first): (http.post(path, json=CHAT, headers=h) if path.endswith("completions")
                                   else http.get(path, headers=h)).status_code
                   for path in ("/v1/chat/completions", "/v1/models")
                   for first, h in (("good", good_first), ("bad", bad_first))}
    assert answers == {("/v1/chat/completions", "good"): 200, ("/v1/chat/completions", "bad"): 401,
                       ("/v1/models", "good"): 200, ("/v1/models", "bad"): 401}


def test_a_hot_route_answers_with_its_headers_and_counts_in_metrics(secured_server: Live) -> None:
    with httpx.Client(base_url=secured_server.url, timeout=30,
                      headers={"authorization": f"Bearer {MASTER}"}) as http:
        r = http.post("/v1/embeddings", json={"model": "fake/embed", "input": ["a", "bb"]})
        metrics = http.get("/metrics").text
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert float(r.headers["x-cloverleaf-overhead-ms"]) >= 0
    assert [d["index"] for d in r.json()["data"]] == [0, 1]
    assert 'cloverleaf_requests_total{api="openai",model="fake/embed",provider="fake",status="200"}' in metrics


def test_bookkeeping_done_after_the_answer_is_visible_to_the_next_request(secured_server: Live) -> None:
    """The dispatcher records a hot route's metrics after its answer is sent; a scrape that
    follows the answer (same connection, next request) already sees all of them."""
    with httpx.Client(base_url=secured_server.url, timeout=30,
                      headers={"authorization": f"Bearer {MASTER}"}) as http:
        before = http.get("/metrics").text
        r = http.post("/v1/chat/completions", json=CHAT)
        after = http.get("/metrics").text
    assert r.status_code == 200
    usage = r.json()["usage"]

    def value(text: str, series: str) -> float:
        return sum(float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(series))

    series = 'cloverleaf_requests_total{api="openai",model="fake/echo",provider="fake",status="200"}'
    assert value(after, series) == value(before, series) + 1
    overhead = 'cloverleaf_gateway_overhead_seconds_count{api="openai"}'
    assert value(after, overhead) == value(before, overhead) + 1
    tokens = 'cloverleaf_tokens_total{model="fake/echo",provider="fake",type="input"}'
    assert value(after, tokens) == value(before, tokens) + usage["prompt_tokens"]


def test_a_body_sent_in_pieces_is_read_whole(secured_server: Live) -> None:
    """A chunked upload arrives as several ASGI messages; the dispatcher joins them."""
    payload = httpx.Request("POST", "/", json=CHAT).content

    def pieces() -> object:
        for i in range(0, len(payload), 7):
            yield payload[i:i + 7]

    with httpx.Client(base_url=secured_server.url, timeout=30) as http:
        r = http.post("/v1/chat/completions", content=pieces(),  # type: ignore[arg-type]
                      headers={"authorization": f"Bearer {MASTER}", "content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "same either way"


def test_responses_calls_count_under_their_own_api_streamed_or_not(secured_server: Live) -> None:
    """A streamed Responses call is counted under api="responses", as a non-streamed one is,
    though its errors take the OpenAI shape."""
    with httpx.Client(base_url=secured_server.url, timeout=30,
                      headers={"authorization": f"Bearer {MASTER}"}) as http:
        plain = http.post("/v1/responses", json={"model": "fake/echo", "input": "counted"})
        with http.stream("POST", "/v1/responses", json={"model": "fake/echo", "input": "counted", "stream": True}) as s:
            body = "".join(s.iter_text())
        metrics = http.get("/metrics").text
    assert plain.status_code == 200 and s.status_code == 200 and "response.completed" in body
    series = 'cloverleaf_requests_total{api="responses",model="fake/echo",provider="fake",status="200"} 2\n'
    assert series in metrics, [line for line in metrics.splitlines() if "requests_total" in line]


def test_a_nul_character_in_a_path_or_query_is_a_400_before_any_lookup(secured_server: Live) -> None:
    """No name, id or filter value the server keeps can hold NUL (PostgreSQL refuses it in text),
    and one that reached the store as a lookup was a 500 there: refused at the door, in the
    API's error shape; the hot routes' exact paths never hold one."""
    paths = ["/v1/models/a%00b", "/v1/responses/resp_%00", "/admin/keys/key_%00", "/admin/traces?model=a%00",
             "/ui/traces?model=%00", "/v1/messages/count_tokens%00"]
    with httpx.Client(base_url=secured_server.url, timeout=30,
                      headers={"authorization": f"Bearer {MASTER}", "anthropic-version": "2023-06-01"}) as http:
        answers = {path: http.get(path) for path in paths}
        still = http.get("/v1/models/fake%2Fecho")
    for path, r in answers.items():
        assert r.status_code == 400, (path, r.status_code, r.text)
        body = r.json()
        if path.startswith("/v1/messages"):
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        else:
            assert body["error"]["code"] == "invalid_nul" and "%00" in body["error"]["message"]
    assert still.status_code in (200, 404)   # an ordinary escaped path is untouched
