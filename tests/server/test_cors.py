"""Opt-in CORS (``[server] cors_origins``): a real server on 127.0.0.1, under ``h1`` and ``--http
uvicorn``, asked with raw httpx requests carrying ``Origin`` as a browser sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from cloverleaf._errors import ConfigError
from cloverleaf.server.options import ServerOptions

from .conftest import MASTER, Live, settings, start_live, stop_live

APP = "http://localhost:5173"
OTHER = "https://evil.example"
AUTH = {"authorization": f"Bearer {MASTER}"}
CHAT = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}
#: what the openai-node SDK's preflight asks for, in a browser
ASKED = "authorization,content-type,x-stainless-lang,x-stainless-os,openai-organization,x-stainless-retry-count"


def preflight(path: str, origin: str = APP, method: str = "POST", headers: str = ASKED) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": method, "access-control-request-headers": headers}


@pytest.fixture(scope="module", params=["h1", "uvicorn"])
def cors_server(request: pytest.FixtureRequest) -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER})
    live = start_live(s, ServerOptions.from_settings({"cors_origins": [APP, "https://app.example.com"],
                                                      "http": request.param}, s.env))
    yield live
    stop_live(live)


@pytest.fixture(scope="module")
def any_origin_server() -> Iterator[Live]:
    s = settings()
    live = start_live(s, ServerOptions.from_settings({}, {"CLOVERLEAF_CORS_ORIGINS": "*"}))
    yield live
    stop_live(live)


def _allowed(r: httpx.Response, origin: str = APP) -> None:
    assert r.headers.get("access-control-allow-origin") == origin, (r.status_code, dict(r.headers))
    assert "origin" in r.headers.get("vary", "").lower()
    assert "access-control-allow-credentials" not in r.headers


def _no_cors(r: httpx.Response) -> None:
    assert not [name for name in r.headers if name.lower().startswith("access-control-")], dict(r.headers)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings",
                                  "/v1/models", "/v1/images/generations", "/v1/responses/resp_1",
                                  "/openai/deployments/gpt-4o/chat/completions", "/openai/v1/chat/completions"])
def test_a_preflight_from_an_allowed_origin_is_a_204_that_allows_the_sdks_headers(cors_server: Live,
                                                                                   path: str) -> None:
    r = httpx.options(f"{cors_server.url}{path}", headers=preflight(path))
    assert r.status_code == 204 and r.content == b""
    _allowed(r)
    assert {"POST", "GET", "DELETE"} <= {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert r.headers["access-control-allow-headers"] == ASKED.replace(",", ", ")
    assert int(r.headers["access-control-max-age"]) > 0


def test_answers_to_an_allowed_origin_carry_cors_headers_errors_included(cors_server: Live) -> None:
    with httpx.Client(base_url=cors_server.url, headers={"origin": APP}) as http:
        ok = http.post("/v1/chat/completions", json=CHAT, headers=AUTH)   # the hot path
        models = http.get("/v1/models", headers=AUTH)                     # through Starlette
        unauthorized = http.post("/v1/messages", json={**CHAT, "max_tokens": 5})
        unknown = http.post("/v1/chat/completions", json={**CHAT, "model": "nope/nope"}, headers=AUTH)
        failed = http.post("/v1/chat/completions", json={**CHAT, "model": "fake/fail-500"}, headers=AUTH)
    assert (ok.status_code, models.status_code, unauthorized.status_code) == (200, 200, 401)
    assert unknown.status_code // 100 == 4 and failed.status_code // 100 == 5
    for r in (ok, models, unauthorized, unknown, failed):
        _allowed(r)
        exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "request-id", "retry-after", "x-should-retry", "x-ratelimit-remaining-requests",
                "x-cloverleaf-target"} <= exposed
    assert ok.headers["x-request-id"] and unauthorized.json()["type"] == "error"   # the answers themselves unchanged


def test_a_stream_to_an_allowed_origin_carries_cors_headers(cors_server: Live) -> None:
    with httpx.stream("POST", f"{cors_server.url}/v1/chat/completions", json={**CHAT, "stream": True},
                      headers={"origin": "https://app.example.com", **AUTH}) as r:
        body = r.read().decode()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    _allowed(r, "https://app.example.com")
    assert "data: [DONE]" in body


def test_a_disallowed_origin_gets_no_cors_headers_and_its_preflight_a_403(cors_server: Live) -> None:
    with httpx.Client(base_url=cors_server.url) as http:
        served = http.post("/v1/chat/completions", json=CHAT, headers={"origin": OTHER, **AUTH})
        refused = http.options("/v1/chat/completions", headers=preflight("", OTHER))
        refused_anthropic = http.options("/v1/messages", headers=preflight("", "http://localhost:5174"))
    assert served.status_code == 200   # the browser hides it from the page: no Access-Control-Allow-Origin
    _no_cors(served)
    assert refused.status_code == 403
    _no_cors(refused)
    error = refused.json()["error"]
    assert error["code"] == "cors_origin_not_allowed" and OTHER in error["message"]
    assert "cors_origins" in error["message"]
    assert refused_anthropic.status_code == 403 and refused_anthropic.json()["type"] == "error"


@pytest.mark.parametrize("path", ["/admin/keys", "/admin/models", "/ui", "/ui/login", "/metrics", "/health"])
def test_the_admin_api_and_the_dashboard_never_answer_cors(cors_server: Live, path: str) -> None:
    with httpx.Client(base_url=cors_server.url) as http:
        asked = http.options(path, headers=preflight(path))
        plain = http.get(path, headers={"origin": APP, **AUTH})
    assert asked.status_code in (404, 405)
    _no_cors(asked)
    _no_cors(plain)


def test_a_request_without_origin_is_untouched(cors_server: Live) -> None:
    r = httpx.post(f"{cors_server.url}/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 200
    _no_cors(r)
    assert httpx.options(f"{cors_server.url}/v1/chat/completions").status_code == 405   # not a preflight


def test_private_network_access_is_allowed_for_a_named_origin_only(cors_server: Live,
                                                                   any_origin_server: Live) -> None:
    asked = {**preflight(""), "access-control-request-private-network": "true"}
    named = httpx.options(f"{cors_server.url}/v1/chat/completions", headers=asked)
    starred = httpx.options(f"{any_origin_server.url}/v1/chat/completions", headers=asked)
    assert named.headers["access-control-allow-private-network"] == "true"
    assert starred.status_code == 204 and "access-control-allow-private-network" not in starred.headers


def test_star_allows_every_origin_without_credentials(any_origin_server: Live) -> None:
    asked = httpx.options(f"{any_origin_server.url}/v1/chat/completions", headers=preflight("", OTHER))
    answer = httpx.post(f"{any_origin_server.url}/v1/chat/completions", json=CHAT, headers={"origin": OTHER})
    assert asked.status_code == 204 and answer.status_code == 200
    for r in (asked, answer):
        _allowed(r, "*")
    _no_cors(httpx.get(f"{any_origin_server.url}/health", headers={"origin": OTHER}))


def test_cors_is_off_by_default(open_server: Live) -> None:
    """No setting: no CORS header anywhere and OPTIONS stays a 405, so no web page can read an answer."""
    with httpx.Client(base_url=open_server.url) as http:
        asked = http.options("/v1/chat/completions", headers=preflight("", APP))
        answer = http.post("/v1/chat/completions", json=CHAT, headers={"origin": APP})
    assert asked.status_code == 405 and answer.status_code == 200
    _no_cors(asked)
    _no_cors(answer)
    assert type(open_server.app).__name__ == "Dispatcher"   # no layer at all on the hot path


# --------------------------------------------------------------------------- the setting


def test_origins_are_read_from_the_file_and_the_environment_as_a_browser_spells_them() -> None:
    table = {"cors_origins": ["https://App.Example.com:443", "http://localhost:5173", "http://[::1]:3000", "*"]}
    assert ServerOptions.from_settings(table, {}).cors_origins == (
        "https://app.example.com", "http://localhost:5173", "http://[::1]:3000", "*")
    env = {"CLOVERLEAF_CORS_ORIGINS": " https://a.example , http://b.example:80,"}
    assert ServerOptions.from_settings(table, env).cors_origins == ("https://a.example", "http://b.example")
    assert ServerOptions.from_settings({}, {"CLOVERLEAF_CORS_ORIGINS": ""}).cors_origins == ()
    assert ServerOptions.from_settings({}, {}).cors_origins == ()


@pytest.mark.parametrize(("entry", "why"), [
    ("https://app.example.com/", "no path"), ("https://app.example.com/chat", "no path"),
    ("https://*.example.com", "wildcards"), ("app.example.com", "http:// or https://"),
    ("null", "http:// or https://"), ("ftp://files.example.com", "http:// or https://"),
    ("https://app.example.com:99999", "port"), ("https://user:pw@app.example.com", "user name or password"),
    ("https://app_example.com", "host"), ("", "empty"),
])
def test_a_malformed_origin_is_refused_at_start_up_saying_what_to_write(entry: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ServerOptions.from_settings({"cors_origins": [entry]}, {})
    message = str(refused.value)
    assert "[server] cors_origins[0]" in message and why in message and "scheme://host[:port]" in message
    with pytest.raises(ConfigError, match="CLOVERLEAF_CORS_ORIGINS"):
        ServerOptions.from_settings({}, {"CLOVERLEAF_CORS_ORIGINS": f"http://ok.example,{entry or 'x'}"})


def test_cors_origins_must_be_an_array() -> None:
    with pytest.raises(ConfigError, match=r"cors_origins must be an array"):
        ServerOptions.from_settings({"cors_origins": "https://app.example.com"}, {})


def test_the_error_body_is_json_in_the_apis_shape(cors_server: Live) -> None:
    r = httpx.options(f"{cors_server.url}/v1/embeddings", headers=preflight("", "http://127.0.0.1:9"))
    assert r.headers["content-type"] == "application/json" and json.loads(r.content)["error"]["type"]


def test_the_start_up_log_names_the_origins_and_warns_about_star(tmp_path: object) -> None:
    from cloverleaf._config import Settings
    from cloverleaf.server.cli_serve import describe

    base = Settings(env={}, store={"url": f"sqlite:///{tmp_path}/c.db"})
    assert not any(line.startswith("cors:") for line in describe(base, ServerOptions()))
    named = describe(base, ServerOptions(cors_origins=("https://app.example.com",)))
    assert "cors: web pages on https://app.example.com may call the model APIs (never /admin or /ui)" in named
    (star,) = [line for line in describe(base, ServerOptions(cors_origins=("*",))) if line.startswith("cors:")]
    assert "ANY origin" in star and "any website" in star
