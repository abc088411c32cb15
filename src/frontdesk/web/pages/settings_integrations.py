"""Admin settings: API keys (the key shown once, list, revoke) and outbound webhooks (endpoints
with their secret shown once, enable/disable, delete, recent deliveries)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.webhooks import EVENT_TYPES, EndpointIn, EndpointPatch
from frontdesk.services import apikeys, webhooks
from frontdesk.web.pages.settings_common import Admin, Done, change, show

router = APIRouter(include_in_schema=False)


# --- API keys ----------------------------------------------------------------------------------


def _keys_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {"keys": apikeys.list_api_keys(session, practice)}


@router.get("/settings/api-keys", response_class=HTMLResponse)
async def keys_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_api_keys.html", _keys_page)


@router.post("/settings/api-keys")
async def create_key(
    request: Request,
    staff: Admin,
    name: Annotated[str, Form(max_length=200)] = "",
    read_only: Annotated[bool, Form()] = False,
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        label = name.strip()
        if not label or len(label) > 120:
            raise ValidationFailed([FieldError("name", "say what the key is for (1-120 chars)")])
        key, token = apikeys.create_api_key(
            session, practice, label, can_write=not read_only, actor=staff.actor
        )
        return Done(
            f"Created the key {key.prefix} ({'read only' if read_only else 'read and write'}). "
            "Copy it now: it is shown only this once.",
            secret=token,
        )

    return await change(
        request,
        staff,
        "settings_api_keys.html",
        _keys_page,
        work,
        failed="create",
        form={"name": name},
    )


@router.post("/settings/api-keys/{prefix}/revoke")
async def revoke_key(request: Request, staff: Admin, prefix: str) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        key = apikeys.revoke_api_key(session, practice, prefix, actor=staff.actor)
        return Done(f"Revoked the key {key.prefix}.")

    return await change(request, staff, "settings_api_keys.html", _keys_page, work, failed="keys")


# --- webhooks ----------------------------------------------------------------------------------


def _webhooks_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {
        "endpoints": [
            webhooks.endpoint_view(e) for e in webhooks.list_endpoints(session, practice)
        ],
        "deliveries": webhooks.list_deliveries(session, practice, limit=50)["deliveries"],
        "event_types": EVENT_TYPES,
    }


@router.get("/settings/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_webhooks.html", _webhooks_page)


def _without_body(error: FieldError) -> FieldError:
    return FieldError(error.loc.removeprefix("body.").split("[")[0], error.message)


@router.post("/settings/webhooks")
async def create_webhook(
    request: Request,
    staff: Admin,
    url: Annotated[str, Form(max_length=1200)] = "",
    description: Annotated[str, Form(max_length=400)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
) -> Response:
    payload: dict[str, Any] = {"url": url, "description": description or None}
    if event_types:
        payload["event_types"] = event_types

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        try:
            data = webhooks.parse_endpoint(
                EndpointIn, payload, allow_http=runtime.settings.webhook_allow_http
            )
        except ValidationFailed as exc:
            raise ValidationFailed([_without_body(e) for e in exc.errors]) from None
        endpoint, secret = webhooks.create_endpoint(
            session, runtime.cipher, practice, data, actor=staff.actor
        )
        return Done(
            f"Added endpoint {endpoint.id}. Its signing secret is shown only this once: "
            "store it where the receiving system checks signatures.",
            secret=secret,
        )

    return await change(
        request,
        staff,
        "settings_webhooks.html",
        _webhooks_page,
        work,
        failed="create",
        form={"url": url, "description": description, "event_types": event_types or []},
    )


@router.post("/settings/webhooks/{endpoint_id}/enabled")
async def enable_webhook(
    request: Request, staff: Admin, endpoint_id: int, enabled: Annotated[bool, Form()] = False
) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        patch = webhooks.parse_endpoint(
            EndpointPatch, {"enabled": enabled}, allow_http=runtime.settings.webhook_allow_http
        )
        webhooks.update_endpoint(session, practice, endpoint_id, patch, actor=staff.actor)
        return Done(f"Endpoint {endpoint_id} is {'enabled' if enabled else 'disabled'}.")

    return await change(
        request, staff, "settings_webhooks.html", _webhooks_page, work, failed="endpoints"
    )


@router.post("/settings/webhooks/{endpoint_id}/delete")
async def delete_webhook(request: Request, staff: Admin, endpoint_id: int) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        webhooks.delete_endpoint(session, practice, endpoint_id, actor=staff.actor)
        return Done(f"Deleted endpoint {endpoint_id} with its deliveries.")

    return await change(
        request, staff, "settings_webhooks.html", _webhooks_page, work, failed="endpoints"
    )
