"""Appointments: idempotent upsert keyed by (source, external id) in one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Appointment, Clinician, Location, Practice
from frontdesk.domain.appointments import AppointmentStatus, Confirmation, confirmation_after_change
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import AppointmentIn, ClinicianIn, IntakeOutcome, LocationIn
from frontdesk.services import audit, rebooking, reminders
from frontdesk.services.lookups import (
    AppointmentKey,
    IntakeCache,
    PatientKey,
    find_appointment,
    find_patient,
)
from frontdesk.services.patients import upsert_patient
from frontdesk.services.reminders import Planning


def upsert_appointment(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    source: str,
    external_id: str,
    data: AppointmentIn,
    *,
    actor: str,
    default_minutes: int,
    planning: Planning,
    cache: IntakeCache | None = None,
    create_patient: bool = False,
) -> tuple[Appointment, IntakeOutcome]:
    """Create or update an appointment (and its patient) from a scheduling system's record.

    Sending the same record again changes nothing; a new time moves the appointment (and asks
    the patient to confirm again); status ``cancelled`` cancels it. A patient known only by id
    must exist, unless ``create_patient`` (file imports, whose rows name patients by id alone).
    Every change re-plans the appointment's reminders in the same transaction.
    """
    cache = cache or IntakeCache()
    patient_key = PatientKey(data.patient.source or source, data.patient.external_id)
    details = data.patient.details()
    if details.model_fields_set or create_patient:
        patient, patient_outcome = upsert_patient(
            session,
            cipher,
            practice,
            patient_key,
            details,
            actor=actor,
            planning=planning,
            cache=cache,
        )
    else:
        found = find_patient(session, practice.id, patient_key, cache)
        if found is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "patient",
                        f"no patient {patient_key.source}/{patient_key.external_id}: "
                        "send the patient's details with the appointment or PUT the patient first",
                    )
                ]
            )
        patient, patient_outcome = found, IntakeOutcome.UNCHANGED

    sent = data.model_fields_set
    clinician = _clinician(session, practice.id, data.clinician, cache) if data.clinician else None
    location = _location(session, practice.id, data.location, cache) if data.location else None
    start = data.start
    end = data.resolved_end(default_minutes)

    key = AppointmentKey(source, external_id)
    appointment = find_appointment(session, practice.id, key, cache)
    if appointment is None:
        appointment = Appointment(
            practice_id=practice.id,
            source=source,
            external_id=external_id,
            patient=patient,
            clinician_id=clinician.id if clinician else None,
            location_id=location.id if location else None,
            telehealth_url=data.telehealth_url,
            start_at=start,
            end_at=end,
            status=data.status.value,
            confirmation=(data.confirmation or Confirmation.UNCONFIRMED).value,
            version=1,
            time_set_at=planning.now,
            status_changed_at=planning.now,
        )
        # Inserted at the next flush; a concurrent creator of the same key makes it raise
        # IntegrityError and the caller's unit of work retries, then updates the winner's row.
        session.add(appointment)
        cache.appointments[key] = appointment
        reminders.replan(session, practice, appointment, planning)
        if planning.announce:
            # A live booking (not a bulk import): credit the follow-up that invited it.
            session.flush()
            rebooking.attribute(session, appointment, planning.now)
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="appointment.created",
            entity_type="appointment",
            entity=appointment,
            details={"status": appointment.status},
        )
        return appointment, IntakeOutcome.CREATED

    changed: dict[str, object] = {}

    def put(name: str, value: object) -> None:
        if getattr(appointment, name) != value:
            setattr(appointment, name, value)
            changed[name] = value

    if patient.id is None or appointment.patient_id != patient.id:
        appointment.patient = patient
        changed["patient_id"] = patient.id
    moved = _times_differ(appointment, start, end)
    if moved:
        put("start_at", start)
        put("end_at", end)
        appointment.time_set_at = planning.now
    if "status" in sent and appointment.status != data.status.value:
        put("status", data.status.value)
        appointment.status_changed_at = planning.now
    if "clinician" in sent:
        put("clinician_id", clinician.id if clinician else None)
    if "location" in sent:
        put("location_id", location.id if location else None)
    if "telehealth_url" in sent:
        put("telehealth_url", data.telehealth_url)
    confirmation = confirmation_after_change(
        Confirmation(appointment.confirmation), moved=moved, explicit=data.confirmation
    )
    put("confirmation", confirmation.value)

    if not changed:
        outcome = (
            IntakeOutcome.UPDATED
            if patient_outcome is IntakeOutcome.UPDATED
            else IntakeOutcome.UNCHANGED
        )
        return appointment, outcome
    appointment.version += 1
    reminders.replan(session, practice, appointment, planning)
    action = "appointment.updated"
    if changed.get("status") == AppointmentStatus.CANCELLED.value:
        action = "appointment.cancelled"
    elif moved:
        action = "appointment.moved"
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        entity_type="appointment",
        entity_id=appointment.id,
        details={"fields": sorted(changed), "status": appointment.status},
    )
    return appointment, IntakeOutcome.UPDATED


def _times_differ(appointment: Appointment, start: datetime, end: datetime) -> bool:
    return appointment.start_at != start or appointment.end_at != end


def _clinician(
    session: Session, practice_id: int, data: ClinicianIn, cache: IntakeCache
) -> Clinician:
    key = f"id:{data.external_id}" if data.external_id else f"name:{data.name.casefold()}"
    cached = cache.clinicians.get(key)
    if cached is not None:
        return cached
    clinician = session.scalar(
        select(Clinician).where(Clinician.practice_id == practice_id, Clinician.match_key == key)
    )
    if clinician is None:
        clinician = Clinician(practice_id=practice_id, match_key=key, name=data.name, active=True)
        session.add(clinician)
        session.flush()
    if clinician.name != data.name:
        clinician.name = data.name
    if data.email and clinician.email != data.email:
        clinician.email = data.email
    cache.clinicians[key] = clinician
    return clinician


def _location(session: Session, practice_id: int, data: LocationIn, cache: IntakeCache) -> Location:
    cached = cache.locations.get(data.name)
    if cached is not None:
        return cached
    location = session.scalar(
        select(Location).where(Location.practice_id == practice_id, Location.name == data.name)
    )
    if location is None:
        location = Location(practice_id=practice_id, name=data.name)
        session.add(location)
        session.flush()
    if data.address and location.address != data.address:
        location.address = data.address
    if data.timezone and location.timezone != data.timezone:
        location.timezone = data.timezone
    cache.locations[data.name] = location
    return location
