"""Admins manage the practice's staff: add people, change roles, disable, reset passwords."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Clinician, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.staff import Role
from frontdesk.services import staff as staff_service
from frontdesk.services.staff import Staff
from frontdesk.web.access import require_role
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)

Admin = Annotated[Staff, Depends(require_role(Role.ADMIN))]


def _optional_int(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValidationFailed([FieldError("clinician_id", "choose a clinician from the list")])
    return int(value)


def _page(
    request: Request,
    staff: Staff,
    *,
    notice: str | None = None,
    errors: list[FieldError] | None = None,
    status: int = 200,
) -> Response:
    runtime: Runtime = request.app.state.runtime

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = session.get(Practice, staff.practice_id)
            assert practice is not None
            clinicians = session.execute(
                select(Clinician.id, Clinician.name)
                .where(Clinician.practice_id == practice.id)
                .order_by(Clinician.name)
            ).all()
            return {
                "users": [
                    staff_service.user_view(u) for u in staff_service.list_users(session, practice)
                ],
                "clinicians": [{"id": cid, "name": name} for cid, name in clinicians],
            }

    context = read()
    context.update(
        staff=staff,
        roles=[r.value for r in Role],
        notice=notice,
        errors={e.loc: e.message for e in errors or []},
    )
    response = TEMPLATES.TemplateResponse(request, "users.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # may show a temporary password
    return response


async def _change(
    request: Request,
    staff: Staff,
    work: Callable[[Session, Runtime, Practice], str],
) -> Response:
    """Run ``work`` in a transaction; show the page with its notice, or with the errors."""
    runtime: Runtime = request.app.state.runtime

    def run() -> str:
        with runtime.transaction() as session:
            practice = session.get(Practice, staff.practice_id)
            assert practice is not None
            return work(session, runtime, practice)

    try:
        notice = await run_in_threadpool(run)
    except ValidationFailed as exc:
        problems = exc.errors
    else:
        return await run_in_threadpool(partial(_page, request, staff, notice=notice))
    return await run_in_threadpool(partial(_page, request, staff, errors=problems, status=422))


@router.get("/admin/users", response_class=HTMLResponse)
async def users(request: Request, staff: Admin) -> Response:
    return await run_in_threadpool(_page, request, staff)


@router.post("/admin/users")
async def add_user(
    request: Request,
    staff: Admin,
    email: Annotated[str, Form(max_length=320)] = "",
    display_name: Annotated[str, Form(max_length=300)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    clinician_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> str:
        password = staff_service.generate_password()
        user = staff_service.create_user(
            session,
            practice,
            email=email,
            display_name=display_name,
            role=role,
            clinician_id=_optional_int(clinician_id),
            password=password,
            params=staff_service.hash_parameters(runtime.settings),
            actor=staff.actor,
        )
        return (
            f"Added {user.email}. Temporary password (shown once; give it to them and ask "
            f"them to change it on their account page): {password}"
        )

    return await _change(request, staff, work)


@router.post("/admin/users/{user_id}/role")
async def change_role(
    request: Request,
    staff: Admin,
    user_id: int,
    role: Annotated[str, Form(max_length=20)] = "",
    clinician_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> str:
        user = staff_service.get_user(session, practice, user_id)
        staff_service.change_role(
            session, practice, user, role, _optional_int(clinician_id), actor=staff.actor
        )
        return f"{user.email} is now {role.replace('_', ' ')}."

    return await _change(request, staff, work)


@router.post("/admin/users/{user_id}/active")
async def set_active(
    request: Request,
    staff: Admin,
    user_id: int,
    active: Annotated[bool, Form()],
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> str:
        user = staff_service.get_user(session, practice, user_id)
        staff_service.set_active(session, user, active, actor=staff.actor)
        return f"{user.email} is {'enabled' if active else 'disabled and signed out'}."

    return await _change(request, staff, work)


@router.post("/admin/users/{user_id}/password")
async def reset_password(request: Request, staff: Admin, user_id: int) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> str:
        user = staff_service.get_user(session, practice, user_id)
        password = staff_service.generate_password()
        staff_service.reset_password(
            session,
            user,
            password,
            staff_service.hash_parameters(runtime.settings),
            actor=staff.actor,
        )
        return (
            f"New temporary password for {user.email} (shown once; their sessions were signed "
            f"out and two-step sign-in turned off): {password}"
        )

    return await _change(request, staff, work)
