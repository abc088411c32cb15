"""A claimed batch as plain rows: what the dispatcher re-checks, read with a few Core SELECTs.

Loading 500 reminders with their appointments, patients and consents through the ORM (identity
map, joined eager loads, lazy clinicians and locations, a unit-of-work flush for every changed
row) was the largest part of a worker's CPU per reminder. Here each table is read once per batch
into small dataclasses; the send-time checks (``send_time.py``, ``reminders.patient_facts``)
take them as they took the ORM objects — they only read the same attributes, typed by the
protocols below — and the dispatcher writes back only the reminders whose decision changed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.db.bulk import one_of
from frontdesk.adapters.db.models import (
    Appointment,
    Clinician,
    Location,
    Patient,
    PatientConsent,
    Reminder,
    utcnow,
)

# --- what the checks read (an ORM row or a plain row alike) ------------------------------------


class ReminderRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def appointment_id(self) -> int: ...
    @property
    def patient_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def planned_start(self) -> datetime: ...
    @property
    def due_at(self) -> datetime: ...


class ConsentRow(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def status(self) -> str: ...


class PatientRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str | None: ...
    @property
    def preferred_name(self) -> str | None: ...
    @property
    def language(self) -> str: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def reminders_enabled(self) -> bool: ...
    @property
    def preferred_channel(self) -> str | None: ...
    @property
    def phone_sealed(self) -> str | None: ...
    @property
    def email_sealed(self) -> str | None: ...
    @property
    def date_of_birth_sealed(self) -> str | None: ...
    @property
    def consents(self) -> Sequence[ConsentRow]: ...


class ClinicianRow(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def booking_url(self) -> str | None: ...


class LocationRow(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str | None: ...


class AppointmentRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def practice_id(self) -> int: ...
    @property
    def patient_id(self) -> int: ...
    @property
    def start_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def confirmation(self) -> str: ...
    @property
    def telehealth_url(self) -> str | None: ...
    @property
    def clinician(self) -> ClinicianRow | None: ...
    @property
    def location(self) -> LocationRow | None: ...


# --- the plain rows ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedConsent:
    channel: str
    status: str


@dataclass(frozen=True, slots=True)
class ClaimedPatient:
    id: int
    name: str | None
    preferred_name: str | None
    language: str
    timezone: str | None
    reminders_enabled: bool
    preferred_channel: str | None
    phone_sealed: str | None
    email_sealed: str | None
    date_of_birth_sealed: str | None
    consents: tuple[ClaimedConsent, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimedClinician:
    name: str
    booking_url: str | None


@dataclass(frozen=True, slots=True)
class ClaimedLocation:
    name: str
    address: str | None


@dataclass(frozen=True, slots=True)
class ClaimedAppointment:
    id: int
    practice_id: int
    patient_id: int
    start_at: datetime
    status: str
    confirmation: str
    telehealth_url: str | None
    patient: ClaimedPatient
    clinician: ClaimedClinician | None
    location: ClaimedLocation | None


# The reminder columns a decision may change; written back when any of them did.
MUTABLE = ("channel", "state", "reason", "attempts", "due_at", "claimed_by")


@dataclass(slots=True)
class ClaimedReminder:
    id: int
    practice_id: int
    appointment_id: int
    patient_id: int
    kind: str
    stage: str
    planned_start: datetime
    channel: str | None
    due_at: datetime
    state: str
    reason: str | None
    attempts: int
    failed_channels: str | None
    claimed_by: str | None
    appointment: ClaimedAppointment
    loaded: tuple[Any, ...] = field(default=())

    def snapshot(self) -> tuple[Any, ...]:
        # (MUTABLE, spelled out: this runs twice per reminder)
        return (
            self.channel,
            self.state,
            self.reason,
            self.attempts,
            self.due_at,
            self.claimed_by,
        )

    def changed(self) -> bool:
        return self.snapshot() != self.loaded


_REMINDER_COLUMNS = (
    Reminder.id,
    Reminder.practice_id,
    Reminder.appointment_id,
    Reminder.patient_id,
    Reminder.kind,
    Reminder.stage,
    Reminder.planned_start,
    Reminder.channel,
    Reminder.due_at,
    Reminder.state,
    Reminder.reason,
    Reminder.attempts,
    Reminder.failed_channels,
    Reminder.claimed_by,
)
_APPOINTMENT_COLUMNS = (
    Appointment.id,
    Appointment.practice_id,
    Appointment.patient_id,
    Appointment.start_at,
    Appointment.status,
    Appointment.confirmation,
    Appointment.telehealth_url,
    Appointment.clinician_id,
    Appointment.location_id,
)
_PATIENT_COLUMNS = (
    Patient.id,
    Patient.name,
    Patient.preferred_name,
    Patient.language,
    Patient.timezone,
    Patient.reminders_enabled,
    Patient.preferred_channel,
    Patient.phone_sealed,
    Patient.email_sealed,
    Patient.date_of_birth_sealed,
)


def load_claimed(session: Session, ids: Sequence[int]) -> list[ClaimedReminder]:
    """The reminders ``ids`` (those still there), in due order, each with its appointment, the
    appointment's patient (with consents), clinician and location: one SELECT per table."""
    connection = session.connection()
    rows = connection.execute(
        select(*_REMINDER_COLUMNS)
        .where(one_of(session, Reminder.id, list(ids)))
        .order_by(Reminder.due_at, Reminder.id)
    ).all()
    if not rows:
        return []
    appointment_rows = {
        row.id: row
        for row in connection.execute(
            select(*_APPOINTMENT_COLUMNS).where(
                one_of(session, Appointment.id, sorted({row.appointment_id for row in rows}))
            )
        )
    }
    patient_ids = sorted({row.patient_id for row in appointment_rows.values()})
    consents: dict[int, list[ClaimedConsent]] = {patient_id: [] for patient_id in patient_ids}
    for patient_id, channel, status in connection.execute(
        select(PatientConsent.patient_id, PatientConsent.channel, PatientConsent.status)
        .where(one_of(session, PatientConsent.patient_id, patient_ids))
        .order_by(PatientConsent.id)
    ):
        consents[patient_id].append(ClaimedConsent(channel, status))
    patients = {
        row[0]: ClaimedPatient(*_values(row, tuple(consents[row[0]])))
        for row in connection.execute(
            select(*_PATIENT_COLUMNS).where(one_of(session, Patient.id, patient_ids))
        )
    }
    clinician_ids = sorted({r.clinician_id for r in appointment_rows.values() if r.clinician_id})
    clinicians = (
        {
            row.id: ClaimedClinician(row.name, row.booking_url)
            for row in connection.execute(
                select(Clinician.id, Clinician.name, Clinician.booking_url).where(
                    one_of(session, Clinician.id, clinician_ids)
                )
            )
        }
        if clinician_ids
        else {}
    )
    location_ids = sorted({r.location_id for r in appointment_rows.values() if r.location_id})
    locations = (
        {
            row.id: ClaimedLocation(row.name, row.address)
            for row in connection.execute(
                select(Location.id, Location.name, Location.address).where(
                    one_of(session, Location.id, location_ids)
                )
            )
        }
        if location_ids
        else {}
    )
    appointments = {
        row.id: ClaimedAppointment(
            id=row.id,
            practice_id=row.practice_id,
            patient_id=row.patient_id,
            start_at=row.start_at,
            status=row.status,
            confirmation=row.confirmation,
            telehealth_url=row.telehealth_url,
            patient=patients[row.patient_id],
            clinician=clinicians.get(row.clinician_id) if row.clinician_id else None,
            location=locations.get(row.location_id) if row.location_id else None,
        )
        for row in appointment_rows.values()
    }
    claimed = []
    for row in rows:
        reminder = ClaimedReminder(*_values(row, appointments[row[2]]))
        reminder.loaded = reminder.snapshot()
        claimed.append(reminder)
    return claimed


def _values(row: Any, last: Any) -> Any:
    """A row's values in column order, then ``last`` (the dataclasses' fields are in that
    order)."""
    return (*row, last)


_WRITE_BACK = (
    update(Reminder)
    .where(Reminder.id == bindparam("b_id"))
    .values(
        {**{name: bindparam(f"b_{name}") for name in MUTABLE}, "updated_at": bindparam("b_now")}
    )
)


def write_back(session: Session, reminders: Sequence[ClaimedReminder]) -> int:
    """Store what the decisions changed (state, reason, channel, due time, attempts, claim), one
    executemany for the batch, as the ORM's flush did row by row. Returns the rows written."""
    changed = [reminder for reminder in reminders if reminder.changed()]
    if not changed:
        return 0
    now = utcnow()
    session.connection().execute(
        _WRITE_BACK,
        [
            {
                "b_id": reminder.id,
                "b_now": now,
                **{f"b_{name}": getattr(reminder, name) for name in MUTABLE},
            }
            for reminder in changed
        ],
    )
    return len(changed)
