"""Write-back to FHIR servers: the patient's answer, a status, a record of each message sent.

``queue_fhir_writeback`` adds a row in the caller's transaction (the one that records the
patient's answer), so the change is durable exactly when the answer is. The worker claims due
rows (a lease; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), writes them outside any transaction
with conditional requests, and records the outcome. Per appointment, rows are written in the
order they were queued: a row waits while an earlier one for the same appointment is not done.

A 412 means the EHR changed the Appointment since we read it: it is read again and the change
re-decided (domain/fhir_writeback.py) — applied to their version, found already there, or
``superseded`` (left alone, visible). Transient failures retry with exponential backoff; after
``MAX_ATTEMPTS`` the row is ``failed`` (visible, retried on request), never dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from frontdesk.adapters.db.models import Appointment, Message, Practice
from frontdesk.adapters.db.scheduler_models import FhirWriteback, Integration
from frontdesk.adapters.schedulers.clients import HttpClients
from frontdesk.adapters.schedulers.errors import (
    PermanentSyncError,
    PreconditionFailed,
    SyncError,
    TransientSyncError,
)
from frontdesk.adapters.schedulers.fhir import FhirClient
from frontdesk.bootstrap import Runtime
from frontdesk.domain import fhir_writeback as rules
from frontdesk.domain.fhir_writeback import Change, CommunicationSent, change_as_dict
from frontdesk.domain.times import now_utc
from frontdesk.services import audit

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
CONFLICT_ROUNDS = 3  # re-reads after 412 within one attempt
UNFINISHED = ("pending", "sending", "failed")


def queue_fhir_writeback(session: Session, appointment_id: int, change: Change) -> int | None:
    """Queue ``change`` for the appointment's FHIR server, in the caller's transaction.

    Returns the queued row's id, or None when the appointment did not come from a FHIR
    integration (so callers may call it for every answer)."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        return None
    integration = session.scalar(
        select(Integration).where(
            Integration.practice_id == appointment.practice_id,
            Integration.source == appointment.source,
            Integration.kind == "fhir",
            Integration.enabled.is_(True),
        )
    )
    if integration is None:
        return None
    row = FhirWriteback(
        practice_id=appointment.practice_id,
        integration_id=integration.id,
        appointment_id=appointment.id,
        change=change_as_dict(change),
        state="pending",
        attempts=0,
        next_attempt_at=now_utc(),
    )
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class _Job:
    id: int
    attempts: int
    change: dict[str, Any]
    base_url: str
    token: str | None
    appointment_id: str
    patient_id: str
    identifier: str
    message: tuple[str, str, datetime] | None  # channel, text, sent at


def process_writebacks(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    clients: HttpClients | None = None,
    limit: int = 20,
) -> dict[str, int]:
    """Write the due rows; returns how many ended in each state."""
    now = now or now_utc()
    clients = clients or HttpClients()
    counts: dict[str, int] = {}
    for job in _claim(runtime, now, limit):
        try:
            state, note = _write(clients.fhir(job.base_url, job.token), job)
            error = None
        except (TransientSyncError, PreconditionFailed) as exc:
            state, note, error = "retry", None, str(exc)
        except (PermanentSyncError, SyncError) as exc:
            state, note, error = "failed", None, str(exc)
        except Exception as exc:  # a bug must not lose the row: keep it, say what kind
            log.exception("fhir write-back failed unexpectedly")
            state, note, error = "retry", None, f"{type(exc).__name__} while writing back"
        final = _record(runtime, job, state, note, error, now)
        counts[final] = counts.get(final, 0) + 1
    return counts


