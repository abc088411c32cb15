"""Managing webhooks: a practice's endpoints (secret shown once), their deliveries and attempts,
manual redelivery, and the secret custom systems sign inbound webhooks with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Practice
from frontdesk.adapters.db.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookInboundSecret,
)
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.intake import field_errors
from frontdesk.domain.times import iso, now_utc
from frontdesk.domain.webhook_signing import new_secret
from frontdesk.domain.webhooks import EndpointIn, EndpointPatch
from frontdesk.services import audit

DELIVERY_STATES = ("pending", "delivering", "delivered", "failed", "dead")
GENERIC = "generic"


def parse_endpoint(
    model: type[EndpointIn] | type[EndpointPatch], payload: Any, *, allow_http: bool
) -> Any:
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    try:
        return model.model_validate(payload, context={"allow_http": allow_http})
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, "body")) from exc


# --- endpoints -------------------------------------------------------------------------------


def create_endpoint(
    session: Session, cipher: FieldCipher, practice: Practice, data: EndpointIn, *, actor: str
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret; the secret is returned once and kept sealed."""
    secret = new_secret()
    endpoint = WebhookEndpoint(
        practice_id=practice.id,
        url=data.url,
        description=data.description,
        secret_sealed=cipher.seal(secret) or "",
        event_types=",".join(data.event_types) if data.event_types else None,
        enabled=data.enabled,
        consecutive_failures=0,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="webhook_endpoint.created",
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        details={"event_types": data.event_types or "all"},
    )
    return endpoint, secret


def list_endpoints(session: Session, practice: Practice) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.practice_id == practice.id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, practice: Practice, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.practice_id != practice.id:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def update_endpoint(
    session: Session, practice: Practice, endpoint_id: int, data: EndpointPatch, *, actor: str
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, practice, endpoint_id)
    sent = data.model_fields_set
    changed: list[str] = []
    if "url" in sent and data.url is not None and data.url != endpoint.url:
        endpoint.url = data.url
        changed.append("url")
    if "event_types" in sent:
        endpoint.event_types = ",".join(data.event_types) if data.event_types else None
        changed.append("event_types")
    if "description" in sent:
        endpoint.description = data.description
        changed.append("description")
    if "enabled" in sent and data.enabled is not None and data.enabled != endpoint.enabled:
        changed.append("enabled")
        now = now_utc()
        endpoint.enabled = data.enabled
        if data.enabled:
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            # What waited while the endpoint was off goes out now, in order.
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    WebhookDelivery.state == "failed",
                )
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
        else:
            endpoint.disabled_reason = f"disabled by {actor}"[:300]
            endpoint.disabled_at = now
    if changed:
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="webhook_endpoint.updated",
            entity_type="webhook_endpoint",
            entity_id=endpoint.id,
            details={"fields": changed},
        )
    return endpoint


def delete_endpoint(session: Session, practice: Practice, endpoint_id: int, *, actor: str) -> None:
    """Remove an endpoint with its deliveries and their attempt log."""
    endpoint = get_endpoint(session, practice, endpoint_id)
    session.delete(endpoint)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="webhook_endpoint.deleted",
        entity_type="webhook_endpoint",
        entity_id=endpoint_id,
    )


def endpoint_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as callers see it: never its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types.split(",") if endpoint.event_types else None,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": iso(endpoint.disabled_at),
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": iso(endpoint.failing_since),
        "last_success_at": iso(endpoint.last_success_at),
        "created_at": iso(endpoint.created_at),
    }


