"""CORS as a browser enforces it: headless Chromium (as ``test_ui_browser``) loads a page from
another loopback origin, whose script calls the gateway with ``fetch`` the way the JS SDKs do
(``Authorization`` and ``x-stainless-*`` headers, so a preflight first). The listed origin reads
answers, request ids and a stream; an origin not listed is blocked by the browser."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf.server.options import ServerOptions

from .conftest import MASTER, Live, settings, start_live, stop_live

CHROMIUM = "/usr/bin/chromium"   # Debian's, as test_ui_browser drives it
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the [dev] extra")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip("headless Chromium is not installed", allow_module_level=True)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

PAGE = b"<!doctype html><title>a web app</title><p>calls the gateway from the browser</p>"
CALL = """
const [url, body, key, done] = arguments;
fetch(url, {method: "POST", body: JSON.stringify(body),
            headers: {"authorization": "Bearer " + key, "content-type": "application/json", "x-stainless-lang": "js"}})
  .then(async r => done({status: r.status, requestId: r.headers.get("x-request-id"), text: await r.text()}))
  .catch(e => done({error: String(e)}));
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(page_port: int) -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER})
    live = start_live(s, ServerOptions.from_settings({"cors_origins": [f"http://127.0.0.1:{page_port}"]}, s.env))
    yield live
    stop_live(live)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-cors-profile')}")
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium did not start here: {exc.msg}")
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _call(driver: Any, gateway: Live, body: dict[str, Any]) -> dict[str, Any]:
    return driver.execute_async_script(CALL, f"{gateway.url}/v1/chat/completions", body, MASTER)  # type: ignore[no-any-return]


def test_a_listed_origins_page_calls_the_gateway_and_another_is_blocked(browser: Any, gateway: Live,
                                                                         page_port: int) -> None:
    chat = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello from a page"}]}
    browser.get(f"http://127.0.0.1:{page_port}/")
    answer = _call(browser, gateway, chat)
    assert answer.get("status") == 200, answer
    assert "hello from a page" in answer["text"] and answer["requestId"]   # an exposed header, read by script
    streamed = _call(browser, gateway, {**chat, "stream": True})
    assert streamed.get("status") == 200 and "data: [DONE]" in streamed["text"], streamed
    refused = _call(browser, gateway, {**chat, "model": "nope/nope"})
    assert refused.get("status", 0) // 100 == 4 and '"error"' in refused["text"], refused   # errors readable too

    browser.get(f"http://localhost:{page_port}/")   # the same page on an origin not listed
    blocked = _call(browser, gateway, chat)
    assert "error" in blocked and "status" not in blocked, blocked   # fetch fails: the browser blocked it
