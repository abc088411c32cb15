"""The generic inbound webhook: custom scheduling systems push appointments, signed with
Standard Webhooks under a per-practice secret.

verify (403, nothing stored) → store raw, dedupe key = ``webhook-id`` → process: the body is
``{"type": "appointment.upsert" | "appointment.cancel", "data": {...}}`` where ``data`` is an
appointment as the REST API takes it (``AppointmentIn``) plus its key, ``external_id`` and an
optional ``source`` (default ``generic``). Bad data is kept as an intake rejection with its field
errors and answered 422; the stored webhook is then ``rejected`` and a redelivery of the same id
gets the same answer. A webhook-id seen before is not processed again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import InboundWebhook, IntakeRejection, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.errors import FieldError, Forbidden, NotFound, ValidationFailed
from frontdesk.domain.intake import SOURCE_PATTERN, SOURCE_RULE, AppointmentIn, field_errors
from frontdesk.domain.times import now_utc
from frontdesk.domain.webhook_signing import SignatureError, verify
from frontdesk.services import audit, inbound, reminders
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.intake import planning_now, validation_context
from frontdesk.services.lookups import AppointmentKey, find_appointment
from frontdesk.services.webhooks import GENERIC, inbound_secret_of

log = logging.getLogger(__name__)

PROVIDER = GENERIC
CHANNEL = "webhook.generic"
TYPES = ("appointment.upsert", "appointment.cancel")
REJECTED = "rejected"


class ProcessingFailed(Exception):
    """Stored, but processing failed on our side: the sender should retry (same webhook-id)."""


@dataclass
class _Result:
    answer: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] | None = None


def receive(
    runtime: Runtime,
    practice_slug: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    content_type: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify, store and process one generic webhook. Returns the answer for a 200; raises
    ``Forbidden`` (bad signature), ``NotFound`` (no such practice), ``ValidationFailed`` (bad
    data, kept) or ``ProcessingFailed`` (kept, retry later)."""
    with runtime.transaction() as session:
        practice = session.scalar(select(Practice).where(Practice.slug == practice_slug))
        if practice is None:
            raise NotFound(f"no practice {practice_slug!r}")
        practice_id = practice.id
        secret = inbound_secret_of(session, runtime.cipher, practice_id)
    if secret is None:
        raise Forbidden("this practice has no inbound webhook secret; create one first")
    try:
        verified = verify(
            secret,
            dict(headers),
            body,
            now=now or now_utc(),
            tolerance=timedelta(seconds=runtime.settings.webhook_inbound_tolerance_seconds),
        )
    except SignatureError as exc:
        log.info("generic webhook refused", extra={"practice_id": practice_id, "why": str(exc)})
        raise Forbidden(f"webhook signature rejected: {exc}") from exc

    stored = inbound.store(
        runtime,
        practice_id=practice_id,
        provider=PROVIDER,
        kind="appointment",
        dedupe_key=verified.msg_id,
        payload=body.decode("utf-8", errors="replace"),
        content_type=content_type,
    )
    if stored.duplicate:
        with runtime.transaction() as session:
            row = session.get(InboundWebhook, stored.webhook_id)
            state = row.state if row is not None else "missing"
        if state in ("processed", "ignored"):
            return {"status": "duplicate", "webhook_id": verified.msg_id}
        if state == REJECTED:
            raise ValidationFailed(
                _kept_errors(runtime, practice_id, verified.msg_id),
                message="This webhook-id was rejected before; send a corrected event "
                "with a new webhook-id.",
            )
    result = _Result()
    state = inbound.process(
        runtime,
        stored.webhook_id,
        lambda s, r, p: _handle(runtime, s, r, p, verified.msg_id, result),
    )
    if state == REJECTED:
        raise ValidationFailed(result.errors or [], message="The webhook's data is not valid.")
    if state != "processed":
        raise ProcessingFailed("stored, but could not be processed; it will be retried")
    return {"status": "processed", "webhook_id": verified.msg_id, **result.answer}