# --- deliveries ------------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    practice: Practice,
    *,
    endpoint_id: int | None = None,
    event_id: int | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Deliveries, newest first, each with its event and its attempts."""
    if state is not None and state not in DELIVERY_STATES:
        raise ValidationFailed(
            [FieldError("query.state", f"use one of {', '.join(DELIVERY_STATES)}")]
        )
    where = [WebhookDelivery.practice_id == practice.id]
    if endpoint_id is not None:
        where.append(WebhookDelivery.endpoint_id == endpoint_id)
    if event_id is not None:
        where.append(WebhookDelivery.event_id == event_id)
    if state is not None:
        where.append(WebhookDelivery.state == state)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where)) or 0
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(*where)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    attempts = _attempts_of(session, [d.id for d, _ in rows])
    items = [delivery_view(d, e, attempts.get(d.id, [])) for d, e in rows]
    return {"total": total, "limit": limit, "offset": offset, "deliveries": items}


def get_delivery(session: Session, practice: Practice, delivery_id: int) -> dict[str, Any]:
    delivery = _delivery(session, practice, delivery_id)
    attempts = _attempts_of(session, [delivery.id])
    return delivery_view(delivery, delivery.event, attempts.get(delivery.id, []))


def redeliver(
    session: Session, practice: Practice, delivery_id: int, *, actor: str, now: datetime
) -> WebhookDelivery:
    """Send a delivery again, whatever its state (except while it is being sent): it goes back
    in line with a fresh retry budget, the same ``webhook-id`` and the same body."""
    delivery = _delivery(session, practice, delivery_id)
    if delivery.state == "delivering":
        raise ValidationFailed(
            [FieldError("delivery", "this delivery is being sent right now; try again shortly")]
        )
    if not delivery.endpoint.enabled:
        raise ValidationFailed(
            [FieldError("endpoint", "the endpoint is disabled; enable it first")]
        )
    delivery.state = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.claimed_by = None
    delivery.claim_expires_at = None
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="webhook_delivery.redelivered",
        entity_type="webhook_delivery",
        entity_id=delivery.id,
        details={"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id},
    )
    return delivery


def delivery_view(
    delivery: WebhookDelivery, event: WebhookEvent, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event": {
            "id": event.id,
            "webhook_id": event.message_id,
            "type": event.type,
            "appointment_id": event.appointment_id,
            "created_at": iso(event.created_at),
        },
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at)
        if delivery.state in ("pending", "failed")
        else None,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": iso(delivery.delivered_at),
        "attempt_log": [attempt_view(a) for a in attempts],
    }


def attempt_view(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": iso(attempt.started_at),
        "url": attempt.url,
        "request_headers": attempt.request_headers,
        "request_body": attempt.request_body,
        "response_status": attempt.response_status,
        "response_body": attempt.response_body,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    }


def _delivery(session: Session, practice: Practice, delivery_id: int) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.practice_id != practice.id:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return delivery


def _attempts_of(session: Session, ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    found: dict[int, list[WebhookAttempt]] = {}
    if not ids:
        return found
    for attempt in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.started_at, WebhookAttempt.id)
    ):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


# --- the inbound secret --------------------------------------------------------------------


def rotate_inbound_secret(
    session: Session, cipher: FieldCipher, practice: Practice, *, actor: str
) -> str:
    """A new secret for the practice's generic inbound webhook (replacing any old one at once).
    Returned once; stored sealed."""
    secret = new_secret()
    row = session.scalar(
        select(WebhookInboundSecret).where(
            WebhookInboundSecret.practice_id == practice.id,
            WebhookInboundSecret.provider == GENERIC,
        )
    )
    if row is None:
        row = WebhookInboundSecret(practice_id=practice.id, provider=GENERIC)
        session.add(row)
    row.secret_sealed = cipher.seal(secret) or ""
    row.created_at = now_utc()
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="webhook_inbound_secret.rotated",
        entity_type="webhook_inbound_secret",
        entity_id=row.id,
    )
    return secret


def inbound_secret_of(session: Session, cipher: FieldCipher, practice_id: int) -> str | None:
    row = session.scalar(
        select(WebhookInboundSecret).where(
            WebhookInboundSecret.practice_id == practice_id,
            WebhookInboundSecret.provider == GENERIC,
        )
    )
    return cipher.open(row.secret_sealed) if row is not None else None


def inbound_secret_status(session: Session, practice: Practice) -> dict[str, Any]:
    row = session.scalar(
        select(WebhookInboundSecret).where(
            WebhookInboundSecret.practice_id == practice.id,
            WebhookInboundSecret.provider == GENERIC,
        )
    )
    return {
        "configured": row is not None,
        "created_at": iso(row.created_at) if row is not None else None,
        "url_path": f"/webhooks/generic/{practice.slug}",
    }


def delete_inbound_secret(session: Session, practice: Practice, *, actor: str) -> None:
    row = session.scalar(
        select(WebhookInboundSecret).where(
            WebhookInboundSecret.practice_id == practice.id,
            WebhookInboundSecret.provider == GENERIC,
        )
    )
    if row is None:
        raise NotFound("no inbound webhook secret is set")
    session.delete(row)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="webhook_inbound_secret.deleted",
        entity_type="webhook_inbound_secret",
        entity_id=row.id,
    )
