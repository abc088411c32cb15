"""The outbox page: every patient's thread as their phone or inbox would show it, with a box
to type the patient's reply — the whole loop, with no provider account.

It stands in for patients, so it exists only while the outbox is the channel (no real
provider): with real providers, replies come from real patients. Posting requires a same-origin
request (no cross-site form can play a patient).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Conversation, Message, Patient
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import Forbidden, PracticeNotChosen, ValidationFailed
from frontdesk.domain.staff import Role
from frontdesk.services import practices
from frontdesk.services.chores import message_sender
from frontdesk.services.inbound_messages import outbox_reply
from frontdesk.services.staff import Staff
from frontdesk.services.threads import list_messages
from frontdesk.web.access import require_role
from frontdesk.web.pages.shared import TEMPLATES, same_origin

router = APIRouter(include_in_schema=False)
# Every patient's thread: the front desk's view, not a clinician's (they see only their own).
OutboxStaff = Annotated[Staff, Depends(require_role(Role.ADMIN, Role.FRONT_DESK))]


def _context(runtime: Runtime, slug: str | None, patient_id: int | None) -> dict[str, Any]:
    with runtime.transaction() as session:
        try:
            practice = practices.resolve_practice(session, slug)
        except PracticeNotChosen:
            return {"choose": [p.slug for p in practices.list_practices(session)]}
        threads = session.execute(
            select(
                Patient.id,
                Patient.name,
                Patient.preferred_name,
                func.max(Conversation.last_message_at),
            )
            .join(Conversation, Conversation.patient_id == Patient.id)
            .where(Conversation.practice_id == practice.id)
            .group_by(Patient.id, Patient.name, Patient.preferred_name)
            .order_by(func.max(Conversation.last_message_at).desc())
        ).all()
        patients = [
            {"id": pid, "name": preferred or name or f"patient {pid}", "last": last}
            for pid, name, preferred, last in threads
        ]
        chosen: int | None = patient_id or (threads[0][0] if threads else None)
        messages = (
            list_messages(session, practice, patient_id=chosen, limit=200, newest_first=False)
            if chosen
            else []
        )
        html_of: dict[int, str | None] = {}
        if messages:
            html_of = dict(
                session.execute(
                    select(Message.id, Message.html_body).where(
                        Message.id.in_([view["id"] for view in messages])
                    )
                ).all()
            )
        for view in messages:
            view["html"] = html_of.get(view["id"])
        return {
            "practice": practice,
            "patients": patients,
            "chosen": chosen,
            "messages": messages,
            "channels": [c.value for c in Channel],
            "last_channel": messages[-1]["channel"] if messages else "sms",
        }


@router.get("/outbox", response_class=HTMLResponse)
async def outbox(
    request: Request, staff: OutboxStaff, practice: str | None = None, patient: int | None = None
) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    context = await run_in_threadpool(_context, runtime, staff.practice_slug, patient)
    return TEMPLATES.TemplateResponse(request, "outbox.html", context)


@router.post("/outbox/reply")
async def reply(
    request: Request,
    patient_id: Annotated[int, Form()],
    text: Annotated[str, Form()],
    channel: Annotated[Channel, Form()],
    staff: OutboxStaff,
    practice: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    if not same_origin(request):
        raise Forbidden("cross-site form posts are refused")
    runtime: Runtime = request.app.state.runtime

    def act() -> None:
        with runtime.transaction() as session:
            practice_id = practices.resolve_practice(session, staff.practice_slug).id
        outbox_reply(
            runtime,
            message_sender(runtime),
            practice_id=practice_id,
            patient_id=patient_id,
            text=text,
            channel=channel,
        )

    with suppress(ValidationFailed):  # an empty reply: nothing to send, show the thread again
        await run_in_threadpool(act)
    query = f"?patient={patient_id}" + (f"&practice={practice}" if practice else "")
    return RedirectResponse(f"/outbox{query}", status_code=303)
