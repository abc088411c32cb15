"""Finding intake records by their source keys, one at a time or a batch at once.

A bulk import asks for the appointments and patients of 500 rows in two queries instead of a
thousand; ``IntakeCache`` remembers both the rows found and the keys known to be absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, Clinician, Location, Patient

K = TypeVar("K", "PatientKey", "AppointmentKey")
V = TypeVar("V")


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
    """Load every listed record into ``cache``; the ones not found are recorded as absent.

    One query per source, ``external_id IN (…)``: it uses the unique index, where a row-value
    ``(source, external_id) IN (…)`` makes PostgreSQL scan the table.
    """
    patient_ids = _absent_by_source(set(patients), cache.patients)
    for source, external_ids in patient_ids.items():
        for patient in session.scalars(
            select(Patient).where(
                Patient.practice_id == practice_id,
                Patient.source == source,
                Patient.external_id.in_(external_ids),
            )
        ):
            cache.patients[PatientKey(patient.source, patient.external_id)] = patient
    appointment_ids = _absent_by_source(set(appointments), cache.appointments)
    for source, external_ids in appointment_ids.items():
        for appointment in session.scalars(
            select(Appointment).where(
                Appointment.practice_id == practice_id,
                Appointment.source == source,
                Appointment.external_id.in_(external_ids),
            )
        ):
            key = AppointmentKey(appointment.source, appointment.external_id)
            cache.appointments[key] = appointment


def _absent_by_source(keys: set[K], store: dict[K, V | None]) -> dict[str, list[str]]:
    """The keys ``store`` does not know yet, grouped by source; they are marked absent until a
    query finds them."""
    by_source: dict[str, list[str]] = {}
    for key in keys - store.keys():
        store[key] = None
        by_source.setdefault(key.source, []).append(key.external_id)
    return by_source