def _claim(runtime: Runtime, now: datetime, limit: int) -> list[_Job]:
    earlier = aliased(FhirWriteback)
    with runtime.transaction() as session:
        rows = session.scalars(
            select(FhirWriteback)
            .where(
                or_(
                    and_(FhirWriteback.state == "pending", FhirWriteback.next_attempt_at <= now),
                    and_(FhirWriteback.state == "sending", FhirWriteback.lease_until < now),
                ),
                # Order per appointment: nothing overtakes an unfinished earlier change.
                ~exists().where(
                    earlier.appointment_id == FhirWriteback.appointment_id,
                    earlier.id < FhirWriteback.id,
                    earlier.state.in_(UNFINISHED),
                ),
            )
            .order_by(FhirWriteback.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        jobs = []
        for row in rows:
            job = _job(runtime, session, row)
            if job is None:
                row.state, row.last_error, row.finished_at = "failed", "integration gone", now
                continue
            row.state = "sending"
            row.lease_until = now + LEASE
            row.attempts += 1
            jobs.append(job)
        return jobs


def _job(runtime: Runtime, session: Session, row: FhirWriteback) -> _Job | None:
    integration = session.get(Integration, row.integration_id)
    appointment = session.get(Appointment, row.appointment_id)
    practice = session.get(Practice, row.practice_id)
    if integration is None or appointment is None or practice is None:
        return None
    message = None
    identifier = f"{practice.slug}-writeback-{row.id}"
    if row.change.get("kind") == "communication":
        found = session.get(Message, row.change.get("message_id"))
        if found is not None:
            message = (found.channel, found.body, found.created_at)
            identifier = f"{practice.slug}-message-{found.id}"
    return _Job(
        id=row.id,
        attempts=row.attempts + 1,
        change=dict(row.change),
        base_url=runtime.cipher.open(integration.endpoint_sealed) or "",
        token=runtime.cipher.open(integration.token_sealed),
        appointment_id=appointment.external_id,
        patient_id=appointment.patient.external_id,
        identifier=identifier,
        message=message,
    )


def _write(client: FhirClient, job: _Job) -> tuple[str, str]:
    """Make the change on the server: ("done" | "superseded", what happened)."""
    change = rules.change_from_dict(job.change)
    if isinstance(change, CommunicationSent):
        if job.message is None:
            return "superseded", "the message no longer exists"
        channel, text, sent = job.message
        resource = rules.communication(
            identifier=job.identifier,
            appointment_id=job.appointment_id,
            patient_id=job.patient_id,
            channel=channel,
            text=text,
            sent=sent,
        )
        status = client.create_once(resource, f"{rules.MESSAGE_IDENTIFIER_SYSTEM}|{job.identifier}")
        return "done", "created" if status == 201 else f"already recorded ({status})"
    for _ in range(CONFLICT_ROUNDS):
        current = client.read("Appointment", job.appointment_id)
        decision = rules.decide(current.resource, change, job.patient_id)
        if decision.action == "already":
            return "done", decision.reason
        if decision.action == "superseded":
            return "superseded", decision.reason
        assert decision.resource is not None
        try:
            written = client.update(decision.resource, current.etag)
        except PreconditionFailed:
            continue  # the EHR wrote in between: read their version and decide again
        return "done", f"written (ETag {written.etag})" if written.etag else "written"
    raise PreconditionFailed("the appointment kept changing on the server (412 each time)")


def _record(
    runtime: Runtime, job: _Job, state: str, note: str | None, error: str | None, now: datetime
) -> str:
    with runtime.transaction() as session:
        row = session.get(FhirWriteback, job.id)
        if row is None:
            return "missing"
        row.lease_until = None
        row.result = note[:200] if note else row.result
        row.last_error = error[:500] if error else None
        if state == "retry" and row.attempts < MAX_ATTEMPTS:
            row.state = "pending"
            row.next_attempt_at = now + min(
                timedelta(seconds=15 * 2 ** (row.attempts - 1)), MAX_BACKOFF
            )
        elif state == "retry" or state == "failed":
            row.state = "failed"
            row.finished_at = now
        else:
            row.state = state
            row.finished_at = now
        if row.state in ("failed", "superseded"):
            audit.record(
                session,
                practice_id=row.practice_id,
                actor="integration:fhir",
                action=f"fhir_writeback.{row.state}",
                entity_type="appointment",
                entity_id=row.appointment_id,
                details={"writeback_id": row.id, "kind": row.change.get("kind")},
            )
        return row.state


def list_writebacks(
    session: Session, practice_id: int, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(FhirWriteback).where(FhirWriteback.practice_id == practice_id)
    if state:
        query = query.where(FhirWriteback.state == state)
    rows = session.scalars(query.order_by(FhirWriteback.id.desc()).limit(limit))
    return [
        {
            "id": r.id,
            "appointment_id": r.appointment_id,
            "change": r.change,
            "state": r.state,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(),
            "last_error": r.last_error,
            "result": r.result,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def retry_failed(session: Session, practice_id: int, *, now: datetime) -> int:
    """Put the practice's failed write-backs back in the queue (after fixing the cause)."""
    rows = session.scalars(
        select(FhirWriteback).where(
            FhirWriteback.practice_id == practice_id, FhirWriteback.state == "failed"
        )
    ).all()
    for row in rows:
        row.state, row.attempts, row.next_attempt_at, row.finished_at = "pending", 0, now, None
    return len(rows)
