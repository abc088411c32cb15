"""The staff inbox pages: the thread list (urgent pinned on top), one thread with everything
about the patient, the missed-session review queue, and a live-update stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Conversation, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import NotFound
from frontdesk.domain.staff import Role
from frontdesk.domain.times import now_utc
from frontdesk.services import inbox, webhooks
from frontdesk.services.chores import message_sender
from frontdesk.services.reminders import Planning
from frontdesk.services.staff import Staff, visible_patient_ids
from frontdesk.web.access import CurrentStaff, require_role
from frontdesk.web.pages.settings_audit import record_view
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)
# The review queue is the front desk's; clinicians work from their own patients' threads.
DeskStaff = Annotated[Staff, Depends(require_role(Role.ADMIN, Role.FRONT_DESK))]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_list(
    request: Request,
    staff: CurrentStaff,
    view: str = "all",
    channel: str | None = None,
    status: str | None = None,
    q: str | None = None,
) -> HTMLResponse:
    runtime = _runtime(request)
    me = _who(staff)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            items = inbox.threads(
                session,
                practice,
                view=view if view in inbox.FILTERS else "all",
                channel=channel or None,
                status=status or None,
                search=q or None,
                me=me,
                patient_ids=visible_patient_ids(session, staff),
            )
            return {
                "practice": practice,
                "threads": items,
                "view": view,
                "channel": channel or "",
                "status": status or "",
                "q": q or "",
                "channels": [c.value for c in Channel],
                "statuses": inbox.STATUSES,
                "now": now_utc(),
                "review_count": len(inbox.review_queue(session, practice)),
            }

    return TEMPLATES.TemplateResponse(request, "inbox.html", await run_in_threadpool(read))


@router.get("/inbox/review", response_class=HTMLResponse)
async def review(request: Request, staff: DeskStaff) -> HTMLResponse:
    runtime = _runtime(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            return {"practice": practice, "items": inbox.review_queue(session, practice)}

    return TEMPLATES.TemplateResponse(request, "review.html", await run_in_threadpool(read))


@router.post("/inbox/review/{item_id}/resolve")
async def resolve_review(request: Request, staff: DeskStaff, item_id: int) -> RedirectResponse:
    runtime = _runtime(request)
    who = _who(staff)

    def act() -> None:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            inbox.resolve_review(session, practice, item_id, who, now_utc())

    await run_in_threadpool(act)
    return RedirectResponse("/inbox/review", status_code=303)


@router.get("/inbox/events")
async def events(request: Request, staff: CurrentStaff) -> StreamingResponse:
    """Server-sent events: ``change`` whenever a message arrives or a handoff happens, with the
    number of unacknowledged urgent threads (the page plays a cue when it grows)."""
    runtime = _runtime(request)

    def fingerprint() -> tuple[int, int, int]:
        with runtime.transaction() as session:
            return inbox.latest_change(session, _practice(session, staff))

    interval = float(request.query_params.get("interval", "2"))

    async def stream() -> AsyncIterator[str]:
        last = await run_in_threadpool(fingerprint)
        yield f"event: hello\ndata: {json.dumps({'urgent': last[2]})}\n\n"
        while not await request.is_disconnected():
            await asyncio.sleep(max(interval, 0.2))
            current = await run_in_threadpool(fingerprint)
            if current != last:
                payload = {"urgent": current[2], "new_urgent": current[2] > last[2]}
                last = current
                yield f"event: change\ndata: {json.dumps(payload)}\n\n"
            else:
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.get("/inbox/{conversation_id}", response_class=HTMLResponse)
async def thread(request: Request, staff: CurrentStaff, conversation_id: int) -> HTMLResponse:
    runtime = _runtime(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            _visible(session, staff, conversation_id)
            context = inbox.thread(session, practice, conversation_id, runtime.cipher, now_utc())
            record_view(session, request, staff, conversation_id)
            context.update(practice=practice, channels=[c.value for c in Channel], now=now_utc())
            return context

    return TEMPLATES.TemplateResponse(request, "thread.html", await run_in_threadpool(read))


@router.post("/inbox/{conversation_id}/reply")
async def reply(
    request: Request,
    staff: CurrentStaff,
    conversation_id: int,
    channel: Annotated[Channel, Form()],
    text: Annotated[str, Form()] = "",
    template: Annotated[str, Form()] = "",
) -> RedirectResponse:
    runtime = _runtime(request)
    who = _who(staff)

    def act() -> None:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            _visible(session, staff, conversation_id)
            message = inbox.reply(
                session,
                practice,
                conversation_id,
                text=text,
                channel=channel,
                who=who,
                cipher=runtime.cipher,
                now=now_utc(),
                template=template or None,
            )
            session.flush()
            message_id = message.id
        message_sender(runtime).send_now([message_id])

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


@router.post("/inbox/{conversation_id}/note")
async def note(
    request: Request, staff: CurrentStaff, conversation_id: int, body: Annotated[str, Form()]
) -> RedirectResponse:
    return await _in_thread(
        request,
        staff,
        conversation_id,
        lambda session, practice: inbox.add_note(
            session, practice, conversation_id, body=body, who=_who(staff)
        ),
    )


@router.post("/inbox/{conversation_id}/state")
async def state(
    request: Request,
    staff: CurrentStaff,
    conversation_id: int,
    action: Annotated[str, Form()],
    assignee: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    who = _who(staff)
    return await _in_thread(
        request,
        staff,
        conversation_id,
        lambda session, practice: inbox.set_state(
            session,
            practice,
            conversation_id,
            action=action,
            who=who,
            now=now_utc(),
            assignee=who if action == "assign" and assignee == "me" else assignee,
        ),
    )


@router.post("/inbox/{conversation_id}/appointments/{appointment_id}")
async def answer(
    request: Request,
    staff: CurrentStaff,
    conversation_id: int,
    appointment_id: int,
    answer: Annotated[str, Form()],
) -> RedirectResponse:
    policy = _runtime(request).settings.reminder_policy
    return await _in_thread(
        request,
        staff,
        conversation_id,
        lambda session, practice: inbox.answer_for_patient(
            session,
            practice,
            conversation_id,
            appointment_id,
            answer=answer,
            who=_who(staff),
            planning=Planning(policy, now_utc()),
        ),
    )


@router.post("/inbox/{conversation_id}/redeliver/{delivery_id}")
async def redeliver(
    request: Request, staff: DeskStaff, conversation_id: int, delivery_id: int
) -> RedirectResponse:
    """Send a signed event to the practice's system again (same id, fresh retries)."""
    return await _in_thread(
        request,
        staff,
        conversation_id,
        lambda session, practice: webhooks.redeliver(
            session, practice, delivery_id, actor=_who(staff), now=now_utc()
        ),
    )


async def _in_thread(
    request: Request,
    staff: Staff,
    conversation_id: int,
    work: Callable[[Session, Practice], object],
) -> RedirectResponse:
    """One staff action on a thread they may see, in one transaction; back to the thread."""
    runtime = _runtime(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = _practice(session, staff)
            _visible(session, staff, conversation_id)
            work(session, practice)

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


def _practice(session: Session, staff: Staff) -> Practice:
    practice = session.get(Practice, staff.practice_id)
    assert practice is not None
    return practice


def _who(staff: Staff) -> str:
    return staff.email


def _visible(session: Session, staff: Staff, conversation_id: int) -> None:
    """A clinician sees only their own patients' threads; anything else is 'not found' (not
    'forbidden'), so the page does not tell them the thread exists."""
    allowed = visible_patient_ids(session, staff)
    if allowed is None:
        return
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.patient_id not in allowed:
        raise NotFound(f"conversation {conversation_id} not found")
