"""Admin settings pages: the practice profile and privacy switches, the reminder policy, the
on-call list, the web chat widget and unit prices. Templates, channels, the knowledge base, API
keys, webhooks and the audit log have their own modules, included here. Every page calls the
services the API and the CLI use; validation errors are shown beside the form."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.times import now_utc
from frontdesk.services import dashboard, handoff, practices, reminders, templates, webchat
from frontdesk.services.practices import PracticeProfile
from frontdesk.services.reminders import Planning
from frontdesk.web.pages import (
    settings_actions,
    settings_audit,
    settings_channels,
    settings_integrations,
    settings_templates,
)
from frontdesk.web.pages.settings_common import Admin, Done, change, record, show

router = APIRouter(include_in_schema=False)
router.include_router(settings_templates.router)
router.include_router(settings_channels.router)
router.include_router(settings_integrations.router)
router.include_router(settings_audit.router)
router.include_router(settings_actions.router)

Text = Annotated[str, Form(max_length=2000)]


@router.get("/settings")
async def index(staff: Admin) -> Response:
    return RedirectResponse("/settings/practice", status_code=303)


# --- practice profile and privacy ----------------------------------------------------------------


def _practice_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {
        "profile": {
            "name": practice.name,
            "timezone": practice.timezone,
            "phone": practice.phone or "",
            "email": practice.email or "",
            "booking_url": practice.booking_url or "",
        },
        "privacy": templates.privacy(practice),
    }


@router.get("/settings/practice", response_class=HTMLResponse)
async def practice_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_practice.html", _practice_page)


@router.post("/settings/practice")
async def save_practice(
    request: Request,
    staff: Admin,
    name: Annotated[str, Form(max_length=300)] = "",
    timezone: Annotated[str, Form(max_length=80)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    booking_url: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    typed = {
        "name": name.strip(),
        "timezone": timezone.strip(),
        "phone": phone.strip(),
        "email": email.strip(),
        "booking_url": booking_url.strip(),
    }

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        if not typed["name"]:
            raise ValidationFailed([FieldError("name", "the practice needs a name")])
        practices.apply_profile(
            practice, PracticeProfile(**{k: v or None for k, v in typed.items()})
        )
        record(session, staff, practice, "practice.updated", fields=sorted(k for k in typed))
        return Done("Saved the practice profile.")

    return await change(
        request, staff, "settings_practice.html", _practice_page, work, failed="profile", form=typed
    )


@router.post("/settings/practice/privacy")
async def save_privacy(
    request: Request,
    staff: Admin,
    show_practice_name: Annotated[bool, Form()] = False,
    show_clinician_name: Annotated[bool, Form()] = False,
) -> Response:
    values = {"show_practice_name": show_practice_name, "show_clinician_name": show_clinician_name}

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        templates.set_privacy(practice, values)
        record(session, staff, practice, "privacy.updated", **values)
        return Done("Saved the privacy switches.")

    return await change(
        request, staff, "settings_practice.html", _practice_page, work, failed="privacy"
    )


# --- reminder policy -----------------------------------------------------------------------------


def _reminders_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    policy = reminders.policy_for(practice, runtime.settings.reminder_policy)
    return {
        "policy": json.dumps(policy.model_dump(mode="json"), indent=2),
        "practice_specific": reminders.POLICY_KEY in (practice.settings or {}),
    }


@router.get("/settings/reminders", response_class=HTMLResponse)
async def reminders_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_reminders.html", _reminders_page)


@router.post("/settings/reminders")
async def save_reminders(
    request: Request, staff: Admin, policy: Annotated[str, Form(max_length=50_000)] = ""
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        try:
            payload = json.loads(policy)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                [FieldError("policy", f"not valid JSON: {exc.msg} (line {exc.lineno})")]
            ) from None
        reminders.set_policy(practice, payload)
        planning = Planning(runtime.settings.reminder_policy, now_utc())
        replanned = reminders.replan_practice(session, practice, planning)
        record(session, staff, practice, "reminder_policy.updated", replanned=replanned)
        return Done(f"Saved the reminder policy; {replanned} upcoming appointment(s) re-planned.")

    return await change(
        request,
        staff,
        "settings_reminders.html",
        _reminders_page,
        work,
        failed="policy",
        form={"policy": policy},
    )


# --- on-call list --------------------------------------------------------------------------------

NEW_ROWS = 2


def _on_call_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {"people": handoff.on_call_view(practice, runtime.cipher), "new_rows": NEW_ROWS}


@router.get("/settings/on-call", response_class=HTMLResponse)
async def on_call_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_on_call.html", _on_call_page)


@router.post("/settings/on-call")
async def save_on_call(request: Request, staff: Admin) -> Response:
    """Existing people keep their stored phone or email when the field is left blank (the page
    shows them masked); a ticked 'remove' drops a person; filled new rows are added."""
    submitted = await request.form()

    def field(name: str) -> str:
        value = submitted.get(name)
        return value.strip()[:320] if isinstance(value, str) else ""

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        stored = handoff._on_call(practice, runtime.cipher)
        entries: list[dict[str, Any]] = []
        for i in range(len(stored) + NEW_ROWS):
            name, phone, email = field(f"name_{i}"), field(f"phone_{i}"), field(f"email_{i}")
            if i < len(stored):
                if field(f"remove_{i}"):
                    continue
                _, old_phone, old_email = stored[i]
                phone, email = phone or (old_phone or ""), email or (old_email or "")
            elif not (name or phone or email):
                continue
            entries.append({"name": name, "phone": phone or None, "email": email or None})
        handoff.set_on_call(practice, runtime.cipher, entries)
        record(session, staff, practice, "on_call.updated", people=len(entries))
        return Done(f"Saved the on-call list ({len(entries)} people).")

    return await change(
        request, staff, "settings_on_call.html", _on_call_page, work, failed="on_call"
    )


# --- widget and prices ---------------------------------------------------------------------------


def _widget_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    config = webchat.widget_config(practice).as_dict()
    config["allowed_origins"] = "\n".join(config["allowed_origins"])
    return {
        "widget": config,
        "prices": dashboard.prices_of(practice),
        "public_url": runtime.settings.public_url.rstrip("/"),
    }


@router.get("/settings/widget", response_class=HTMLResponse)
async def widget_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_widget.html", _widget_page)


@router.post("/settings/widget")
async def save_widget(
    request: Request,
    staff: Admin,
    title: Annotated[str, Form(max_length=600)] = "",
    greeting: Annotated[str, Form(max_length=600)] = "",
    color: Annotated[str, Form(max_length=20)] = "",
    language: Annotated[str, Form(max_length=10)] = "",
    allowed_origins: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    values: dict[str, Any] = {
        "title": title.strip(),
        "greeting": greeting.strip(),
        "color": color.strip(),
        "language": language.strip(),
        "allowed_origins": [o.strip() for o in allowed_origins.splitlines() if o.strip()],
    }

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        webchat.set_widget_config(practice, values)
        record(session, staff, practice, "widget.updated", fields=sorted(values))
        return Done("Saved the widget settings.")

    return await change(
        request,
        staff,
        "settings_widget.html",
        _widget_page,
        work,
        failed="widget",
        form={**values, "allowed_origins": allowed_origins},
    )


@router.post("/settings/prices")
async def save_prices(request: Request, staff: Admin) -> Response:
    submitted = await request.form()
    values = {
        key: str(submitted.get(key) or "").strip()[:40]
        for key in dashboard.DEFAULT_PRICES
        if key in submitted
    }

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        dashboard.set_prices(practice, values)
        record(session, staff, practice, "prices.updated", fields=sorted(values))
        return Done("Saved the prices.")

    return await change(
        request, staff, "settings_widget.html", _widget_page, work, failed="prices", form=values
    )
