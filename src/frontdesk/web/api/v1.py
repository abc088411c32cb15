"""REST API v1: appointment and patient intake for scheduling systems, keyed per practice."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import Forbidden, Unauthorized
from frontdesk.domain.intake import AppointmentIn, IntakeOutcome, PatientIn
from frontdesk.domain.reminders import ReminderPolicy
from frontdesk.services import intake, queries
from frontdesk.services.apikeys import Caller, authenticate

router = APIRouter(prefix="/api/v1", tags=["v1"])

_ERROR = {
    "content": {
        "application/json": {
            "example": {
                "error": {
                    "code": "validation_error",
                    "message": "The input is not valid.",
                    "fields": [
                        {"loc": "body.patient.phone", "message": "not a valid phone number"}
                    ],
                }
            }
        }
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, unknown or revoked API key", **_ERROR},
    403: {"description": "The key may not do this (read-only key)", **_ERROR},
    404: {"description": "No such record in this practice", **_ERROR},
    413: {"description": "Body larger than the configured limit", **_ERROR},
    422: {"description": "Field-level validation errors", **_ERROR},
}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _caller_sync(runtime: Runtime, token: str) -> Caller:
    with runtime.transaction() as session:
        return authenticate(session, token)


async def caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer fdk_…")] = None,
    x_api_key: Annotated[str | None, Header(description="fdk_… (alternative)")] = None,
) -> Caller:
    token = x_api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise Unauthorized("use 'Authorization: Bearer <API key>'")
        token = value
    if not token:
        raise Unauthorized("an API key is required ('Authorization: Bearer <API key>')")
    return await run_in_threadpool(_caller_sync, runtime_of(request), token)


async def writer(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.can_write:
        raise Forbidden("this API key is read-only")
    return who


def _status(outcome: IntakeOutcome) -> int:
    return 201 if outcome is IntakeOutcome.CREATED else 200


def _body_schema(
    model: type[AppointmentIn] | type[PatientIn] | type[ReminderPolicy],
) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.put(
    "/appointments/{source}/{external_id}",
    responses=ERRORS,
    openapi_extra=_body_schema(AppointmentIn),
    summary="Create or update an appointment (idempotent)",
)
async def put_appointment(
    source: str,
    external_id: str,
    request: Request,
    response: Response,
    who: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Upsert keyed by (source, external_id). Re-sending the same data changes nothing;
    a new time moves the appointment; ``"status": "cancelled"`` cancels it. Fields left out
    keep their stored values. 201 when created, 200 otherwise; ``result`` says which."""
    body = await request.body()
    view, outcome = await run_in_threadpool(
        intake.put_appointment, runtime_of(request), who, source, external_id, body
    )
    response.status_code = _status(outcome)
    return {"result": outcome.value, "appointment": view}


@router.get("/appointments/{source}/{external_id}", responses=ERRORS)
async def get_appointment(
    source: str, external_id: str, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(
        intake.get_appointment, runtime_of(request), who, source, external_id
    )


@router.get("/appointments", responses=ERRORS, summary="List appointments by start time")
async def list_appointments(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    start_from: Annotated[
        datetime | None, Query(alias="from", description="start >= this (with offset)")
    ] = None,
    start_to: Annotated[
        datetime | None, Query(alias="to", description="start < this (with offset)")
    ] = None,
    status: Annotated[str | None, Query(description="FHIR appointment status")] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return await run_in_threadpool(
        partial(
            intake.list_appointments,
            runtime_of(request),
            who,
            start_from=start_from,
            start_to=start_to,
            status=status,
            limit=limit,
            offset=offset,
        )
    )


@router.put(
    "/patients/{source}/{external_id}",
    responses=ERRORS,
    openapi_extra=_body_schema(PatientIn),
    summary="Create or update a patient (idempotent)",
)
async def put_patient(
    source: str,
    external_id: str,
    request: Request,
    response: Response,
    who: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Upsert keyed by (source, external_id); phone numbers are stored in E.164."""
    body = await request.body()
    view, outcome = await run_in_threadpool(
        intake.put_patient, runtime_of(request), who, source, external_id, body
    )
    response.status_code = _status(outcome)
    return {"result": outcome.value, "patient": view}


@router.get("/patients/{source}/{external_id}", responses=ERRORS)
async def get_patient(
    source: str, external_id: str, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(
        intake.get_patient, runtime_of(request), who, source, external_id
    )


@router.get("/patients", responses=ERRORS)
async def list_patients(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return await run_in_threadpool(
        partial(intake.list_patients, runtime_of(request), who, limit=limit, offset=offset)
    )


@router.get("/reminder-policy", responses=ERRORS, summary="The practice's reminder policy")
async def get_reminder_policy(
    request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(intake.get_reminder_policy, runtime_of(request), who)


@router.put(
    "/reminder-policy",
    responses=ERRORS,
    openapi_extra=_body_schema(ReminderPolicy),
    summary="Replace the practice's reminder policy (re-plans upcoming appointments)",
)
async def put_reminder_policy(
    request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    """Fields left out take their defaults (see docs/REMINDERS.md). Upcoming appointments are
    re-planned in the same transaction; `replanned` says how many."""
    body = await request.body()
    return await run_in_threadpool(intake.put_reminder_policy, runtime_of(request), who, body)
