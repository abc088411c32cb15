"""Consent per patient and channel, with its ledger: every grant and revocation, where it came
from, and the message that caused it. An opted-out channel is never used again (the patient's
reminders move to their next consented channel at once)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.channel_models import ConsentEvent
from frontdesk.adapters.db.models import Patient, PatientConsent
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.services import audit


def current(patient: Patient, channel: Channel) -> ConsentStatus | None:
    for row in patient.consents:
        if row.channel == channel.value:
            return ConsentStatus(row.status)
    return None


def set_consent(
    session: Session,
    patient: Patient,
    channel: Channel,
    status: ConsentStatus,
    *,
    source: str,
    actor: str,
    evidence_message_id: int | None = None,
    detail: str | None = None,
) -> bool:
    """Record a grant or revocation; returns False when it changes nothing (the ledger still
    notes a repeated STOP, as evidence that the patient asked again)."""
    row = next((c for c in patient.consents if c.channel == channel.value), None)
    changed = row is None or row.status != status.value
    if row is None:
        patient.consents.append(
            PatientConsent(
                practice_id=patient.practice_id,
                channel=channel.value,
                status=status.value,
                source=source,
            )
        )
    elif changed:
        row.status = status.value
        row.source = source
    session.add(
        ConsentEvent(
            practice_id=patient.practice_id,
            patient=patient,
            channel=channel.value,
            action=status.value,
            source=source,
            evidence_message_id=evidence_message_id,
            detail=detail if changed else f"repeated: {detail or source}",
        )
    )
    if changed:
        audit.record(
            session,
            practice_id=patient.practice_id,
            actor=actor,
            action=f"consent.{status.value}",
            entity_type="patient",
            entity=patient,
            details={"channel": channel.value, "source": source},
        )
    return changed


def ledger(session: Session, patient_id: int) -> list[ConsentEvent]:
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.patient_id == patient_id)
            .order_by(ConsentEvent.created_at, ConsentEvent.id)
        )
    )
