"""The dashboard page and its CSV export."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.staff import Role
from frontdesk.domain.times import now_utc, zone
from frontdesk.services import dashboard
from frontdesk.services.staff import Staff
from frontdesk.web.access import require_role
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)
DeskStaff = Annotated[Staff, Depends(require_role(Role.ADMIN, Role.FRONT_DESK))]


def _board(
    runtime: Runtime, practice_id: int, start: date | None, end: date | None
) -> tuple[Any, dashboard.Dashboard]:
    now = now_utc()
    with runtime.transaction() as session:
        practice = session.get(Practice, practice_id)
        assert practice is not None
        today = now.astimezone(zone(practice.timezone)).date()
        first, last = dashboard.period(practice, start, end, today)
        return practice, dashboard.build(session, practice, first, last, now)


def _bars(values: dict[str, int]) -> list[dict[str, Any]]:
    """Bars for a small inline SVG chart: label, value and width in percent of the largest."""
    top = max(values.values(), default=0) or 1
    return [{"label": k, "value": v, "width": round(100 * v / top, 1)} for k, v in values.items()]


@router.get("/dashboard", response_class=HTMLResponse)
async def page(
    request: Request, staff: DeskStaff, start: date | None = None, end: date | None = None
) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    practice, board = await run_in_threadpool(_board, runtime, staff.practice_id, start, end)
    sent_by_channel = {
        channel: sum(states.values()) for channel, states in sorted(board.reminders.items())
    }
    context = {
        "practice": practice,
        "board": board,
        "start": board.start.date(),
        "end": board.end.date(),
        "timedelta_one": timedelta(days=1),
        "sent_bars": _bars(sent_by_channel),
        "missed_bars": _bars(
            {d.strftime("%b %d"): n for d, n in sorted(board.missed_followups_by_day.items())}
        ),
        "escalation_bars": _bars(dict(sorted(board.escalations.items()))),
    }
    return TEMPLATES.TemplateResponse(request, "dashboard.html", context)


@router.get("/dashboard.csv")
async def export(
    request: Request, staff: DeskStaff, start: date | None = None, end: date | None = None
) -> Response:
    runtime: Runtime = request.app.state.runtime
    _, board = await run_in_threadpool(_board, runtime, staff.practice_id, start, end)
    name = f"frontdesk-dashboard-{board.start.date()}-{board.end.date()}.csv"
    return Response(
        dashboard.to_csv(board),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