def _handle(
    runtime: Runtime,
    session: Session,
    row: InboundWebhook,
    payload: str,
    msg_id: str,
    result: _Result,
) -> None:
    practice = session.get(Practice, row.practice_id)
    assert practice is not None
    try:
        result.answer = _apply(runtime, session, practice, payload)
    except ValidationFailed as exc:
        # Bad data is the sender's to fix: keep it with its reasons, do not retry it.
        row.state = REJECTED
        row.error = "invalid: " + ", ".join(e.loc for e in exc.errors)[:480]
        result.errors = exc.errors
        session.add(
            IntakeRejection(
                practice_id=practice.id,
                channel=CHANNEL,
                reference=f"{PROVIDER}/{msg_id}"[:300],
                raw_sealed=runtime.cipher.seal(payload) or "",
                errors={"errors": [e.as_dict() for e in exc.errors]},
            )
        )


def _apply(runtime: Runtime, session: Session, practice: Practice, payload: str) -> dict[str, Any]:
    try:
        envelope = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [FieldError("body", f"malformed JSON: {exc.msg} at line {exc.lineno}")]
        ) from exc
    if not isinstance(envelope, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    errors: list[FieldError] = []
    kind = envelope.get("type")
    data = envelope.get("data")
    if kind not in TYPES:
        errors.append(FieldError("body.type", f"use one of {', '.join(TYPES)}"))
    if not isinstance(data, dict):
        errors.append(FieldError("body.data", "expected a JSON object"))
    if errors or not isinstance(data, dict):
        raise ValidationFailed(errors)
    record = dict(data)
    source = record.pop("source", GENERIC)
    external_id = record.pop("external_id", None)
    if not isinstance(source, str) or not SOURCE_PATTERN.match(source):
        errors.append(FieldError("body.data.source", SOURCE_RULE))
    if not isinstance(external_id, str) or not 1 <= len(external_id) <= 200 or " " in external_id:
        errors.append(
            FieldError("body.data.external_id", "required: 1-200 characters without spaces")
        )
    if kind == "appointment.cancel":
        if errors:
            raise ValidationFailed(errors)
        return _cancel(runtime, session, practice, str(source), str(external_id))
    try:
        appointment_in = AppointmentIn.model_validate(record, context=validation_context(practice))
    except ValidationError as exc:
        errors += field_errors(exc, "body.data")
    if errors:
        raise ValidationFailed(errors)
    appointment, outcome = upsert_appointment(
        session,
        runtime.cipher,
        practice,
        str(source),
        str(external_id),
        appointment_in,
        actor=f"webhook:{PROVIDER}",
        default_minutes=runtime.settings.default_session_minutes,
        planning=planning_now(runtime),
    )
    session.flush()
    return {"result": outcome.value, "appointment": _ref(appointment.id, source, external_id)}


def _cancel(
    runtime: Runtime, session: Session, practice: Practice, source: str, external_id: str
) -> dict[str, Any]:
    appointment = find_appointment(session, practice.id, AppointmentKey(source, external_id))
    if appointment is None:
        raise ValidationFailed(
            [FieldError("body.data.external_id", f"no appointment {source}/{external_id}")]
        )
    if appointment.status == AppointmentStatus.CANCELLED.value:
        return {"result": "unchanged", "appointment": _ref(appointment.id, source, external_id)}
    planning = planning_now(runtime)
    appointment.status = AppointmentStatus.CANCELLED.value
    appointment.status_changed_at = planning.now
    appointment.version += 1
    reminders.replan(session, practice, appointment, planning)
    audit.record(
        session,
        practice_id=practice.id,
        actor=f"webhook:{PROVIDER}",
        action="appointment.cancelled",
        entity_type="appointment",
        entity_id=appointment.id,
        details={"fields": ["status"], "status": appointment.status},
    )
    return {"result": "cancelled", "appointment": _ref(appointment.id, source, external_id)}


def _ref(appointment_id: int, source: str, external_id: str) -> dict[str, Any]:
    return {"id": appointment_id, "source": source, "external_id": external_id}


def _kept_errors(runtime: Runtime, practice_id: int, msg_id: str) -> list[FieldError]:
    with runtime.transaction() as session:
        kept = session.scalar(
            select(IntakeRejection)
            .where(
                IntakeRejection.practice_id == practice_id,
                IntakeRejection.channel == CHANNEL,
                IntakeRejection.reference == f"{PROVIDER}/{msg_id}"[:300],
            )
            .order_by(IntakeRejection.id.desc())
            .limit(1)
        )
        if kept is None:
            return []
        return [FieldError(e["loc"], e["message"]) for e in kept.errors.get("errors", [])]
