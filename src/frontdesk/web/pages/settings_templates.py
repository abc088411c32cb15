"""Admin settings: message templates — the catalogue, and an editor with a live preview (sample
values) and the SMS segment count, through ``services/templates``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import NotFound, ValidationFailed
from frontdesk.domain.templates import VARIABLES
from frontdesk.services import audit, templates
from frontdesk.web.pages.settings_common import (
    Admin,
    Done,
    change,
    practice_of,
    runtime_of,
    show,
)
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)

Source = Annotated[str, Form(max_length=templates.MAX_SOURCE * 2)]
BASE = "/settings/templates"


def _catalogue(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {"items": templates.catalogue(session, practice)}


@router.get(BASE, response_class=HTMLResponse)
async def template_list(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_templates.html", _catalogue)


def _editor(purpose: str, channel: str, language: str) -> Any:
    def read(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
        for item in templates.catalogue(session, practice):
            if (item["purpose"], item["channel"], item["language"]) == (purpose, channel, language):
                break
        else:
            raise NotFound(f"no template {purpose}/{channel}/{language}")
        try:
            preview: dict[str, Any] | None = templates.preview(
                session, practice, purpose=purpose, channel=channel, language=language
            )
            problems: list[tuple[str, str]] = []
        except ValidationFailed as exc:  # a stored template that no longer renders
            preview, problems = None, [(e.loc, e.message) for e in exc.errors]
        return {
            "item": item,
            "action": f"{BASE}/{purpose}/{channel}/{language}",
            "preview": preview,
            "preview_errors": problems,
            "variables": list(VARIABLES),
        }

    return read


@router.get(BASE + "/{purpose}/{channel}/{language}", response_class=HTMLResponse)
async def edit_template(
    request: Request, staff: Admin, purpose: str, channel: str, language: str
) -> Response:
    return await show(
        request, staff, "settings_template_edit.html", _editor(purpose, channel, language)
    )


def _draft(channel: str, body: str, subject: str, html: str) -> dict[str, str | None]:
    return {
        "body": body,
        "subject": subject if channel == "email" and subject.strip() else None,
        "html": html if channel == "email" and html.strip() else None,
    }


@router.post(BASE + "/{purpose}/{channel}/{language}")
async def save_template(
    request: Request,
    staff: Admin,
    purpose: str,
    channel: str,
    language: str,
    body: Source = "",
    subject: Source = "",
    html: Source = "",
    whatsapp_template: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    draft = _draft(channel, body, subject, html)

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        templates.save(
            session,
            practice,
            purpose=purpose,
            channel=channel,
            language=language,
            body=body,
            subject=draft["subject"],
            html=draft["html"],
            whatsapp_template=whatsapp_template.strip() or None,
        )
        audit.record(
            session,
            practice_id=practice.id,
            actor=staff.actor,
            action="template.saved",
            entity_type="message_template",
            details={"purpose": purpose, "channel": channel, "language": language},
        )
        return Done("Saved. New messages use this wording.")

    return await change(
        request,
        staff,
        "settings_template_edit.html",
        _editor(purpose, channel, language),
        work,
        failed="template",
        form={
            "body": body,
            "subject": subject,
            "html": html,
            "whatsapp_template": whatsapp_template,
        },
    )


@router.post(BASE + "/{purpose}/{channel}/{language}/reset")
async def reset_template(
    request: Request, staff: Admin, purpose: str, channel: str, language: str
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        removed = templates.reset(
            session, practice, purpose=purpose, channel=channel, language=language
        )
        if removed:
            audit.record(
                session,
                practice_id=practice.id,
                actor=staff.actor,
                action="template.reset",
                entity_type="message_template",
                details={"purpose": purpose, "channel": channel, "language": language},
            )
        return Done("Back to frontdesk's wording." if removed else "Already frontdesk's wording.")

    return await change(
        request,
        staff,
        "settings_template_edit.html",
        _editor(purpose, channel, language),
        work,
        failed="template",
    )


@router.post(BASE + "/{purpose}/{channel}/{language}/preview", response_class=HTMLResponse)
async def preview_template(
    request: Request,
    staff: Admin,
    purpose: str,
    channel: str,
    language: str,
    body: Source = "",
    subject: Source = "",
    html: Source = "",
) -> Response:
    """The rendered draft, as an HTML fragment for the editor (htmx swaps it in as one types);
    a draft that does not render shows why, with status 200 so it is swapped in too."""
    runtime = runtime_of(request)
    draft = _draft(channel, body, subject, html)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = practice_of(session, staff)
            try:
                result = templates.preview(
                    session,
                    practice,
                    purpose=purpose,
                    channel=channel,
                    language=language,
                    **draft,
                )
            except ValidationFailed as exc:
                return {"preview": None, "preview_errors": [(e.loc, e.message) for e in exc.errors]}
            return {"preview": result, "preview_errors": []}

    context = await run_in_threadpool(run)
    return TEMPLATES.TemplateResponse(request, "settings_template_preview.html", context)
