"""Webhooks over HTTP: managing outbound endpoints and their deliveries (``/api/v1/webhooks``,
API key), and the generic inbound webhook for custom scheduling systems
(``/webhooks/generic/{practice_slug}``, Standard Webhooks signature)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from frontdesk.domain.webhooks import EndpointIn, EndpointPatch
from frontdesk.services import webhooks, webhooks_inbound
from frontdesk.services.apikeys import Caller
from frontdesk.services.intake import parse_json, practice_of
from frontdesk.web.api.v1 import ERRORS, caller, runtime_of, writer
from frontdesk.web.errors import error_response

router = APIRouter(tags=["webhooks"])
API = "/api/v1/webhooks"


def _schema(model: type[EndpointIn] | type[EndpointPatch]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


# --- endpoints -------------------------------------------------------------------------------


def _create(runtime: Runtime, who: Caller, body: bytes) -> dict[str, Any]:
    data = webhooks.parse_endpoint(
        EndpointIn, parse_json(body), allow_http=runtime.settings.webhook_allow_http
    )
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        endpoint, secret = webhooks.create_endpoint(
            session, runtime.cipher, practice, data, actor=who.actor
        )
        return {**webhooks.endpoint_view(endpoint), "secret": secret}


@router.post(
    f"{API}/endpoints",
    status_code=201,
    responses=ERRORS,
    openapi_extra=_schema(EndpointIn),
    summary="Add an endpoint (its signing secret is in this answer only)",
)
async def create_endpoint(
    request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(_create, runtime_of(request), who, body)


def _list(runtime: Runtime, who: Caller) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        return {
            "endpoints": [
                webhooks.endpoint_view(e) for e in webhooks.list_endpoints(session, practice)
            ]
        }


@router.get(f"{API}/endpoints", responses=ERRORS, summary="List endpoints (never their secrets)")
async def list_endpoints(
    request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(_list, runtime_of(request), who)


def _get(runtime: Runtime, who: Caller, endpoint_id: int) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        return webhooks.endpoint_view(webhooks.get_endpoint(session, practice, endpoint_id))


@router.get(f"{API}/endpoints/{{endpoint_id}}", responses=ERRORS)
async def get_endpoint(
    endpoint_id: int, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(_get, runtime_of(request), who, endpoint_id)


def _update(runtime: Runtime, who: Caller, endpoint_id: int, body: bytes) -> dict[str, Any]:
    data = webhooks.parse_endpoint(
        EndpointPatch, parse_json(body), allow_http=runtime.settings.webhook_allow_http
    )
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        endpoint = webhooks.update_endpoint(session, practice, endpoint_id, data, actor=who.actor)
        return webhooks.endpoint_view(endpoint)


@router.patch(
    f"{API}/endpoints/{{endpoint_id}}",
    responses=ERRORS,
    openapi_extra=_schema(EndpointPatch),
    summary="Change an endpoint's URL, event types, description, or enable / disable it",
)
async def update_endpoint(
    endpoint_id: int, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(_update, runtime_of(request), who, endpoint_id, body)


def _delete(runtime: Runtime, who: Caller, endpoint_id: int) -> None:
    with runtime.transaction() as session:
        webhooks.delete_endpoint(session, practice_of(session, who), endpoint_id, actor=who.actor)


@router.delete(f"{API}/endpoints/{{endpoint_id}}", status_code=204, responses=ERRORS)
async def delete_endpoint(
    endpoint_id: int, request: Request, who: Annotated[Caller, Depends(writer)]
) -> Response:
    await run_in_threadpool(_delete, runtime_of(request), who, endpoint_id)
    return Response(status_code=204)


# --- deliveries ------------------------------------------------------------------------------


def _deliveries(runtime: Runtime, who: Caller, **filters: Any) -> dict[str, Any]:
    with runtime.transaction() as session:
        return webhooks.list_deliveries(session, practice_of(session, who), **filters)


@router.get(
    f"{API}/deliveries",
    responses=ERRORS,
    summary="Deliveries (newest first) with their attempts, by endpoint, event or state",
)
async def list_deliveries(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    endpoint_id: int | None = None,
    event_id: int | None = None,
    state: Annotated[
        str | None, Query(description="pending, delivering, delivered, failed or dead")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return await run_in_threadpool(
        partial(
            _deliveries,
            runtime_of(request),
            who,
            endpoint_id=endpoint_id,
            event_id=event_id,
            state=state,
            limit=limit,
            offset=offset,
        )
    )


def _delivery(runtime: Runtime, who: Caller, delivery_id: int) -> dict[str, Any]:
    with runtime.transaction() as session:
        return webhooks.get_delivery(session, practice_of(session, who), delivery_id)


@router.get(f"{API}/deliveries/{{delivery_id}}", responses=ERRORS)
async def get_delivery(
    delivery_id: int, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(_delivery, runtime_of(request), who, delivery_id)


def _redeliver(runtime: Runtime, who: Caller, delivery_id: int) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        webhooks.redeliver(session, practice, delivery_id, actor=who.actor, now=now_utc())
    return _delivery(runtime, who, delivery_id)


@router.post(
    f"{API}/deliveries/{{delivery_id}}/redeliver",
    status_code=202,
    responses=ERRORS,
    summary="Send a delivery again (same webhook-id and body; the worker sends it)",
)
async def redeliver(
    delivery_id: int, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    return await run_in_threadpool(_redeliver, runtime_of(request), who, delivery_id)


# --- the generic inbound webhook's secret ------------------------------------------------------


def _rotate(runtime: Runtime, who: Caller) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, who)
        secret = webhooks.rotate_inbound_secret(session, runtime.cipher, practice, actor=who.actor)
        return {**webhooks.inbound_secret_status(session, practice), "secret": secret}


@router.post(
    f"{API}/inbound-secret",
    status_code=201,
    responses=ERRORS,
    summary="Create or replace the secret that signs /webhooks/generic/{practice} (shown once)",
)
async def rotate_inbound_secret(
    request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    return await run_in_threadpool(_rotate, runtime_of(request), who)


def _secret_status(runtime: Runtime, who: Caller) -> dict[str, Any]:
    with runtime.transaction() as session:
        return webhooks.inbound_secret_status(session, practice_of(session, who))


@router.get(f"{API}/inbound-secret", responses=ERRORS, summary="Whether an inbound secret is set")
async def inbound_secret_status(
    request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    return await run_in_threadpool(_secret_status, runtime_of(request), who)


def _delete_secret(runtime: Runtime, who: Caller) -> None:
    with runtime.transaction() as session:
        webhooks.delete_inbound_secret(session, practice_of(session, who), actor=who.actor)


@router.delete(f"{API}/inbound-secret", status_code=204, responses=ERRORS)
async def delete_inbound_secret(
    request: Request, who: Annotated[Caller, Depends(writer)]
) -> Response:
    await run_in_threadpool(_delete_secret, runtime_of(request), who)
    return Response(status_code=204)


# --- the generic inbound webhook ---------------------------------------------------------------


@router.post(
    "/webhooks/generic/{practice_slug}",
    responses={
        403: {"description": "Missing, wrong or stale Standard Webhooks signature; not stored"},
        404: {"description": "No such practice"},
        422: {"description": "Signed, stored, but the data is not valid (kept with its errors)"},
        503: {"description": "Stored, but not processed yet: retry with the same webhook-id"},
    },
    summary="Appointments from a custom scheduling system (Standard Webhooks signed)",
)
async def generic_inbound(practice_slug: str, request: Request) -> Any:
    """Body: `{"type": "appointment.upsert" | "appointment.cancel", "data": {...}}`; see
    docs/WEBHOOKS.md. A webhook-id already processed answers 200 with `"status": "duplicate"`."""
    body = await request.body()
    try:
        return await run_in_threadpool(
            partial(
                webhooks_inbound.receive,
                runtime_of(request),
                practice_slug,
                dict(request.headers),
                body,
                content_type=request.headers.get("content-type"),
            )
        )
    except webhooks_inbound.ProcessingFailed as exc:
        response: JSONResponse = error_response(503, "processing_failed", str(exc))
        return response
