"""Helpers for the dashboard tests: signing in over plain HTTP, reading forms' tokens, demo data."""

from __future__ import annotations

import random
import re
import time
from typing import Any

import httpx

from cloverleaf.gateway.store import AttemptRecord, CallRecord

from .conftest import MASTER, Live


def login_token(client: httpx.Client) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    return re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


#: Seconds a dashboard request may take before the test gives up: a safety net, far above what a
#: page or a sign-in takes (httpx's default of 5 s was missed on a loaded machine).
PATIENCE = 30.0


def browser(live: Live, **kw: Any) -> httpx.Client:
    """A client that does not follow redirects (the tests read them), with :data:`PATIENCE`."""
    return httpx.Client(base_url=live.url, follow_redirects=False, timeout=PATIENCE, **kw)


def sign_in(live: Live, key: str = MASTER) -> httpx.Client:
    """A client holding a dashboard session (raises if sign-in fails)."""
    client = browser(live)
    r = client.post("/ui/login", data={"key": key, "login_token": login_token(client), "next": "/ui"})
    assert r.status_code == 303, r.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def form_token_of(html: str) -> str:
    """The one-time token of the page's "Create key" form (each rendering makes a new one);
    "" when the page has no such form."""
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    return found.group(1) if found else ""


def forms_of(page: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The POST forms on ``page`` as a browser would send them, by their submit button's label
    (its ``aria-label``, else its text): the action, and the fields with the values the page
    wrote (inputs — hidden ones included, not checkboxes or passwords — and textareas;
    selects are left to the caller), unescaped as a browser reads them."""
    from html.parser import HTMLParser

    forms: list[tuple[str, dict[str, str]]] = []
    found: dict[str, tuple[str, dict[str, str]]] = {}

    class Forms(HTMLParser):
        text_of: str | None = None       # the textarea, or "<button>", whose text comes next

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "form" and a.get("method") == "post":
                forms.append((a["action"], {}))
            elif forms and tag == "input" and a.get("name") and a.get("type") not in ("checkbox", "password"):
                forms[-1][1][a["name"]] = a.get("value", "")
            elif forms and tag == "textarea":
                self.text_of = a.get("name")
            elif forms and tag == "button":
                if a.get("aria-label"):
                    found[a["aria-label"]] = forms[-1]
                else:
                    self.text_of = "<button>"

        def handle_data(self, data: str) -> None:
            if forms and self.text_of == "<button>":
                found[data.strip()] = forms[-1]
            elif forms and self.text_of:
                forms[-1][1][self.text_of] = data

        def handle_endtag(self, tag: str) -> None:
            if tag in ("textarea", "button"):
                self.text_of = None

    Forms(convert_charrefs=True).feed(page)
    return found


def seed_history(store: object, n: int = 1500, *, hours: float = 24.0, seed: int = 7) -> None:
    """Plausible call records over the last ``hours`` (several models, keys, some errors and
    fallbacks), written through the store's batch writer like real calls, rollups and all."""
    rng = random.Random(seed)
    now = time.time()
    models = [("openai/gpt-4o-mini", "openai", 380, 0.00015, 0.0006), ("anthropic/claude-haiku-4-5", "anthropic", 520,
              0.0008, 0.004), ("gemini/gemini-2.0-flash", "gemini", 300, 0.0001, 0.0004),
              ("openai/gpt-4o", "openai", 900, 0.0025, 0.01)]
    routes = ["chat", "smart", "cheap", "summarise"]
    keys = ["key_3f9a1c2be07d4a11", "key_9b2e77d0c1aa5e03", "key_51c0ffee2468ace0", None]
    for i in range(n):
        at = now - rng.random() ** 1.3 * hours * 3600
        target, provider, base, cin, cout = rng.choices(models, weights=[6, 3, 4, 1])[0]
        ok = rng.random() > 0.03
        latency = base * rng.lognormvariate(0, 0.45)
        tokens_in, tokens_out = rng.randint(80, 2400), rng.randint(20, 700)
        attempts = [AttemptRecord(target, provider, ok, None if ok else "ServerError",
                                  None if ok else "upstream overloaded", None if ok else 529, latency * 0.95)]
        if ok and rng.random() < 0.04:
            attempts.insert(0, AttemptRecord("anthropic/claude-sonnet-4-5", "anthropic", False, "RateLimitError",
                                             "rate limited", 429, 40.0))
        store.record_call(CallRecord(  # type: ignore[attr-defined]
            id=f"call_s{seed}_{i:06d}", created_at=at, operation=rng.choice(["chat", "stream"]),
            requested_model=rng.choice(routes), status="ok" if ok else "error", target=target if ok else None,
            provider=provider if ok else None, error_type=None if ok else "AllTargetsFailed",
            error_message=None if ok else "every target failed", latency_ms=latency, ttft_ms=latency * 0.35,
            input_tokens=tokens_in if ok else 0, output_tokens=tokens_out if ok else 0,
            cost=(tokens_in * cin + tokens_out * cout) / 1000 if ok else None, key_id=rng.choice(keys),
            project=rng.choice(["web", "batch", None]), attempts=attempts))
    store.flush()  # type: ignore[attr-defined]
