"""One-click links from emails: a page with a button; only the button's POST acts (mail scanners
open every link in a message and must not cancel anyone's session)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.messages import format_when, language_of
from frontdesk.domain.times import now_utc
from frontdesk.services import links
from frontdesk.services.reminders import Planning
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)

_WORDS = {
    "en": {
        "confirm": (
            "Confirm your appointment",
            "Confirm",
            "Thank you: your appointment is confirmed.",
        ),
        "cancel": ("Can't make it?", "Cancel my appointment", "Your appointment is cancelled."),
        "reschedule": (
            "Need another time?",
            "Ask to reschedule",
            "Thanks: the practice will help you find a new time.",
        ),
        "used": "This link was already used. To change anything, reply to the email or call us.",
        "expired": "This link has expired. Reply to the email or call the practice.",
        "unknown": "This link is not valid.",
        "not_answerable": "This appointment can no longer be changed here. Please call us.",
    },
    "es": {
        "confirm": ("Confirme su cita", "Confirmar", "Gracias: su cita está confirmada."),
        "cancel": ("¿No puede venir?", "Cancelar mi cita", "Su cita está cancelada."),
        "reschedule": (
            "¿Necesita otra hora?",
            "Pedir otra hora",
            "Gracias: la consulta le ayudará a encontrar otra hora.",
        ),
        "used": "Este enlace ya se usó. Para cambiar algo, responda al correo o llámenos.",
        "expired": "Este enlace ha caducado. Responda al correo o llame a la consulta.",
        "unknown": "Este enlace no es válido.",
        "not_answerable": "Esta cita ya no se puede cambiar aquí. Por favor, llámenos.",
    },
}


def _page(state: links.LinkState) -> dict[str, Any]:
    lang = "en"
    when = None
    practice_name = None
    if state.appointment is not None and state.practice is not None:
        patient = state.appointment.patient
        lang = language_of(patient.language)
        when = format_when(
            state.appointment.start_at, patient.timezone or state.practice.timezone, lang
        )
        practice_name = state.practice.name
    words = _WORDS[lang]
    page: dict[str, Any] = {"lang": lang, "when": when, "practice": practice_name}
    if state.status == "ready" and state.action:
        title, button, _ = words[state.action]
        page.update(title=title, button=button)
    elif state.status == "done" and state.action:
        page.update(title=words[state.action][2], done=True)
    else:
        page.update(title=words.get(state.status, words["unknown"]))
    return page


@router.get("/a/{token}", response_class=HTMLResponse)
async def show(request: Request, token: str) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime

    def look() -> dict[str, Any]:
        with runtime.transaction() as session:
            state, _ = links.look_up(session, token, now_utc())
            return _page(state)

    context = await run_in_threadpool(look)
    return TEMPLATES.TemplateResponse(request, "link.html", context)


@router.post("/a/{token}", response_class=HTMLResponse)
async def act(request: Request, token: str) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime

    def use() -> dict[str, Any]:
        planning = Planning(runtime.settings.reminder_policy, now_utc())
        with runtime.transaction() as session:
            return _page(links.use(session, token, planning))

    context = await run_in_threadpool(use)
    return TEMPLATES.TemplateResponse(request, "link.html", context)
