"""The dashboard under ``/ui``: see and steer the gateway from a browser.

On exactly when the admin API is (``CLOVERLEAF_MASTER_KEY`` set, and a store), since it can
do what the admin API does; ``/`` then redirects here. Without it, ``/ui`` and ``/`` are
404s like any unknown path.

Built to install and load without anything else: server-rendered HTML (Jinja2 templates in
``templates/``), one small stylesheet and one small script in ``static/`` served from the
package, charts as inline SVG drawn by the server (:mod:`.charts`). No CDN, no network at
run time, no JavaScript build step. Pages work without the script except the Playground
(streaming) and Health's live refresh; the script only adds copy buttons, live refresh and
the Playground.

Modules: :mod:`.session` (sign-in, sessions, CSRF), :mod:`.web` (templates, the session
gate, forms), :mod:`.queries` (bounded reads over rollups and indexes), :mod:`.exact_period`
(periods that start exactly N before now), :mod:`.pages` (read-only pages), :mod:`.manage`
(models and keys), :mod:`.once` (the "Create key" form's one-time tokens), :mod:`.key_limits`
(what a session signed in with an admin-scoped virtual key may hand on), :mod:`.playground`,
:mod:`.health`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import ApiError, Forbidden, to_api_error
from ..state import ServerState
from .manage import Manage
from .pages import Pages
from .playground import Playground
from .session import COOKIE, LOGIN_COOKIE, SESSION_SECONDS, Sessions, check_origin, same_token
from .web import PAGE_HEADERS, Web, new_token, read_form, set_session_cookie


def routes(st: ServerState) -> list[Route]:
    """The dashboard's routes, or none when the admin API is off."""
    if not st.options.master_key or st.backend.store is None:
        return []
    web = Web(st, Sessions(st.backend.store, st.keys, st.options.master_key))
    pages, play = Pages(web), Playground(web)
    manage = Manage(web, play)
    auth = SignIn(web)
    gate = web.page
    return [
        Route("/", auth.root, methods=["GET"]),
        Route("/ui", gate(pages.overview), methods=["GET"]),
        Route("/ui/login", auth.form, methods=["GET"]),
        Route("/ui/login", auth.submit, methods=["POST"]),
        Route("/ui/logout", gate(auth.sign_out, csrf=True), methods=["POST"]),
        Route("/ui/static/{name}", web_static(web), methods=["GET"]),
        Route("/ui/traces", gate(pages.traces), methods=["GET"]),
        Route("/ui/traces/call/{call_id}", gate(pages.call), methods=["GET"]),
        Route("/ui/traces/trace/{trace_id:path}", gate(pages.trace), methods=["GET"]),  # ids may hold "/"
        Route("/ui/spend", gate(pages.spend), methods=["GET"]),
        Route("/ui/health", gate(pages.health), methods=["GET"]),
        Route("/ui/health/live", gate(pages.health_live), methods=["GET"]),
        Route("/ui/models", gate(manage.models), methods=["GET"]),
        # the entry acted on travels in the form ("entry"), never in the path: any name is allowed
        # ("team/delete", "a?b#c", "50%"), and a name in the path was matched by the wrong route
        Route("/ui/models", gate(manage.save_model, csrf=True), methods=["POST"]),
        Route("/ui/models/delete", gate(manage.delete_model, csrf=True), methods=["POST"]),
        Route("/ui/models/test", gate(manage.test_model, csrf=True), methods=["POST"]),
        Route("/ui/keys", gate(manage.keys), methods=["GET"]),
        Route("/ui/keys", gate(manage.create_key, csrf=True), methods=["POST"]),
        Route("/ui/keys/{key_id}/revoke", gate(manage.revoke_key, csrf=True), methods=["POST"]),
        Route("/ui/playground", gate(play.page), methods=["GET"]),
        Route("/ui/playground/stream", gate(play.stream, csrf=True), methods=["POST"]),
    ]


class SignIn:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/ui", status_code=307)

    async def form(self, request: Request, *, status: int = 200, error: str | None = None) -> Response:
        """The sign-in page, with a fresh double-submit token (cookie + hidden field)."""
        token = new_token()
        response = self.web.render(request, "login.html", None, status=status, login_token=token, error=error,
                                   next=_safe_next(request.query_params.get("next")))
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/ui/login", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def submit(self, request: Request) -> Response:
        try:
            check_origin(request)
            form = await read_form(request)
            if not same_token(form.get("login_token"), request.cookies.get(LOGIN_COOKIE)):
                raise Forbidden("the sign-in form expired or came from another site; try again", code="csrf_failed")
            peer = request.client.host if request.client else "?"
            token, _ = await self.web.sessions.sign_in(form.get("key", ""), peer)
        except ApiError as err:
            return await self.form(request, status=err.status, error=err.message)
        except Exception as exc:  # noqa: BLE001 - the page's error boundary
            return await self.form(request, status=500, error=to_api_error(exc).message)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303, headers=PAGE_HEADERS)
        set_session_cookie(response, request, token, SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
        return response

    async def sign_out(self, request: Request, session: Any) -> Response:
        await self.web.sessions.sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login?signed_out=1", status_code=303, headers=PAGE_HEADERS)
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return response


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (never another site: no open redirect)."""
    if not target:
        return "/ui"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or target.startswith("//"):
        return "/ui"
    return target


_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon"}


def web_static(web: Web) -> Any:
    """Static files from memory; versioned URLs (``?v=``) let browsers cache them for a year."""
    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        body = web.static.get(name)
        if body is None:
            return Response("not found", status_code=404, media_type="text/plain")
        kind = _TYPES.get(name[name.rfind("."):], "application/octet-stream")
        cache = "public, max-age=31536000, immutable" if request.query_params.get("v") else "no-cache"
        return Response(body, media_type=kind, headers={"cache-control": cache, "x-content-type-options": "nosniff"})

    return static


__all__ = ["routes"]
