"""The staff inbox pages: the thread list (urgent pinned on top), one thread with everything
about the patient, the missed-session review queue, and a live-update stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import Forbidden
from frontdesk.domain.times import now_utc
from frontdesk.services import inbox, practices
from frontdesk.services.chores import message_sender
from frontdesk.services.reminders import Planning
from frontdesk.web.pages.shared import TEMPLATES, same_origin, staff_of

router = APIRouter(include_in_schema=False)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_list(
    request: Request,
    view: str = "all",
    channel: str | None = None,
    status: str | None = None,
    q: str | None = None,
) -> HTMLResponse:
    runtime = _runtime(request)
    me = staff_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            items = inbox.threads(
                session,
                practice,
                view=view if view in inbox.FILTERS else "all",
                channel=channel or None,
                status=status or None,
                search=q or None,
                me=me,
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
async def review(request: Request) -> HTMLResponse:
    runtime = _runtime(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            return {"practice": practice, "items": inbox.review_queue(session, practice)}

    return TEMPLATES.TemplateResponse(request, "review.html", await run_in_threadpool(read))


@router.post("/inbox/review/{item_id}/resolve")
async def resolve_review(request: Request, item_id: int) -> RedirectResponse:
    _check_form(request)
    runtime = _runtime(request)
    who = staff_of(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            inbox.resolve_review(session, practice, item_id, who, now_utc())

    await run_in_threadpool(act)
    return RedirectResponse("/inbox/review", status_code=303)


@router.get("/inbox/events")
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: ``change`` whenever a message arrives or a handoff happens, with the
    number of unacknowledged urgent threads (the page plays a cue when it grows)."""
    runtime = _runtime(request)

    def fingerprint() -> tuple[int, int, int]:
        with runtime.transaction() as session:
            return inbox.latest_change(session, practices.resolve_practice(session, None))

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
async def thread(request: Request, conversation_id: int) -> HTMLResponse:
    runtime = _runtime(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            context = inbox.thread(session, practice, conversation_id, runtime.cipher, now_utc())
            context.update(practice=practice, channels=[c.value for c in Channel], now=now_utc())
            return context

    return TEMPLATES.TemplateResponse(request, "thread.html", await run_in_threadpool(read))


@router.post("/inbox/{conversation_id}/reply")
async def reply(
    request: Request,
    conversation_id: int,
    text: Annotated[str, Form()],
    channel: Annotated[Channel, Form()],
) -> RedirectResponse:
    _check_form(request)
    runtime = _runtime(request)
    who = staff_of(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            message = inbox.reply(
                session,
                practice,
                conversation_id,
                text=text,
                channel=channel,
                who=who,
                cipher=runtime.cipher,
                now=now_utc(),
            )
            session.flush()
            message_id = message.id
        message_sender(runtime).send_now([message_id])

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


@router.post("/inbox/{conversation_id}/note")
async def note(
    request: Request, conversation_id: int, body: Annotated[str, Form()]
) -> RedirectResponse:
    _check_form(request)
    runtime = _runtime(request)
    who = staff_of(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            inbox.add_note(session, practice, conversation_id, body=body, who=who)

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


@router.post("/inbox/{conversation_id}/state")
async def state(
    request: Request,
    conversation_id: int,
    action: Annotated[str, Form()],
    assignee: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    _check_form(request)
    runtime = _runtime(request)
    who = staff_of(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            inbox.set_state(
                session,
                practice,
                conversation_id,
                action=action,
                who=who,
                now=now_utc(),
                assignee=who if action == "assign" and assignee == "me" else assignee,
            )

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


@router.post("/inbox/{conversation_id}/appointments/{appointment_id}")
async def answer(
    request: Request,
    conversation_id: int,
    appointment_id: int,
    answer: Annotated[str, Form()],
) -> RedirectResponse:
    _check_form(request)
    runtime = _runtime(request)
    who = staff_of(request)

    def act() -> None:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, None)
            inbox.answer_for_patient(
                session,
                practice,
                conversation_id,
                appointment_id,
                answer=answer,
                who=who,
                planning=Planning(runtime.settings.reminder_policy, now_utc()),
            )

    await run_in_threadpool(act)
    return RedirectResponse(f"/inbox/{conversation_id}", status_code=303)


def _check_form(request: Request) -> None:
    if not same_origin(request):
        raise Forbidden("cross-site form posts are refused")
