"""What every dashboard route shares: templates, the session gate, forms, responses, errors.

Templates are Jinja2 with autoescaping on for every file: every value that reaches a page is
escaped unless it is a chart the server drew itself (:mod:`.charts` returns ``Markup``). We
chose Jinja2 over hand-built strings because one forgotten ``escape()`` in string templates
is an XSS hole, while autoescaping makes the safe thing the default; it is a small pure-Python
package in the ``[server]`` extra. Templates and static files are read from the package once,
at start-up.

Every page answer carries a strict Content-Security-Policy (scripts, styles and fetches only
from this origin, no inline script, no framing), ``no-store`` caching (pages show live data
and, once, a new key's secret) and ``nosniff``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..._errors import redact
from ..._jsoncodec import utf8_replacing
from ..deadlines import BodyDeadlineExceeded
from ..errors import ApiError, BadRequest, ClientClosed, PayloadTooLarge, to_api_error
from ..state import ServerState
from .session import COOKIE, Session, Sessions, check_csrf

log = logging.getLogger("cloverleaf.server.ui")
HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "x-frame-options": "DENY",
                "referrer-policy": "same-origin", "cache-control": "no-store"}
NAV = (("overview", "/ui", "Overview"), ("traces", "/ui/traces", "Traces"), ("spend", "/ui/spend", "Spend"),
       ("models", "/ui/models", "Models"), ("keys", "/ui/keys", "Keys"), ("health", "/ui/health", "Health"),
       ("playground", "/ui/playground", "Playground"))

PageHandler = Callable[[Request, Session], Awaitable[Response]]


def _environment() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("the dashboard needs jinja2: pip install 'cloverleaf[server]'") from None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ts=fmt_time, ms=fmt_ms, usd=fmt_usd, num=fmt_num, pct=fmt_pct, duration=fmt_duration)
    env.globals.update(nav=NAV)
    return env


class Web:
    """Templates, static files and the session gate, built once per app."""

    def __init__(self, st: ServerState, sessions: Sessions) -> None:
        self.st = st
        self.sessions = sessions
        self._env: Any = None      # jinja2, loaded with the first page (most servers never show one)
        self.static = {p.name: p.read_bytes() for p in (HERE / "static").iterdir() if p.is_file()}
        self.static_version = hashlib.sha256(b"".join(self.static[n] for n in sorted(self.static))).hexdigest()[:12]

    # -- responses ------------------------------------------------------------------------
    def render(self, request: Request, template: str, session: Session | None, status: int = 200,
               **context: Any) -> Response:
        if self._env is None:
            self._env = _environment()
        html = self._env.get_template(template).render(
            request=request, session=session, csrf=session.csrf if session else "", v=self.static_version,
            path=request.url.path, **context)
        # a value no UTF-8 can carry (a lone surrogate in a stored name) is shown as U+FFFD, not a 500
        return HTMLResponse(utf8_replacing(html), status_code=status, headers=PAGE_HEADERS)

    def error_page(self, request: Request, session: Session | None, err: ApiError) -> Response:
        return self.render(request, "error.html", session, status=err.status, message=err.message,
                           code=err.code, status_code=err.status)

    # -- the gate ---------------------------------------------------------------------------
    def page(self, handler: PageHandler, *, csrf: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """A signed-in route: no session → sign-in page (GET) or 401; ``csrf`` → the form's
        (or ``x-csrf-token``'s) token must be the session's. Errors become HTML pages with
        their own status; anything unexpected a 500 with an incident id in the log."""

        async def route(request: Request) -> Response:
            request.scope["cloverleaf.api"] = "ui"
            session: Session | None = None
            try:
                session = await self.sessions.current(request)
                if session is None:
                    if request.method == "GET":
                        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
                    raise ApiError("you are signed out (or your session expired); sign in again", status=401,
                                   kind="authentication", code="signed_out")
                if csrf:
                    token = request.headers.get("x-csrf-token")
                    if token is None and is_form(request):
                        token = (await read_form(request)).get("csrf")
                    check_csrf(request, session, token)
                return await handler(request, session)
            except Exception as exc:  # noqa: BLE001 - the dashboard's error boundary
                if request.headers.get("x-csrf-token") is not None:   # the page's script: it reads JSON
                    return script_error(to_api_error(exc))
                return self.error_page(request, session, to_api_error(exc))

        route.__name__ = route.__qualname__ = handler.__name__
        return route


def script_error(err: ApiError, trace_id: str | None = None) -> Response:
    """An error for the page's script (the Playground's ``fetch``), which shows its message: an
    HTML error page there read only "HTTP 401" when the session had ended, or "HTTP 400" for a
    body it could not take."""
    return JSONResponse({"error": {"message": redact(err.message), "code": err.code, "status": err.status},
                         "trace_id": trace_id}, status_code=err.status, headers={"cache-control": "no-store"})


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body (cached on the request; at most ``MAX_FORM_BYTES``). The last value
    of a repeated field wins, except for fields read with :func:`form_list`.

    The body must arrive within ``[server] body_timeout_seconds``, as a JSON body must
    (:func:`..http_io.read_json`): the sign-in form is open to anyone, and a POST whose body
    never came held its connection and task for ever. A client that hangs up mid-body is a
    hang-up (499), not an unexpected error with an incident in the log."""
    cached = request.scope.get("cloverleaf.form")
    if cached is not None:
        return cached[0]  # type: ignore[no-any-return]
    if not is_form(request):
        raise BadRequest("expected a form (application/x-www-form-urlencoded)")
    st: ServerState = request.app.state.cloverleaf
    seconds = st.options.body_timeout_seconds
    try:
        body = await st.deadlines.run(_form_body(request), seconds)
    except BodyDeadlineExceeded:
        raise ApiError(f"the form did not arrive within {seconds:g} seconds", status=408, kind="invalid_request",
                       code="request_timeout") from None
    except ClientDisconnect:
        raise ClientClosed("the client closed the connection while sending its form") from None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8") from None
    form = dict(pairs)
    request.scope["cloverleaf.form"] = (form, pairs)
    return form


async def _form_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    return body


def form_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated form field (call after :func:`read_form`)."""
    return [v for k, v in request.scope["cloverleaf.form"][1] if k == name]


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def new_token() -> str:
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- formatting


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0 ms"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


#: below this a cost is shown as "<$0.000000000001" (a price table's rates stop long before)
_SMALLEST_USD = 1e-12


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:   # two significant digits at least: a tiny cost never reads "$0."
        if abs(value) < _SMALLEST_USD:
            return f"<${_SMALLEST_USD:.12f}" if value > 0 else f"-<${_SMALLEST_USD:.12f}"
        decimals = max(6, 1 - math.floor(math.log10(abs(value))))
        return f"${value:.{decimals}f}".rstrip("0").rstrip(".")
    return f"${value:,.2f}" if abs(value) >= 100 else f"${value:,.4f}".rstrip("0").rstrip(".")


def fmt_num(value: float | None) -> str:
    if value is None:
        return "—"
    value = float(value)
    for threshold, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / unit:.1f}{suffix}"
    return f"{value:,.0f}" if value == math.floor(value) else f"{value:,.2f}"


def fmt_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{int(seconds)} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
