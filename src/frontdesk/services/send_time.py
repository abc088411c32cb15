"""Send-time checks: does the appointment still call for this reminder, and may it go now?

Planning decided when a reminder is due; these decide again at the moment of sending, because
anything may have changed since: the appointment, the patient's answer, the practice's policy,
the hour of the patient's day, and how many reminders the patient already had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.bulk import one_of
from frontdesk.adapters.db.models import Reminder
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel
from frontdesk.domain.reminders import (
    Condition,
    ReminderKind,
    ReminderPolicy,
    ReminderState,
    cap_release,
    next_allowed,
)
from frontdesk.services.claimed import AppointmentRow, ReminderRow


def still_missed(appointment: AppointmentRow) -> bool:
    # (StrEnum members compare equal to their values; ``.value`` costs a descriptor call.)
    return appointment.status in (AppointmentStatus.BOOKED, AppointmentStatus.NOSHOW)


def no_longer_wanted(
    reminder: ReminderRow, appointment: AppointmentRow, policy: ReminderPolicy
) -> str | None:
    """Why the appointment no longer calls for this reminder, re-checked at send time."""
    if reminder.planned_start != appointment.start_at:
        return "the appointment moved"
    kind = ReminderKind(reminder.kind)
    status = appointment.status
    if kind == ReminderKind.MISSED_FOLLOWUP:
        return None if still_missed(appointment) else f"appointment is {status}"
    if kind == ReminderKind.CANCELLATION_FOLLOWUP:
        return None if status == AppointmentStatus.CANCELLED else f"appointment is {status}"
    if status != AppointmentStatus.BOOKED:
        return f"appointment is {status}"
    if kind == ReminderKind.STAGE:
        stage = next((s for s in policy.stages if s.key == reminder.stage), None)
        if stage is None:
            return "the practice's policy no longer has this stage"
        if (
            stage.condition == Condition.UNCONFIRMED_ONLY
            and appointment.confirmation != Confirmation.UNCONFIRMED
        ):
            return f"patient already answered ({appointment.confirmation})"
    return None


@dataclass
class SendContext:
    """What the checks need beyond the reminder itself, loaded once for a whole batch."""

    # Stage reminders sent to each patient in the last 7 days (and those decided in this batch).
    sent_to_patient: dict[int, list[datetime]] = field(default_factory=dict)
    # Stage reminders due now and not yet sent, by (appointment, planned start): id and due time.
    due_stages: dict[tuple[int, datetime], list[tuple[int, datetime]]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, reminders: Sequence[ReminderRow], now: datetime) -> SendContext:
        context = cls()
        patients = {r.patient_id for r in reminders}
        for patient_id, sent_at in session.execute(
            select(Reminder.patient_id, Reminder.sent_at).where(
                one_of(session, Reminder.patient_id, list(patients)),
                Reminder.kind == ReminderKind.STAGE.value,
                Reminder.sent_at > now - timedelta(days=7),
            )
        ):
            if sent_at is not None:
                context.sent_to_patient.setdefault(patient_id, []).append(sent_at)
        appointments = {r.appointment_id for r in reminders}
        for reminder_id, appointment_id, planned_start, due_at in session.execute(
            select(
                Reminder.id, Reminder.appointment_id, Reminder.planned_start, Reminder.due_at
            ).where(
                one_of(session, Reminder.appointment_id, list(appointments)),
                Reminder.kind == ReminderKind.STAGE.value,
                Reminder.state.in_([ReminderState.SCHEDULED.value, ReminderState.CLAIMED.value]),
                Reminder.due_at <= now,
            )
        ):
            key = (appointment_id, planned_start)
            context.due_stages.setdefault(key, []).append((reminder_id, due_at))
        return context


def later_moment(
    reminder: ReminderRow,
    channel: Channel,
    tz_name: str,
    policy: ReminderPolicy,
    now: datetime,
    context: SendContext,
) -> tuple[datetime, str] | None:
    """When this reminder may go, and why, if not now: quiet hours, caps, or a later stage
    of the same appointment being due too."""
    if channel in policy.quiet_hours_channels:
        allowed = next_allowed(now, tz_name, policy.quiet_hours_start, policy.quiet_hours_end)
        if allowed > now:
            return allowed, "quiet hours"
    if reminder.kind != ReminderKind.STAGE:
        return None
    sent = sorted(context.sent_to_patient.get(reminder.patient_id, []))
    capped = cap_release(sent, now, tz_name, policy.max_per_day, policy.max_per_week)
    if capped is not None:
        return capped
    siblings = context.due_stages.get((reminder.appointment_id, reminder.planned_start), [])
    if any(other != reminder.id and due > reminder.due_at for other, due in siblings):
        # A later stage is due too (the worker was down, say): send that one only.
        # (planned_start is never before the start: the stage is skipped.)
        return reminder.planned_start, "superseded by a later reminder also due"
    return None
