"""Patients: idempotent upsert keyed by (source, external id), contact data sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Patient, Practice
from frontdesk.domain.channels import Channel, ConsentStatus, default_channel
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import IntakeOutcome, PatientIn
from frontdesk.services import audit, consent, reminders
from frontdesk.services.claimed import PatientRow
from frontdesk.services.lookups import IntakeCache, PatientKey, find_patient
from frontdesk.services.reminders import Planning

# Fields that decide whether, when and where a patient can be reminded.
REACH_FIELDS = frozenset({"phone", "email", "preferred_channel", "timezone", "reminders_enabled"})


def upsert_patient(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    key: PatientKey,
    data: PatientIn,
    *,
    actor: str,
    planning: Planning,
    cache: IntakeCache | None = None,
) -> tuple[Patient, IntakeOutcome]:
    """Create the patient or apply the fields ``data`` carries; unchanged data writes nothing.
    A change to how the patient can be reached re-plans their upcoming reminders."""
    patient = find_patient(session, practice.id, key, cache)
    if patient is None:
        return _create(session, cipher, practice, key, data, actor=actor, cache=cache)
    # Checked before anything is written, so a refused update leaves the row untouched.
    _check_reachable(
        data.preferred_channel.value
        if "preferred_channel" in data.model_fields_set and data.preferred_channel
        else patient.preferred_channel,
        has_phone=data.phone is not None
        if "phone" in data.model_fields_set
        else patient.phone_sealed is not None,
        has_email=data.email is not None
        if "email" in data.model_fields_set
        else patient.email_sealed is not None,
    )
    changed = _apply(patient, data, cipher)
    changed |= _apply_consent(session, patient, data, actor=actor)
    if not changed:
        return patient, IntakeOutcome.UNCHANGED
    if changed & REACH_FIELDS or any(f.startswith("consent.") for f in changed):
        reminders.replan_patient(session, practice, patient, planning)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="patient.updated",
        entity_type="patient",
        entity_id=patient.id,
        details={"fields": sorted(changed)},
    )
    return patient, IntakeOutcome.UPDATED


def _create(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    key: PatientKey,
    data: PatientIn,
    *,
    actor: str,
    cache: IntakeCache | None,
) -> tuple[Patient, IntakeOutcome]:
    """A new patient row, inserted at the next flush. A concurrent writer creating the same key
    makes that flush raise IntegrityError; the caller's unit of work retries and then finds the
    winner's row."""
    channel = data.preferred_channel
    _check_reachable(
        channel.value if channel else None,
        has_phone=data.phone is not None,
        has_email=data.email is not None,
    )
    patient = Patient(
        practice_id=practice.id,
        source=key.source,
        external_id=key.external_id,
        language="en",
        reminders_enabled=True,
    )
    _apply(patient, data, cipher)
    session.add(patient)
    if cache is not None:
        cache.patients[key] = patient
    _apply_consent(session, patient, data, actor=actor)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="patient.created",
        entity_type="patient",
        entity=patient,
    )
    return patient, IntakeOutcome.CREATED


def _apply(patient: Patient, data: PatientIn, cipher: FieldCipher) -> set[str]:
    """Copy the fields the source sent onto the row; return the names of those that changed."""
    sent = data.model_fields_set
    changed: set[str] = set()

    def put(field: str, column: str, value: Any) -> None:
        if getattr(patient, column) != value:
            setattr(patient, column, value)
            changed.add(field)

    for field in ("name", "preferred_name", "timezone"):
        if field in sent:
            put(field, field, getattr(data, field))
    if "language" in sent:
        put("language", "language", data.language or "en")
    if "preferred_channel" in sent:
        put(
            "preferred_channel",
            "preferred_channel",
            data.preferred_channel.value if data.preferred_channel else None,
        )
    if "reminders_enabled" in sent and data.reminders_enabled is not None:
        put("reminders_enabled", "reminders_enabled", data.reminders_enabled)
    if "phone" in sent:
        lookup = cipher.lookup_key(data.phone)
        if lookup != patient.phone_lookup:
            patient.phone_lookup = lookup
            patient.phone_sealed = cipher.seal(data.phone)
            changed.add("phone")
    if "email" in sent:
        lookup = cipher.lookup_key(data.email.lower() if data.email else None)
        if lookup != patient.email_lookup or cipher.open(patient.email_sealed) != data.email:
            patient.email_lookup = lookup
            patient.email_sealed = cipher.seal(data.email)
            changed.add("email")
    if "date_of_birth" in sent:
        dob = data.date_of_birth.isoformat() if data.date_of_birth else None
        if cipher.open(patient.date_of_birth_sealed) != dob:
            patient.date_of_birth_sealed = cipher.seal(dob)
            changed.add("date_of_birth")
    return changed


def _apply_consent(session: Session, patient: Patient, data: PatientIn, *, actor: str) -> set[str]:
    if "consent" not in data.model_fields_set or not data.consent:
        return set()
    changed: set[str] = set()
    for channel, granted in data.consent.items():
        status = ConsentStatus.GRANTED if granted else ConsentStatus.REVOKED
        if consent.current(patient, channel) == status:
            continue
        consent.set_consent(session, patient, channel, status, source=actor, actor=actor)
        changed.add(f"consent.{channel.value}")
    return changed


def effective_channel(patient: Patient) -> Channel | None:
    """The channel to reach the patient on: their own choice, else the one their contact data
    allows. Not stored, so removing a phone number never leaves a stale automatic choice."""
    if patient.preferred_channel:
        return Channel(patient.preferred_channel)
    return default_channel(
        has_phone=patient.phone_sealed is not None, has_email=patient.email_sealed is not None
    )


def _check_reachable(channel: str | None, *, has_phone: bool, has_email: bool) -> None:
    """A channel the patient chose but cannot be reached on is a data error, said up front."""
    if channel in (Channel.SMS.value, Channel.WHATSAPP.value) and not has_phone:
        raise ValidationFailed(
            [FieldError("preferred_channel", f"{channel} needs a phone number on the patient")]
        )
    if channel == Channel.EMAIL.value and not has_email:
        raise ValidationFailed(
            [FieldError("preferred_channel", "email needs an email address on the patient")]
        )


@dataclass(frozen=True)
class PatientContact:
    """A patient's contact data, opened for use by a channel or shown to the API client."""

    phone: str | None
    email: str | None
    date_of_birth: date | None


def contact_of(patient: PatientRow, cipher: FieldCipher) -> PatientContact:
    dob = cipher.open(patient.date_of_birth_sealed)
    return PatientContact(
        phone=cipher.open(patient.phone_sealed),
        email=cipher.open(patient.email_sealed),
        date_of_birth=date.fromisoformat(dob) if dob else None,
    )
