"""What callers see of our rows: plain dicts for JSON, CLI output and templates."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Appointment, Patient, Practice
from frontdesk.domain.times import iso
from frontdesk.services.patients import contact_of, effective_channel


def patient_summary(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "source": patient.source,
        "external_id": patient.external_id,
        "name": patient.name,
        "preferred_name": patient.preferred_name,
    }


def patient_view(patient: Patient, cipher: FieldCipher) -> dict[str, Any]:
    contact = contact_of(patient, cipher)
    return {
        **patient_summary(patient),
        "date_of_birth": contact.date_of_birth.isoformat() if contact.date_of_birth else None,
        "phone": contact.phone,
        "email": contact.email,
        "preferred_channel": patient.preferred_channel,
        "channel": channel.value if (channel := effective_channel(patient)) else None,
        "language": patient.language,
        "timezone": patient.timezone,
        "reminders_enabled": patient.reminders_enabled,
        "consent": {c.channel: c.status for c in sorted(patient.consents, key=lambda c: c.channel)},
        "created_at": iso(patient.created_at),
        "updated_at": iso(patient.updated_at),
    }


def appointment_view(appointment: Appointment, practice: Practice) -> dict[str, Any]:
    tz = ZoneInfo(practice.timezone)
    return {
        "id": appointment.id,
        "source": appointment.source,
        "external_id": appointment.external_id,
        "status": appointment.status,
        "confirmation": appointment.confirmation,
        "start": iso(appointment.start_at),
        "end": iso(appointment.end_at),
        "local_start": appointment.start_at.astimezone(tz).isoformat(),
        "local_end": appointment.end_at.astimezone(tz).isoformat(),
        "timezone": practice.timezone,
        "patient": patient_summary(appointment.patient),
        "clinician": (
            {"id": appointment.clinician.id, "name": appointment.clinician.name}
            if appointment.clinician
            else None
        ),
        "location": (
            {"id": appointment.location.id, "name": appointment.location.name}
            if appointment.location
            else None
        ),
        "telehealth_url": appointment.telehealth_url,
        "version": appointment.version,
        "created_at": iso(appointment.created_at),
        "updated_at": iso(appointment.updated_at),
    }


def practice_view(practice: Practice) -> dict[str, Any]:
    return {
        "id": practice.id,
        "slug": practice.slug,
        "name": practice.name,
        "timezone": practice.timezone,
        "locale": practice.locale,
        "phone": practice.phone,
        "email": practice.email,
        "booking_url": practice.booking_url,
    }
