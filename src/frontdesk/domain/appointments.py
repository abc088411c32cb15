"""Appointment states and the rules for changing them."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class AppointmentStatus(StrEnum):
    """FHIR R4 Appointment.status (http://hl7.org/fhir/appointmentstatus)."""

    PROPOSED = "proposed"
    PENDING = "pending"
    BOOKED = "booked"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"
    ENTERED_IN_ERROR = "entered-in-error"
    CHECKED_IN = "checked-in"
    WAITLIST = "waitlist"


class Confirmation(StrEnum):
    """What the patient told us about an appointment."""

    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    RESCHEDULE_REQUESTED = "reschedule_requested"


MAX_APPOINTMENT_LENGTH = timedelta(hours=24)


def time_problem(start: datetime, end: datetime) -> str | None:
    """Why a start/end pair cannot be an appointment, or None when it can."""
    if start.tzinfo is None or end.tzinfo is None:
        return "times must carry a UTC offset"
    if end <= start:
        return "end must be after start"
    if end - start > MAX_APPOINTMENT_LENGTH:
        return "an appointment cannot last more than 24 hours"
    return None


def confirmation_after_change(
    current: Confirmation, *, moved: bool, explicit: Confirmation | None
) -> Confirmation:
    """The confirmation state after an update.

    A confirmation is for one time slot: when the scheduling system moves the appointment the
    patient has not agreed to the new time yet, so it goes back to unconfirmed unless the
    update itself says otherwise.
    """
    if explicit is not None:
        return explicit
    if moved:
        return Confirmation.UNCONFIRMED
    return current
