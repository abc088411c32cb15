"""Who a browser request acts for: the staff session cookie, CSRF on every state-changing
request, and role checks. Pages and the staff inbox depend on ``current_staff`` and
``require_role(...)``; the REST API keeps its API keys (``web/api/v1.py``), which are not
cookies and so need no CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.config import Settings
from frontdesk.domain.errors import Forbidden, Unauthorized
from frontdesk.domain.staff import Role
from frontdesk.domain.times import now_utc
from frontdesk.services.signin import session_staff
from frontdesk.services.staff import Staff
from frontdesk.web.errors import error_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Unauthorized):
    """No valid staff session: pages redirect to /login, JSON callers get 401."""


class AccessDenied(Forbidden):
    """Signed in, but this role may not do this."""


class CsrfFailed(Forbidden):
    code = "csrf_failed"


def secure_cookies(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    # for the whole site: another subdomain cannot plant or overwrite it.
    return "__Host-frontdesk_session" if secure_cookies(settings) else "frontdesk_session"


def login_cookie_name(settings: Settings) -> str:
    return "__Host-frontdesk_login" if secure_cookies(settings) else "frontdesk_login"


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=secure_cookies(settings)
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in; anything else becomes '/'."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.url.path.startswith("/api/")
        or "hx-request" in request.headers
        or ("application/json" in accept and "text/html" not in accept)
    )


async def _csrf_token_sent(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def current_staff(request: Request) -> Staff:
    """The signed-in staff member; on POST/PUT/PATCH/DELETE also checks the CSRF token."""
    runtime: Runtime = request.app.state.runtime
    token = request.cookies.get(session_cookie_name(runtime.settings))
    if not token:
        raise LoginRequired("sign in first")

    def look_up() -> Staff | None:
        with runtime.transaction() as session:
            return session_staff(session, runtime.settings, token, now_utc())

    staff = await run_in_threadpool(look_up)
    if staff is None:
        raise LoginRequired("your session has ended; sign in again")
    if request.method in UNSAFE_METHODS:
        sent = await _csrf_token_sent(request)
        if not sent or not hmac.compare_digest(sent.encode(), staff.csrf_token.encode()):
            raise CsrfFailed("the form's security token is missing or wrong; reload the page")
    request.state.staff = staff
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


def require_role(*roles: Role) -> Callable[[Staff], Awaitable[Staff]]:
    """A dependency: the signed-in staff member, if their role is one of ``roles``."""
    allowed = frozenset(roles)

    async def check(staff: CurrentStaff) -> Staff:
        if staff.role not in allowed:
            raise AccessDenied("your role cannot open this page")
        return staff

    return check


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if wants_json(request):
            response = error_response(401, exc.code, str(exc))
            if "hx-request" in request.headers:
                response.headers["HX-Redirect"] = "/login"
            return response
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        # The JSON error shape, unless a browser asked for a page.
        if wants_json(request) or "text/html" not in request.headers.get("accept", ""):
            return error_response(403, exc.code, str(exc))
        from frontdesk.web.pages.shared import TEMPLATES  # the pages package imports this one

        return TEMPLATES.TemplateResponse(
            request, "forbidden.html", {"message": str(exc)}, status_code=403
        )
