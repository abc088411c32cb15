"""Admin: the audit log — who did what, when, to which record, and from where — filtered by
actor, action and dates, and exported as CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.services import audit
from frontdesk.services.staff import Staff
from frontdesk.web.access import client_ip
from frontdesk.web.pages.settings_common import Admin, render, run_change

router = APIRouter(include_in_schema=False)


def record_view(session: Session, request: Request, staff: Staff, conversation_id: int) -> None:
    """Staff opened a thread: who, which conversation, from where (no PHI)."""
    audit.record(
        session,
        practice_id=staff.practice_id,
        actor=staff.actor,
        action="conversation.viewed",
        entity_type="conversation",
        entity_id=conversation_id,
        details={"ip": client_ip(request)},
    )


PAGE_LIMIT = 500
Filter = Annotated[str, Query(max_length=120)]


def _day(value: str, field: str, problems: list[FieldError]) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.combine(date.fromisoformat(value.strip()), datetime.min.time(), UTC)
    except ValueError:
        problems.append(FieldError(field, "a date like 2026-01-31"))
        return None


def _filters(
    actor: str, action: str, since: str, until: str
) -> tuple[dict[str, Any], list[FieldError]]:
    problems: list[FieldError] = []
    start = _day(since, "since", problems)
    end = _day(until, "until", problems)
    return {
        "actor": actor.strip() or None,
        "action": action.strip() or None,
        "since": start,
        "until": end + timedelta(days=1) if end else None,  # the whole 'until' day
    }, problems


@router.get("/settings/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    staff: Admin,
    actor: Filter = "",
    action: Filter = "",
    since: Filter = "",
    until: Filter = "",
) -> Response:
    filters, problems = _filters(actor, action, since, until)
    typed = {"actor": actor, "action": action, "since": since, "until": until}

    def read(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
        events = (
            [] if problems else audit.list_events(session, practice.id, limit=PAGE_LIMIT, **filters)
        )
        query = urlencode({k: v for k, v in typed.items() if v})
        return {"events": events, "limit": PAGE_LIMIT, "export": f"/settings/audit.csv?{query}"}

    return await run_in_threadpool(
        lambda: render(
            request,
            staff,
            "settings_audit.html",
            read,
            errors=problems,
            failed="filters",
            form=typed,
            status=422 if problems else 200,
        )
    )


@router.get("/settings/audit.csv")
async def audit_csv(
    request: Request,
    staff: Admin,
    actor: Filter = "",
    action: Filter = "",
    since: Filter = "",
    until: Filter = "",
) -> Response:
    filters, problems = _filters(actor, action, since, until)
    if problems:
        raise ValidationFailed(problems)

    def work(session: Session, runtime: Runtime, practice: Practice) -> str:
        events = audit.list_events(session, practice.id, limit=audit.MAX_EVENTS, **filters)
        audit.record(
            session,
            practice_id=practice.id,
            actor=staff.actor,
            action="audit.exported",
            entity_type="practice",
            entity_id=practice.id,
            details={"events": len(events)},
        )
        return audit.to_csv(events)

    body = await run_in_threadpool(run_change, request, staff, work)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
