"""Read-only questions about a practice's schedule: lists, filters, the day-by-day agenda."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Appointment, IntakeRejection, Patient, Practice
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.times import iso
from frontdesk.services.views import appointment_view, patient_view

MAX_PAGE = 500
WITH_PEOPLE = (
    joinedload(Appointment.patient),
    joinedload(Appointment.clinician),
    joinedload(Appointment.location),
)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        next_offset = self.offset + self.limit if self.offset + self.limit < self.total else None
        return {
            "items": self.items,
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": next_offset,
        }


def _check_page(limit: int, offset: int) -> None:
    errors = []
    if not 1 <= limit <= MAX_PAGE:
        errors.append(FieldError("query.limit", f"must be between 1 and {MAX_PAGE}"))
    if offset < 0:
        errors.append(FieldError("query.offset", "must be 0 or more"))
    if errors:
        raise ValidationFailed(errors)


def list_appointments(
    session: Session,
    practice: Practice,
    *,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Appointments starting in [start_from, start_to), earliest first."""
    _check_page(limit, offset)
    errors = []
    for name, value in (("query.from", start_from), ("query.to", start_to)):
        if value is not None and value.tzinfo is None:
            errors.append(FieldError(name, "must carry a UTC offset, e.g. 2026-03-02T00:00:00Z"))
    if start_from and start_to and start_from.tzinfo and start_to.tzinfo and start_to <= start_from:
        errors.append(FieldError("query.to", "must be after 'from'"))
    if status is not None and status not in {s.value for s in AppointmentStatus}:
        errors.append(FieldError("query.status", f"unknown status {status!r}"))
    if errors:
        raise ValidationFailed(errors)
    query: Select[Appointment] = select(Appointment).where(Appointment.practice_id == practice.id)
    if start_from is not None:
        query = query.where(Appointment.start_at >= start_from)
    if start_to is not None:
        query = query.where(Appointment.start_at < start_to)
    if status is not None:
        query = query.where(Appointment.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(*WITH_PEOPLE)
        .order_by(Appointment.start_at, Appointment.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return Page([appointment_view(a, practice) for a in rows], total, limit, offset)


def list_patients(
    session: Session, cipher: FieldCipher, practice: Practice, *, limit: int = 100, offset: int = 0
) -> Page:
    _check_page(limit, offset)
    query = select(Patient).where(Patient.practice_id == practice.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Patient.id).limit(limit).offset(offset)).all()
    return Page([patient_view(p, cipher) for p in rows], total, limit, offset)


def list_rejections(
    session: Session, practice: Practice, *, limit: int = 100
) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(IntakeRejection)
        .where(IntakeRejection.practice_id == practice.id)
        .order_by(IntakeRejection.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "received_at": iso(r.received_at),
            "channel": r.channel,
            "reference": r.reference,
            "errors": r.errors.get("errors", []),
        }
        for r in rows
    ]


@dataclass(frozen=True)
class AgendaDay:
    day: date
    appointments: list[dict[str, Any]]


def agenda(session: Session, practice: Practice, now: datetime, days: int = 7) -> list[AgendaDay]:
    """Today's and upcoming appointments, grouped by day in the practice's timezone."""
    tz = ZoneInfo(practice.timezone)
    today = now.astimezone(tz).date()
    start = datetime.combine(today, time.min, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=days), time.min, tzinfo=tz)
    rows = session.scalars(
        select(Appointment)
        .where(
            Appointment.practice_id == practice.id,
            Appointment.start_at >= start,
            Appointment.start_at < end,
        )
        .options(*WITH_PEOPLE)
        .order_by(Appointment.start_at, Appointment.id)
    ).all()
    grouped: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for appointment in rows:
        view = appointment_view(appointment, practice)
        local = appointment.start_at.astimezone(tz)
        view["local_time"] = local.strftime("%H:%M")
        grouped[local.date()].append(view)
    return [AgendaDay(day, grouped[day]) for day in sorted(grouped)]
