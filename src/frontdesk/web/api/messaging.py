"""REST API: message threads, templates (with preview and SMS length), consent ledger, and the
outbox's patient replies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import NotFound
from frontdesk.services import (
    channel_accounts,
    consent,
    dashboard,
    handoff,
    templates,
    threads,
    webchat,
)
from frontdesk.services.apikeys import Caller
from frontdesk.services.chores import message_sender
from frontdesk.services.inbound_messages import outbox_reply
from frontdesk.web.api.v1 import ERRORS, caller, runtime_of, writer

router = APIRouter(prefix="/api/v1", tags=["messaging"])
PROVIDER_HELP = (
    "sms: twilio | outbox; email: smtp | outbox; whatsapp: whatsapp_cloud | outbox; "
    "email_inbound: mailgun | sendgrid | imap"
)


class TemplateBody(BaseModel):
    body: str = Field(description="Jinja2 text; variables in docs/CHANNELS.md")
    subject: str | None = Field(default=None, description="Email subject")
    html: str | None = Field(default=None, description="Email HTML part")
    whatsapp_template: str | None = Field(default=None, description="Approved template name")


class PreviewBody(BaseModel):
    purpose: str
    channel: str = "sms"
    language: str = "en"
    body: str | None = Field(default=None, description="A draft to preview instead")
    subject: str | None = None
    html: str | None = None


class ReplyBody(BaseModel):
    patient_id: int
    text: str
    channel: Channel | None = None


def _practice(session: Session, who: Caller) -> Practice:
    practice = session.get(Practice, who.practice_id)
    assert practice is not None
    return practice


@router.get("/messages", responses=ERRORS, summary="Messages in patients' threads")
async def list_messages(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    patient_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            rows = threads.list_messages(
                session, _practice(session, who), patient_id=patient_id, limit=limit
            )
        return {"items": rows}

    return await run_in_threadpool(read)


@router.get("/templates", responses=ERRORS, summary="Every template in use")
async def list_templates(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return {"items": templates.catalogue(session, _practice(session, who))}

    return await run_in_threadpool(read)


@router.post("/templates/preview", responses=ERRORS, summary="Render with sample values")
async def preview_template(
    body: PreviewBody, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            return templates.preview(session, _practice(session, who), **body.model_dump())

    return await run_in_threadpool(run)


@router.put(
    "/templates/{purpose}/{channel}/{language}",
    responses=ERRORS,
    summary="Set the practice's own wording (checked by rendering it once)",
)
async def put_template(
    purpose: str,
    channel: str,
    language: str,
    body: TemplateBody,
    request: Request,
    who: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            return templates.save(
                session,
                _practice(session, who),
                purpose=purpose,
                channel=channel,
                language=language,
                **body.model_dump(),
            )

    return await run_in_threadpool(run)


@router.delete(
    "/templates/{purpose}/{channel}/{language}",
    responses=ERRORS,
    summary="Back to frontdesk's wording",
)
async def delete_template(
    purpose: str,
    channel: str,
    language: str,
    request: Request,
    who: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            removed = templates.reset(
                session,
                _practice(session, who),
                purpose=purpose,
                channel=channel,
                language=language,
            )
        return {"reset": removed}

    return await run_in_threadpool(run)


@router.get("/consent/{patient_id}", responses=ERRORS, summary="A patient's consent ledger")
async def consent_ledger(
    patient_id: int, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            patient = session.get(Patient, patient_id)
            if patient is None or patient.practice_id != who.practice_id:
                raise NotFound(f"patient {patient_id} not found")
            return {
                "current": {c.channel: c.status for c in patient.consents},
                "ledger": [
                    {
                        "channel": e.channel,
                        "action": e.action,
                        "source": e.source,
                        "evidence_message_id": e.evidence_message_id,
                        "detail": e.detail,
                        "at": e.created_at,
                    }
                    for e in consent.ledger(session, patient_id)
                ],
            }

    return await run_in_threadpool(read)


@router.post(
    "/outbox/replies",
    responses=ERRORS,
    summary="Outbox: a patient's reply arriving on their channel",
)
async def post_outbox_reply(
    body: ReplyBody, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    runtime: Runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        outcome = outbox_reply(
            runtime,
            message_sender(runtime),
            practice_id=who.practice_id,
            patient_id=body.patient_id,
            text=body.text,
            channel=body.channel,
        )
        return {
            "intent": outcome.intent,
            "action": outcome.action,
            "appointment_id": outcome.appointment_id,
            "answers": outcome.queued_ids,
        }

    return await run_in_threadpool(run)


class OnCallEntry(BaseModel):
    name: str
    phone: str | None = None
    email: str | None = None


@router.get("/on-call", responses=ERRORS, summary="Who gets urgent alerts (masked)")
async def get_on_call(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return {"items": handoff.on_call_view(_practice(session, who), runtime.cipher)}

    return await run_in_threadpool(read)


@router.put("/on-call", responses=ERRORS, summary="Replace the on-call list")
async def put_on_call(
    entries: list[OnCallEntry], request: Request, who: Annotated[Caller, Depends(writer)]
) -> Any:
    """Each entry: a name and a phone (alerted by SMS) or an email. Urgent handoffs (a crisis)
    alert every entry at once; the alert names no patient."""
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            items = handoff.set_on_call(
                _practice(session, who), runtime.cipher, [e.model_dump() for e in entries]
            )
        return {"items": items}

    return await run_in_threadpool(run)


@router.get("/prices", responses=ERRORS, summary="Per-unit prices for the cost estimate")
async def get_prices(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, float]:
        with runtime.transaction() as session:
            return dashboard.prices_of(_practice(session, who))

    return await run_in_threadpool(read)


@router.put("/prices", responses=ERRORS, summary="Set per-unit prices (USD)")
async def put_prices(
    values: dict[str, Any], request: Request, who: Annotated[Caller, Depends(writer)]
) -> Any:
    """Keys: sms_segment, whatsapp_conversation, email, llm_1k_tokens."""
    runtime = runtime_of(request)

    def run() -> dict[str, float]:
        with runtime.transaction() as session:
            return dashboard.set_prices(_practice(session, who), values)

    return await run_in_threadpool(run)


@router.get("/widget", responses=ERRORS, summary="The web chat widget's settings")
async def get_widget(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return webchat.widget_config(_practice(session, who)).as_dict()

    return await run_in_threadpool(read)


@router.patch("/widget", responses=ERRORS, summary="Change the web chat widget's settings")
async def patch_widget(
    values: dict[str, Any], request: Request, who: Annotated[Caller, Depends(writer)]
) -> Any:
    """Keys: title, greeting, color (#rrggbb), language (en, es), allowed_origins."""
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            return webchat.set_widget_config(_practice(session, who), values).as_dict()

    return await run_in_threadpool(run)


class ChannelAccountIn(BaseModel):
    provider: str = Field(description=PROVIDER_HELP)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The provider's settings; secrets left out keep their stored value",
    )


@router.get(
    "/channels", responses=ERRORS, summary="The practice's provider accounts (secrets masked)"
)
async def get_channels(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return {
                "items": channel_accounts.list_accounts(
                    session, _practice(session, who), runtime.cipher
                )
            }

    return await run_in_threadpool(read)


@router.put("/channels/{channel}", responses=ERRORS, summary="Connect a channel to a provider")
async def put_channel(
    channel: str,
    body: ChannelAccountIn,
    request: Request,
    who: Annotated[Caller, Depends(writer)],
) -> Any:
    """Settings per provider are in docs/CHANNELS.md. Secrets are sealed at rest and shown
    masked from then on."""
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            return channel_accounts.set_account(
                session,
                runtime.cipher,
                _practice(session, who),
                channel,
                body.provider,
                body.settings,
                actor=f"apikey:{who.key_prefix}",
            )

    return await run_in_threadpool(run)
