"""Server-rendered pages: the practice's schedule, the outbox, one-click links, and the health
check."""

from __future__ import annotations

import hmac
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import PracticeNotChosen
from frontdesk.domain.staff import Role
from frontdesk.domain.times import now_utc
from frontdesk.services import practices, queries
from frontdesk.services.queries import AgendaDay
from frontdesk.services.staff import Staff
from frontdesk.services.views import practice_view
from frontdesk.web.access import CurrentStaff
from frontdesk.web.pages import auth, dashboard, inbox, links, outbox, settings, users
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)
router.include_router(outbox.router)
router.include_router(links.router)
router.include_router(inbox.router)
router.include_router(dashboard.router)
router.include_router(auth.router)
router.include_router(users.router)
router.include_router(settings.router)


def _home_context(runtime: Runtime, slug: str | None, staff: Staff) -> dict[str, Any]:
    with runtime.transaction() as session:
        try:
            practice = practices.resolve_practice(session, slug)
        except PracticeNotChosen:
            return {"choose": [practice_view(p) for p in practices.list_practices(session)]}
        now = now_utc()
        days = queries.agenda(session, practice, now)
        if staff.role == Role.CLINICIAN:  # a clinician sees their own sessions only
            mine = [
                AgendaDay(d.day, [a for a in d.appointments if _with(a, staff.clinician_id)])
                for d in days
            ]
            days = [d for d in mine if d.appointments]
        return {
            "practice": practice_view(practice),
            "days": days,
            "today": now.astimezone(ZoneInfo(practice.timezone)).date(),
        }


def _with(appointment: dict[str, Any], clinician_id: int | None) -> bool:
    clinician = appointment.get("clinician")
    return clinician_id is not None and clinician is not None and clinician["id"] == clinician_id


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, staff: CurrentStaff) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    # A person sees their own practice's schedule, whatever the address asks for.
    context = await run_in_threadpool(_home_context, runtime, staff.practice_slug, staff)
    return TEMPLATES.TemplateResponse(request, "home.html", context)


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime

    def probe() -> bool:
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    ok = await run_in_threadpool(probe)
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"},
        status_code=200 if ok else 503,
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics: reminders by state and channel, dispatch lag, send latency, retries."""
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                "metrics need the scraper's bearer token\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
                media_type="text/plain",
            )
    registry = request.app.state.metrics_registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
