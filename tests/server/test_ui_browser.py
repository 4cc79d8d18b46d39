"""The dashboard in a real browser: headless Chromium from Debian (``chromium``,
``chromium-driver``; scripts/test installs them), driven by Selenium pointed at those exact
binaries so Selenium Manager never downloads anything.

One flow, as a user would: a wrong master key is refused; sign in; create a model entry and
a key; a Playground call as that key streams; it shows in Traces and Spend; revoke the key
and the next call is refused; a request without the CSRF token is refused; sign out.

The same run screenshots every page (into a temporary directory, checked to be real
PNGs). With ``CLOVERLEAF_UPDATE_SCREENSHOTS=1`` they are written to ``docs/screenshots/``
instead, which is how the committed ones are made — not on every run, so running the suite
never leaves the checkout modified.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf.server.ui.queries import trace_calls
from cloverleaf.server.ui.web import fmt_usd

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import seed_history

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US")
REPO = Path(__file__).resolve().parents[2]
WAIT = 20.0

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the [dev] extra")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver; scripts/test "
                "does it)", allow_module_level=True)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER, "CLOVERLEAF_ENCRYPTION_KEY": "browser-test-encryption-key"},
                 budgets={"smart": {"limit_usd": 25.0, "period": "month"}},
                 limits={"smart": {"rpm": 120, "tpm": 200000}, "openai": {"rpm": 500, "tpm": 400000}})
    server = start_live(s)
    seed_history(server.state.backend.store, 2500)   # so the screenshots show charts with something in them
    yield server
    stop_live(server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,860")
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium did not start here: {exc.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("CLOVERLEAF_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("screenshots")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except WebDriverException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def shoot(driver: Any, folder: Path, name: str, height: int | None = None) -> None:
    """A screenshot of the whole page (the window is grown to fit it, up to ``height``)."""
    full = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(full + 90, 500), height or 1500))
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 860)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 600_000, (name, len(data))


def test_the_dashboard_in_a_browser(live: Live, browser: Any, shots: Path) -> None:
    d, url = browser, live.url

    # -- a wrong master key is refused; the right one signs in ----------------------------
    d.get(f"{url}/")
    wait_for(lambda: "/ui/login" in d.current_url, "the sign-in page")
    d.find_element(By.ID, "key").send_keys("this-is-not-the-master-key", Keys.ENTER)
    wait_for(lambda: "neither the master key" in d.find_element(By.CSS_SELECTOR, ".alert.err").text, "the refusal")
    shoot(d, shots, "login")
    d.find_element(By.ID, "key").send_keys(MASTER, Keys.ENTER)
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, "h1").text == "Overview", "the overview")
    assert "HttpOnly" not in d.page_source and not d.execute_script("return document.cookie")  # script can't see it

    # keyboard: the first Tab reaches the skip link, which moves focus to the content
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert d.switch_to.active_element.text == "Skip to content"

    # -- create a model entry ----------------------------------------------------------------
    d.get(f"{url}/ui/models")
    d.find_element(By.ID, "m-name").send_keys("demo")
    Select(d.find_element(By.ID, "m-provider")).select_by_visible_text("fake")
    d.find_element(By.ID, "m-identifier").send_keys("echo+drip-60ms")
    d.find_element(By.ID, "m-key").send_keys("sk-demo-provider-secret-123456")
    d.find_element(By.ID, "m-in").send_keys("0.5")
    d.find_element(By.ID, "m-out").send_keys("1.5")
    d.find_element(By.CSS_SELECTOR, "#model-form button[type=submit]").click()
    wait_for(lambda: "Saved model entry" in d.page_source, "the saved entry")
    assert "sk-demo-provider-secret" not in d.page_source
    d.find_element(By.CSS_SELECTOR, "button[aria-label='Test call to demo']").click()
    wait_for(lambda: "Test call to demo: answered" in d.page_source, "the test call's result")
    shoot(d, shots, "models")

    # -- create a key; its secret is shown once, with a copy button ------------------------
    d.get(f"{url}/ui/keys")
    d.find_element(By.ID, "k-name").send_keys("browser-test")
    d.find_element(By.ID, "k-models").send_keys("demo, fake/*")
    d.find_element(By.ID, "k-budget").send_keys("5")
    d.find_element(By.ID, "k-rpm").send_keys("60")
    d.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    secret_box = wait_for(lambda: d.find_element(By.ID, "new-secret"), "the new key")
    secret = secret_box.get_attribute("value")
    key_id = d.find_element(By.ID, "h-secret").text.split()[1]
    assert secret.startswith("sk-clv-") and key_id.startswith("key_")
    d.find_element(By.CSS_SELECTOR, "[data-copy='new-secret']").click()
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".copied").text == "Copied", "the copy confirmation")
    shoot(d, shots, "keys")

    # -- a Playground call as that key streams ---------------------------------------------
    d.get(f"{url}/ui/playground")
    model = d.find_element(By.ID, "pg-model")
    model.clear()
    model.send_keys("demo")
    d.find_element(By.ID, "pg-key").send_keys(secret)
    words = " ".join(f"word{i}" for i in range(24))
    d.find_element(By.ID, "pg-input").send_keys(words)
    d.find_element(By.ID, "pg-send").click()
    partial = wait_for(lambda: _partial_answer(d, words), "part of the answer while it streams")
    assert 0 < len(partial) < len(words)
    wait_for(lambda: d.find_element(By.ID, "pg-status").text == "done", "the end of the stream")
    assert d.find_element(By.CSS_SELECTOR, "#pg-log li.assistant").text == words
    assert d.find_element(By.ID, "pg-target").text == "demo"
    shoot(d, shots, "playground")
    # its cost reads as every page writes it (the script's own format read $0.0480 for $0.048)
    trace_id = d.find_element(By.ID, "pg-trace-link").get_attribute("href").rsplit("/", 1)[1]
    (call,) = trace_calls(live.state.backend.store.engine, trace_id)
    assert d.find_element(By.ID, "pg-cost").text == fmt_usd(call.cost) and call.cost > 0

    # -- it shows in Traces (via the trace link, and filtered by the key) and in Spend ------------
    d.find_element(By.ID, "pg-trace-link").click()
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, "h1").text.startswith("Trace"), "the trace page")
    assert "demo" in d.page_source
    d.get(f"{url}/ui/traces?key={key_id}")
    rows = d.find_elements(By.CSS_SELECTOR, "table.calls tbody tr")
    assert len(rows) == 1 and "demo" in rows[0].text
    d.get(f"{url}/ui/traces")
    shoot(d, shots, "traces", height=1100)
    d.get(f"{url}/ui/traces?model=openai/gpt-4o-mini")
    d.find_element(By.CSS_SELECTOR, "table.calls tbody tr a").click()
    wait_for(lambda: d.find_element(By.ID, "h-path"), "a call's detail")
    shoot(d, shots, "call")
    d.get(f"{url}/ui/spend")
    assert f"key:{key_id}" in d.page_source and "browser-test" in d.page_source
    shoot(d, shots, "spend")

    # -- a request without the CSRF token is refused ----------------------------------------
    status = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/ui/keys/{key_id}/revoke', {{method: 'POST', credentials: 'same-origin', "
        "headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf=forged'})"
        ".then(r => done(r.status), e => done(String(e)));")
    assert status == 403

    # -- revoke the key: the next call with it is refused -----------------------------------
    d.get(f"{url}/ui/keys")
    d.find_element(By.CSS_SELECTOR, f"button[aria-label='Revoke {key_id}']").click()
    d.switch_to.alert.accept()
    wait_for(lambda: f"Key {key_id} is revoked" in d.page_source, "the revocation")
    d.get(f"{url}/ui/playground")
    model = d.find_element(By.ID, "pg-model")
    model.clear()
    model.send_keys("demo")
    d.find_element(By.ID, "pg-key").send_keys(secret)
    d.find_element(By.ID, "pg-input").send_keys("are you still there?")
    d.find_element(By.ID, "pg-send").click()
    refusal = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "#pg-log li.error").text, "the refusal")
    assert "revoked" in refusal and "401" in refusal

    # -- the remaining pages, for the screenshots --------------------------------------------
    d.get(f"{url}/ui/health")
    wait_for(lambda: d.find_element(By.ID, "h-breakers"), "the health page")
    shoot(d, shots, "health")
    d.get(f"{url}/ui?window=day")
    shoot(d, shots, "overview")
    d.set_window_size(390, 844)   # a phone
    d.get(f"{url}/ui?window=day")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    d.save_screenshot(str(shots / "overview-phone.png"))
    d.set_window_size(1280, 860)

    # -- sign out: the dashboard asks to sign in again ---------------------------------------
    d.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait_for(lambda: "You are signed out" in d.page_source, "the signed-out page")
    d.get(f"{url}/ui/keys")
    wait_for(lambda: "/ui/login" in d.current_url, "the sign-in page again")


def test_reloading_the_answer_to_create_key_creates_no_second_key(live: Live, browser: Any) -> None:
    """The answer to "Create key" is the POST's page: reloading it (F5, or the browser
    restoring the tab) sent the form again — headless Chromium without asking, a desktop one
    after "Confirm Form Resubmission" — and silently made a second key."""
    d, url = browser, live.url
    d.get(f"{url}/ui/login")
    d.find_element(By.ID, "key").send_keys(MASTER, Keys.ENTER)
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, "h1").text == "Overview", "the overview")
    d.get(f"{url}/ui/keys")
    d.find_element(By.ID, "k-name").send_keys("reload-test")
    d.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    secret = wait_for(lambda: d.find_element(By.ID, "new-secret"), "the new key").get_attribute("value")
    key_id = d.find_element(By.ID, "h-secret").text.split()[1]
    d.refresh()
    alert = wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".alert.err").text, "the already-submitted message")
    assert f"This form was already submitted: key {key_id} was created" in alert
    assert not d.find_elements(By.ID, "new-secret") and secret not in d.page_source
    store = live.state.backend.store
    assert [k.id for k in store.list_virtual_keys(include_revoked=True) if k.name == "reload-test"] == [key_id]


def _partial_answer(d: Any, full: str) -> str | None:
    """The assistant's text while it is still streaming (None before and after)."""
    found = d.find_elements(By.CSS_SELECTOR, "#pg-log li.assistant.streaming")
    if not found:
        return None
    text = found[0].text
    return text if 0 < len(text) < len(full) else None


def test_screenshots_are_committed() -> None:
    """The README shows the overview; every page has a committed screenshot."""
    folder = REPO / "docs" / "screenshots"
    names = {p.stem for p in folder.glob("*.png")}
    assert {"overview", "traces", "call", "spend", "models", "keys", "health", "playground", "login"} <= names
    assert "docs/screenshots/overview.png" in (REPO / "README.md").read_text()
    shutil.disk_usage(folder)   # (the folder exists and is readable)
