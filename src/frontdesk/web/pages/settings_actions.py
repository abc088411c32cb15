"""Settings: the custom-actions editor. A spec is pasted as YAML and checked as it is saved;
every problem is shown beside the editor with its line and column."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.action_models import ActionSpecRecord
from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services import actions
from frontdesk.web.pages.settings_common import Admin, Done, change, show

router = APIRouter(include_in_schema=False)
TEMPLATE = "settings_actions.html"


def _page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    sources = dict(
        session.execute(
            select(ActionSpecRecord.name, ActionSpecRecord.source).where(
                ActionSpecRecord.practice_id == practice.id
            )
        ).all()
    )
    return {
        "actions": actions.list_actions(session, practice),
        "sources": sources,
        "runs": actions.list_runs(session, practice, limit=20),
    }


@router.get("/settings/actions", response_class=HTMLResponse)
async def page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, TEMPLATE, _page)


@router.post("/settings/actions")
async def save(
    request: Request,
    staff: Admin,
    source: Annotated[str, Form()],
    enabled: Annotated[str | None, Form()] = None,
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        record = actions.save(
            session, practice, source, actor=staff.email, enabled=enabled is not None
        )
        return Done(f"Saved {record.name} (version {record.version}).")

    return await change(
        request, staff, TEMPLATE, _page, work, failed="action", form={"source": source}
    )


@router.post("/settings/actions/{name}/enabled")
async def toggle(
    request: Request, staff: Admin, name: str, enabled: Annotated[str, Form()]
) -> Response:
    on = enabled == "1"

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        actions.set_enabled(session, practice, name, on, actor=staff.email)
        return Done(f"{name} is {'on' if on else 'off'}.")

    return await change(request, staff, TEMPLATE, _page, work, failed="toggle")
