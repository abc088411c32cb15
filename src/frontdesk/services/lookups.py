"""Finding intake records by their source keys, one at a time or a batch at once.

A bulk import asks for the appointments and patients of 500 rows in two queries instead of a
thousand; ``IntakeCache`` remembers both the rows found and the keys known to be absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, Clinician, Location, Patient


@dataclass(frozen=True)
class PatientKey:
    source: str
    external_id: str


@dataclass(frozen=True)
class AppointmentKey:
    source: str
    external_id: str


@dataclass
class IntakeCache:
    """Rows seen in one unit of work. A key mapped to None is known not to exist yet."""

    patients: dict[PatientKey, Patient | None] = field(default_factory=dict)
    appointments: dict[AppointmentKey, Appointment | None] = field(default_factory=dict)
    clinicians: dict[str, Clinician] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)


def find_patient(
    session: Session, practice_id: int, key: PatientKey, cache: IntakeCache | None = None
) -> Patient | None:
    if cache is not None and key in cache.patients:
        return cache.patients[key]
    found = session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id,
            Patient.source == key.source,
            Patient.external_id == key.external_id,
        )
    )
    if cache is not None:
        cache.patients[key] = found
    return found


def find_appointment(
    session: Session, practice_id: int, key: AppointmentKey, cache: IntakeCache | None = None
) -> Appointment | None:
    if cache is not None and key in cache.appointments:
        return cache.appointments[key]
    found = session.scalar(
        select(Appointment).where(
            Appointment.practice_id == practice_id,
            Appointment.source == key.source,
            Appointment.external_id == key.external_id,
        )
    )
    if cache is not None:
        cache.appointments[key] = found
    return found


def prefetch(
    session: Session,
    practice_id: int,
    cache: IntakeCache,
    patients: Iterable[PatientKey],
    appointments: Iterable[AppointmentKey],
) -> None:
    """Load every listed record into ``cache``; the ones not found are recorded as absent."""
    patient_keys = set(patients) - cache.patients.keys()
    if patient_keys:
        for key in patient_keys:
            cache.patients[key] = None
        rows = session.scalars(
            select(Patient).where(
                Patient.practice_id == practice_id,
                tuple_(Patient.source, Patient.external_id).in_(
                    [(k.source, k.external_id) for k in patient_keys]
                ),
            )
        )
        for patient in rows:
            cache.patients[PatientKey(patient.source, patient.external_id)] = patient
    appointment_keys = set(appointments) - cache.appointments.keys()
    if appointment_keys:
        for appointment_key in appointment_keys:
            cache.appointments[appointment_key] = None
        rows_a = session.scalars(
            select(Appointment).where(
                Appointment.practice_id == practice_id,
                tuple_(Appointment.source, Appointment.external_id).in_(
                    [(k.source, k.external_id) for k in appointment_keys]
                ),
            )
        )
        for appointment in rows_a:
            cache.appointments[AppointmentKey(appointment.source, appointment.external_id)] = (
                appointment
            )
