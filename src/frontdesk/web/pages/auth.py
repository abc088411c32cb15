"""Signing in and out, and a person's own account: password and two-step sign-in (TOTP)."""

from __future__ import annotations

import hmac
import secrets
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.credentials import totp_uri
from frontdesk.adapters.db.models import Practice
from frontdesk.adapters.db.staff_models import StaffUser
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.times import now_utc
from frontdesk.services import signin
from frontdesk.services import staff as staff_service
from frontdesk.services.staff import Staff
from frontdesk.web.access import (
    CsrfFailed,
    CurrentStaff,
    clear_cookie,
    client_ip,
    login_cookie_name,
    safe_next,
    session_cookie_name,
    set_cookie,
)
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)

LOGIN_FORM_SECONDS = 3600


def _login_page(
    request: Request,
    *,
    next_url: str,
    email: str = "",
    practice: str = "",
    message: str | None = None,
    status: int = 200,
) -> Response:
    runtime: Runtime = request.app.state.runtime

    def facts() -> tuple[list[str], bool]:
        with runtime.transaction() as session:
            slugs = list(session.scalars(select(Practice.slug).order_by(Practice.slug)))
            anyone = (session.scalar(select(func.count()).select_from(StaffUser)) or 0) > 0
        return slugs, anyone

    slugs, anyone = facts()
    token = secrets.token_urlsafe(32)
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next": next_url,
            "email": email,
            "practice": practice,
            "practices": slugs if len(slugs) > 1 else [],
            "no_users": not anyone,
            "message": message,
        },
        status_code=status,
    )
    set_cookie(
        response, runtime.settings, login_cookie_name(runtime.settings), token, LOGIN_FORM_SECONDS
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return await run_in_threadpool(_login_page, request, next_url=safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
    practice: Annotated[str, Form(max_length=60)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    # Login CSRF: the form's token must match the cookie set with the form (another site can
    # neither read nor set it), so no one can sign a browser in to their own account.
    expected = request.cookies.get(login_cookie_name(settings), "")
    if not csrf_token or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfFailed("the sign-in form expired; reload the page and try again")
    target = safe_next(next)
    previous = request.cookies.get(session_cookie_name(settings))

    result = await run_in_threadpool(
        partial(
            signin.sign_in,
            runtime,
            email=email,
            password=password,
            code=code,
            ip=client_ip(request),
            now=now_utc(),
            practice_slug=practice or None,
            previous_token=previous,
        )
    )
    if not result.ok:
        status = 429 if result.message == signin.LOCKED else 401
        return await run_in_threadpool(
            lambda: _login_page(
                request,
                next_url=target,
                email=email,
                practice=practice,
                message=result.message,
                status=status,
            )
        )
    response = RedirectResponse(target, status_code=303)
    assert result.token is not None
    set_cookie(
        response,
        settings,
        session_cookie_name(settings),
        result.token,
        settings.staff_session_max_hours * 3600,
    )
    clear_cookie(response, settings, login_cookie_name(settings))
    return response


@router.post("/logout")
async def logout(request: Request, staff: CurrentStaff) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = request.cookies.get(session_cookie_name(runtime.settings), "")

    def out() -> None:
        with runtime.transaction() as session:
            signin.sign_out(session, token, ip=client_ip(request))

    await run_in_threadpool(out)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, runtime.settings, session_cookie_name(runtime.settings))
    return response


# --- the account page ----------------------------------------------------------------------------


def _account(
    request: Request,
    staff: Staff,
    *,
    notice: str | None = None,
    errors: list[FieldError] | None = None,
    totp_secret: str | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "staff": staff,
        "notice": notice,
        "errors": {e.loc: e.message for e in errors or []},
        "totp_secret": totp_secret,
        "totp_uri": totp_uri(totp_secret, staff.email, f"frontdesk {staff.practice_name}")
        if totp_secret
        else None,
    }
    response = TEMPLATES.TemplateResponse(request, "account.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # may show a TOTP key
    return response


DONE = {
    "totp_on": "Two-step sign-in is on: from now on, sign in with a code from your app too.",
    "totp_off": "Two-step sign-in is off.",
}


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, staff: CurrentStaff, done: str | None = None) -> Response:
    return _account(request, staff, notice=DONE.get(done or ""))


@router.get("/account/totp", response_class=HTMLResponse)
async def totp_setup(request: Request, staff: CurrentStaff) -> Response:
    """A new secret to add to an authenticator app; nothing changes until a code proves it."""
    return _account(request, staff, totp_secret=staff_service.begin_totp())


async def _act(request: Request, work: Any) -> None:
    runtime: Runtime = request.app.state.runtime

    def run() -> None:
        with runtime.transaction() as session:
            work(session, runtime)

    await run_in_threadpool(run)


@router.post("/account/password")
async def change_password(
    request: Request,
    staff: CurrentStaff,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    confirm_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    if new_password != confirm_password:
        errors = [FieldError("confirm_password", "the two new passwords differ")]
        return _account(request, staff, errors=errors, status=422)
    try:
        await _act(
            request,
            lambda session, rt: staff_service.change_own_password(
                session,
                staff,
                current_password,
                new_password,
                staff_service.hash_parameters(rt.settings),
            ),
        )
    except ValidationFailed as exc:
        return _account(request, staff, errors=exc.errors, status=422)
    return _account(request, staff, notice="Password changed. Other sessions were signed out.")


@router.post("/account/totp")
async def totp_enable(
    request: Request,
    staff: CurrentStaff,
    secret: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        await _act(
            request,
            lambda session, rt: staff_service.enable_totp(
                session, rt.cipher, staff, secret, code, now_utc()
            ),
        )
    except ValidationFailed as exc:
        return _account(request, staff, errors=exc.errors, totp_secret=secret, status=422)
    return RedirectResponse("/account?done=totp_on", status_code=303)


@router.post("/account/totp/disable")
async def totp_disable(
    request: Request,
    staff: CurrentStaff,
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        await _act(
            request,
            lambda session, rt: staff_service.disable_totp(
                session, staff, password, staff_service.hash_parameters(rt.settings), actor=None
            ),
        )
    except ValidationFailed as exc:
        return _account(request, staff, errors=exc.errors, status=422)
    return RedirectResponse("/account?done=totp_off", status_code=303)
