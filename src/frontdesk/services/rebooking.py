"""Re-booking links: the practice's (or clinician's) booking URL in follow-ups and receipts,
with a tracking token, so a booking that follows is credited to the message that invited it.

Attribution works for every scheduling system: a new appointment for a patient who was sent a
re-booking link in the last ``WINDOW`` is credited to the latest such link (and a system that
passes our token back — ``fd`` / ``utm_content`` — is matched by the token itself).
Prefilling the patient's name and email in the booking link puts contact data in a URL, so it
is off unless the practice turns it on (``settings.rebooking.prefill``).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.handoff_models import RebookingLink
from frontdesk.adapters.db.models import Appointment, Practice
from frontdesk.services.claimed import PatientRow
from frontdesk.services.patients import contact_of

WINDOW = timedelta(days=30)


def tracked_url(
    session: Session,
    practice: Practice,
    patient: PatientRow,
    base_url: str,
    *,
    purpose: str,
    appointment_id: int | None,
    cipher: FieldCipher,
    now: datetime,
) -> str:
    token = secrets.token_urlsafe(9)
    session.add(
        RebookingLink(
            practice_id=practice.id,
            patient_id=patient.id,
            appointment_id=appointment_id,
            purpose=purpose,
            token=token,
            created_at=now,
        )
    )
    params = {"utm_source": "frontdesk", "utm_campaign": purpose, "utm_content": f"fd_{token}"}
    if (practice.settings or {}).get("rebooking", {}).get("prefill"):
        contact = contact_of(patient, cipher)
        if patient.name:
            params["name"] = patient.name
        if contact.email:
            params["email"] = contact.email
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def attribute(
    session: Session, appointment: Appointment, now: datetime, token: str | None = None
) -> RebookingLink | None:
    """Credit a new booking to the link that invited it, if any."""
    link = None
    if token:
        link = session.scalar(
            select(RebookingLink).where(
                RebookingLink.token == token.removeprefix("fd_"),
                RebookingLink.practice_id == appointment.practice_id,
            )
        )
    if link is None and appointment.patient_id is not None:
        link = session.scalar(
            select(RebookingLink)
            .where(
                RebookingLink.patient_id == appointment.patient_id,
                RebookingLink.booked_appointment_id.is_(None),
                RebookingLink.created_at >= now - WINDOW,
                RebookingLink.created_at <= now,
            )
            .order_by(RebookingLink.created_at.desc())
            .limit(1)
        )
    if link is None or link.booked_appointment_id is not None:
        return None
    if link.appointment_id == appointment.id:
        return None  # the appointment that was missed is not its own re-booking
    link.booked_appointment_id = appointment.id
    link.booked_at = now
    return link
