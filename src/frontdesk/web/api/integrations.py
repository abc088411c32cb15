"""Scheduler integrations: the Calendly, Cal.com and Acuity webhook receivers, and the API that
configures a practice's integrations (those three, FHIR servers, iCalendar feeds)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frontdesk.services import fhir_writeback, integrations, scheduler_sync
from frontdesk.services.apikeys import Caller
from frontdesk.web.api.v1 import ERRORS, caller, runtime_of, writer
from frontdesk.web.errors import error_response

webhooks = APIRouter(prefix="/webhooks", tags=["scheduler webhooks"])
api = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], responses=ERRORS)
router = APIRouter()

Slug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$", description="Practice slug")]


async def _receive(kind: str, request: Request, practice_slug: str) -> JSONResponse:
    body = await request.body()
    result = await run_in_threadpool(
        scheduler_sync.receive_webhook,
        runtime_of(request),
        kind,
        practice_slug,
        body,
        request.headers,
    )
    if result.state == "rejected" and not result.duplicate:
        return error_response(
            422,
            "validation_error",
            "The booking was received and kept, but it cannot become an appointment.",
            result.errors,
        )
    # A failed row is stored and retried by the worker: the sender need not send it again.
    status = 202 if result.state in ("failed", "received") else 200
    return JSONResponse(result.as_dict(), status_code=status)


@webhooks.post("/calendly/{practice_slug}", summary="Calendly webhook (invitee events)")
async def calendly_webhook(request: Request, practice_slug: Slug) -> JSONResponse:
    """Verified with `Calendly-Webhook-Signature`; `invitee.created` / `invitee.canceled`."""
    return await _receive("calendly", request, practice_slug)


@webhooks.post("/calcom/{practice_slug}", summary="Cal.com webhook (booking events)")
async def calcom_webhook(request: Request, practice_slug: Slug) -> JSONResponse:
    """Verified with `X-Cal-Signature-256`; `BOOKING_CREATED/RESCHEDULED/CANCELLED`."""
    return await _receive("calcom", request, practice_slug)


@webhooks.post("/acuity/{practice_slug}", summary="Acuity Scheduling webhook (appointment events)")
async def acuity_webhook(request: Request, practice_slug: Slug) -> JSONResponse:
    """Verified with `X-Acuity-Signature`; `scheduled` / `rescheduled` / `canceled` / `changed`
    (form-encoded ids; the appointment is read from the Acuity API)."""
    return await _receive("acuity", request, practice_slug)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CalendlyIn(_Body):
    signing_key: str = Field(min_length=8, max_length=500)
    api_token: str | None = Field(default=None, max_length=5000)


class CalcomIn(_Body):
    secret: str = Field(min_length=8, max_length=500)


class AcuityIn(_Body):
    user_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")
    api_key: str = Field(min_length=8, max_length=500)


class PolledIn(_Body):
    url: str = Field(min_length=8, max_length=2000)
    source: str | None = Field(default=None, max_length=40)
    token: str | None = Field(default=None, max_length=5000)
    interval_seconds: int | None = Field(default=None, ge=30, le=86_400)


@api.get("", summary="List the practice's integrations (secrets never shown)")
async def list_integrations(
    request: Request, who: Annotated[Caller, Depends(caller)]
) -> list[dict[str, Any]]:
    return await run_in_threadpool(integrations.list_views, runtime_of(request), who.practice_id)


@api.put("/calendly", summary="Set the Calendly signing key (and optional API token)")
async def put_calendly(
    body: CalendlyIn, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: integrations.configure_webhook(
            runtime_of(request),
            who.practice_id,
            "calendly",
            secret=body.signing_key,
            token=body.api_token,
            actor=who.actor,
        )
    )


@api.put("/calcom", summary="Set the Cal.com webhook secret")
async def put_calcom(
    body: CalcomIn, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: integrations.configure_webhook(
            runtime_of(request), who.practice_id, "calcom", secret=body.secret, actor=who.actor
        )
    )


@api.put("/acuity", summary="Set the Acuity user id and API key (signs and reads webhooks)")
async def put_acuity(
    body: AcuityIn, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: integrations.configure_webhook(
            runtime_of(request),
            who.practice_id,
            "acuity",
            secret=body.api_key,
            token=body.user_id,
            actor=who.actor,
        )
    )


async def _add(kind: str, body: PolledIn, request: Request, who: Caller) -> JSONResponse:
    view = await run_in_threadpool(
        lambda: integrations.configure_polled(
            runtime_of(request),
            who.practice_id,
            kind,
            body.url,
            source=body.source,
            token=body.token,
            interval_seconds=body.interval_seconds,
            actor=who.actor,
        )
    )
    return JSONResponse(view, status_code=201)


@api.post("/fhir", status_code=201, summary="Add a FHIR R4 server to poll")
async def add_fhir(
    body: PolledIn, request: Request, who: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    return await _add("fhir", body, request, who)


@api.post("/ics", status_code=201, summary="Add an iCalendar feed to poll")
async def add_ics(
    body: PolledIn, request: Request, who: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    return await _add("ics", body, request, who)


@api.get("/writebacks", summary="FHIR write-backs and their state")
async def list_writebacks(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    state: Annotated[
        str | None, Query(pattern="^(pending|sending|done|superseded|failed)$")
    ] = None,
) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with runtime_of(request).transaction() as session:
            return fhir_writeback.list_writebacks(session, who.practice_id, state=state)

    return await run_in_threadpool(work)


@api.post("/{source}/sync", summary="Poll a FHIR server or iCalendar feed now")
async def sync_source(
    source: str, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    reports = await run_in_threadpool(
        scheduler_sync.sync_now, runtime_of(request), who.practice_id, source
    )
    return reports[0].as_dict()


@api.delete("/{source}", status_code=204, summary="Remove an integration")
async def delete_integration(
    source: str, request: Request, who: Annotated[Caller, Depends(writer)]
) -> Response:
    await run_in_threadpool(
        lambda: integrations.remove_source(
            runtime_of(request), who.practice_id, source, actor=who.actor
        )
    )
    return Response(status_code=204)


router.include_router(webhooks)
router.include_router(api)
