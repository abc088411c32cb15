"""What the admin settings pages share: the admin dependency, rendering a page with its notice,
one-time secret or inline field errors, and running a change in one transaction (recording the
browser's address with every audit event it writes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.staff import Role
from frontdesk.services import audit
from frontdesk.services.staff import Staff
from frontdesk.web.access import client_ip, require_role
from frontdesk.web.pages.shared import TEMPLATES

Admin = Annotated[Staff, Depends(require_role(Role.ADMIN))]

SECTIONS = (
    ("practice", "Practice and privacy"),
    ("reminders", "Reminder policy"),
    ("templates", "Templates"),
    ("channels", "Channels"),
    ("knowledge", "Knowledge base"),
    ("on-call", "On-call"),
    ("api-keys", "API keys"),
    ("webhooks", "Webhooks"),
    ("actions", "Custom actions"),
    ("widget", "Widget and prices"),
    ("audit", "Audit log"),
)


@dataclass(frozen=True)
class Done:
    """What a change says back: a notice, and a secret to show this once (never stored)."""

    notice: str
    secret: str | None = None


T = TypeVar("T")
Reader = Callable[[Session, Runtime, Practice], dict[str, Any]]
Work = Callable[[Session, Runtime, Practice], Done]


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def practice_of(session: Session, staff: Staff) -> Practice:
    practice = session.get(Practice, staff.practice_id)
    assert practice is not None  # the session was just checked against it
    return practice


def render(
    request: Request,
    staff: Staff,
    template: str,
    read: Reader,
    *,
    done: Done | None = None,
    errors: list[FieldError] | None = None,
    failed: str | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The page, read fresh; ``failed`` names the form whose ``errors`` are shown beside it."""
    runtime = runtime_of(request)
    with runtime.transaction() as session:
        practice = practice_of(session, staff)
        context = read(session, runtime, practice)
        context["practice"] = {"name": practice.name, "slug": practice.slug}
    context.update(
        staff=staff,
        sections=SECTIONS,
        notice=done.notice if done else None,
        secret=done.secret if done else None,
        errors={e.loc: e.message for e in errors or []},
        error_list=[(e.loc, e.message) for e in errors or []],
        failed=failed,
        form=form or {},
    )
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # may show a secret once
    return response


async def show(request: Request, staff: Staff, template: str, read: Reader) -> Response:
    return await run_in_threadpool(render, request, staff, template, read)


def run_change(
    request: Request, staff: Staff, work: Callable[[Session, Runtime, Practice], T]
) -> T:
    runtime = runtime_of(request)
    with runtime.transaction() as session:
        audit.from_where(session, client_ip(request))
        return work(session, runtime, practice_of(session, staff))


async def change(
    request: Request,
    staff: Staff,
    template: str,
    read: Reader,
    work: Work,
    *,
    failed: str,
    form: dict[str, Any] | None = None,
) -> Response:
    """Run ``work`` in a transaction; show the page with its notice, or (422) with the field
    errors beside the form ``failed`` and what was typed in ``form``."""
    try:
        done = await run_in_threadpool(run_change, request, staff, work)
    except ValidationFailed as exc:
        problems = exc.errors
    else:
        return await run_in_threadpool(partial(render, request, staff, template, read, done=done))
    return await run_in_threadpool(
        partial(
            render,
            request,
            staff,
            template,
            read,
            errors=problems,
            failed=failed,
            form=form,
            status=422,
        )
    )


def record(session: Session, staff: Staff, practice: Practice, action: str, **details: Any) -> None:
    """An audit event about a practice setting (names and codes only, never values)."""
    audit.record(
        session,
        practice_id=practice.id,
        actor=staff.actor,
        action=action,
        entity_type="practice",
        entity_id=practice.id,
        details=details,
    )
